//! A bare broadcast relay: the same routing as a TinyBase sync server
//! (broadcast, or to one named client, with the sender's id put in front) but
//! no validation, no buffering rules and no persistence, with the WebSocket
//! handshake done in Rust. It shows what this machine can do with each load
//! at all, as a bound for the real servers.
//!
//! Prints `{"port":N}` once listening. Answers a `stats` line on stdin with a
//! JSON line of its CPU time and memory, and exits when stdin closes.

use std::collections::HashMap;
use std::io::BufRead;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::json;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::handshake::server::{
    Callback, ErrorResponse, Request, Response,
};
use tokio_tungstenite::tungstenite::Message;

use crate::conn;
use crate::stats;

type Outbox = mpsc::UnboundedSender<Message>;
/// Path id → client id → that client's outgoing queue.
type Paths = Arc<Mutex<HashMap<String, HashMap<String, Outbox>>>>;

/// The accept backlog the servers under test are given too, so the storm's
/// simultaneous connects are all queued rather than retried by the kernel.
const ACCEPT_BACKLOG: u32 = 4096;

pub async fn serve(port: u16, lifetime: Duration) -> Result<(), String> {
    let socket = TcpSocket::new_v4().map_err(|error| format!("socket: {error}"))?;
    socket
        .bind(([127, 0, 0, 1], port).into())
        .map_err(|error| format!("bind: {error}"))?;
    let listener = socket
        .listen(ACCEPT_BACKLOG)
        .map_err(|error| format!("listen: {error}"))?;
    let port = listener
        .local_addr()
        .map_err(|error| format!("local address: {error}"))?
        .port();
    println!("{}", json!({ "port": port }));
    std::thread::spawn(answer_stdin);

    let paths: Paths = Arc::default();
    // Never signalled: the relay's writers run until their client leaves.
    let (_keep_open, never) = watch::channel(false);
    let expire = tokio::time::sleep(lifetime);
    tokio::pin!(expire);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((tcp, _)) = accepted {
                    tokio::spawn(client(tcp, paths.clone(), never.clone()));
                }
            }
            _ = &mut expire => return Ok(()),
        }
    }
}

fn answer_stdin() {
    for line in std::io::stdin().lock().lines() {
        match line.as_deref() {
            Ok("stats") => println!(
                "{}",
                json!({
                    "cpuMs": stats::own_cpu_seconds() * 1000.0,
                    "rssKiB": current_rss_kib(),
                    "peakRssKiB": stats::own_peak_rss_kib(),
                })
            ),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    // The harness closing stdin (or dying) ends the relay.
    std::process::exit(0);
}

fn current_rss_kib() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page_size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * page_size.max(0) as u64 / 1024)
}

/// What a TinyBase server takes from the upgrade request: the path from the
/// URL and, as the client's id, its `Sec-WebSocket-Key`.
#[derive(Default)]
struct Identity {
    path_id: String,
    client_id: String,
}

impl Callback for &mut Identity {
    fn on_request(self, request: &Request, response: Response) -> Result<Response, ErrorResponse> {
        self.path_id = request.uri().path().trim_start_matches('/').to_string();
        self.client_id = request
            .headers()
            .get("sec-websocket-key")
            .and_then(|key| key.to_str().ok())
            .unwrap_or_default()
            .to_string();
        Ok(response)
    }
}

async fn client(tcp: TcpStream, paths: Paths, never: watch::Receiver<bool>) {
    if tcp.set_nodelay(true).is_err() {
        return;
    }
    let mut identity = Identity::default();
    let handshake =
        tokio_tungstenite::accept_hdr_async_with_config(tcp, &mut identity, Some(conn::config()))
            .await;
    let Ok(socket) = handshake else { return };
    let Identity { path_id, client_id } = identity;
    let (sink, mut stream) = socket.split();
    let (outbox, queue) = mpsc::unbounded_channel();
    paths
        .lock()
        .expect("no thread panics while holding the path map")
        .entry(path_id.clone())
        .or_default()
        .insert(client_id.clone(), outbox);
    // Ends by itself, closing the socket, once this client's outbox is
    // dropped from the path map below.
    tokio::spawn(conn::write_loop(sink, queue, never));

    while let Some(Ok(message)) = stream.next().await {
        let Message::Text(text) = message else {
            continue;
        };
        let Some((to, remainder)) = text.split_once('\n') else {
            continue;
        };
        let forwarded = Message::text(format!("{client_id}\n{remainder}"));
        let paths = paths
            .lock()
            .expect("no thread panics while holding the path map");
        let Some(clients) = paths.get(&path_id) else {
            continue;
        };
        if to.is_empty() {
            for (id, outbox) in clients {
                if *id != client_id {
                    let _ = outbox.send(forwarded.clone());
                }
            }
        } else if let Some(outbox) = clients.get(to) {
            let _ = outbox.send(forwarded);
        }
    }

    let mut paths = paths
        .lock()
        .expect("no thread panics while holding the path map");
    if let Some(clients) = paths.get_mut(&path_id) {
        clients.remove(&client_id);
        if clients.is_empty() {
            paths.remove(&path_id);
        }
    }
}
