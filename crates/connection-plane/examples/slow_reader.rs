//! Measures the plane's CPU time for draining a full 16 MiB backlog to a peer that reads it 64 KiB
//! at a time. Linux only:
//!
//! `cargo run --release -p connection-plane --example slow_reader -- FRAMES PAUSE_US [SNDBUF]`
//!
//! FRAMES splits the backlog into that many frames (1: one 16 MiB frame), the reader sleeps
//! PAUSE_US microseconds between reads, and SNDBUF fixes the server socket's send buffer (which
//! otherwise grows by itself): a small one makes the kernel take the backlog in small writes, as a
//! slow network would.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use connection_plane::{ConnId, FrameError, Inbound, Payload, Plane, Settings};
use sync_core::protocol::limits::MAX_PAYLOAD_BYTES;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

const READ_SIZE: usize = 64 * 1024;
const ROUNDS: u64 = 5;
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

struct Quiet;

impl Inbound for Quiet {
    fn message(&self, _: ConnId, _: &str) {}
    fn oversized(&self, _: ConnId) {}
    fn frame_error(&self, _: ConnId, _: FrameError) {}
    fn closed(&self, _: ConnId, _: u16, _: &str) {}
}

#[repr(C)]
struct Timespec {
    sec: i64,
    nsec: i64,
}

extern "C" {
    fn clock_gettime(clock: i32, time: *mut Timespec) -> i32;
}

const CLOCK_PROCESS_CPUTIME_ID: i32 = 2;
const CLOCK_THREAD_CPUTIME_ID: i32 = 3;

fn cpu(clock: i32) -> Duration {
    let mut time = Timespec { sec: 0, nsec: 0 };
    // SAFETY: clock_gettime only writes the timespec it is given.
    assert_eq!(unsafe { clock_gettime(clock, &mut time) }, 0);
    Duration::new(time.sec as u64, time.nsec as u32)
}

/// A client with a small receive buffer, and the server's end of it.
fn connect(listener: &TcpListener) -> (TcpStream, TcpStream) {
    let addr = listener.local_addr().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    let client = runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(READ_SIZE as u32).unwrap();
        socket.connect(addr).await.unwrap().into_std().unwrap()
    });
    client.set_nonblocking(false).unwrap();
    let (server, _) = listener.accept().unwrap();
    (client, server)
}

fn read_head(stream: &mut TcpStream) {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0];
        stream.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
}

fn handshake(client: &mut TcpStream, server: &mut TcpStream) {
    write!(
        client,
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .unwrap();
    read_head(server);
    write!(
        server,
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        derive_accept_key(KEY.as_bytes())
    )
    .unwrap();
    read_head(client);
}

fn main() {
    let mut args = std::env::args()
        .skip(1)
        .map(|arg| arg.parse::<usize>().unwrap());
    let frames = args.next().unwrap_or(1);
    let pause = Duration::from_micros(args.next().unwrap_or(200) as u64);
    let send_buffer = args.next();
    let frame = MAX_PAYLOAD_BYTES / frames;
    // Header bytes: 10 per frame over 64 KiB, 4 per smaller one.
    let wire = frames * (frame + if frame > 0xFFFF { 10 } else { 4 });

    let plane = Plane::new(Settings::default()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let payload = Payload::from("x".repeat(frame));
    for round in 0..ROUNDS {
        let (mut client, mut server) = connect(&listener);
        handshake(&mut client, &mut server);
        let server = tokio::net::TcpSocket::from_std_stream(server);
        if let Some(bytes) = send_buffer {
            server.set_send_buffer_size(bytes as u32).unwrap();
        }
        let (conn, adopted) = plane
            .adopt(
                ConnId(round),
                server.as_raw_fd(),
                Vec::new(),
                Arc::new(Quiet),
            )
            .unwrap();
        adopted.serve();
        drop(server);

        let process_before = cpu(CLOCK_PROCESS_CPUTIME_ID);
        let started = Instant::now();
        for _ in 0..frames {
            conn.send(payload.clone()).unwrap();
        }
        let reader = std::thread::spawn(move || {
            let own_before = cpu(CLOCK_THREAD_CPUTIME_ID);
            let mut buffer = vec![0; READ_SIZE];
            let mut left = wire;
            while left > 0 {
                let n = client.read(&mut buffer).unwrap();
                assert!(n > 0, "the plane hung up");
                left -= n;
                std::thread::sleep(pause);
            }
            (cpu(CLOCK_THREAD_CPUTIME_ID) - own_before, client)
        });
        let (reader_cpu, client) = reader.join().unwrap();
        let elapsed = started.elapsed();
        // Everything but the reader: the plane's threads, this one idle in join.
        let plane_cpu = cpu(CLOCK_PROCESS_CPUTIME_ID) - process_before - reader_cpu;
        println!(
            "round {round}: {frames} x {frame} B drained in {elapsed:.0?}, plane CPU \
             {plane_cpu:.1?}, reader CPU {reader_cpu:.1?}"
        );
        conn.terminate();
        drop(client);
    }
    plane.shutdown();
}
