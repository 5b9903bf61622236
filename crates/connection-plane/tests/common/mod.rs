//! Loopback harness: a real client, a server socket upgraded by hand the way ws upgrades it, and
//! an `Inbound` that records what the plane reports.

// Each test binary uses its own part of the harness.
#![allow(dead_code)]

use std::future::Future;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use connection_plane::{ConnId, Connection, FrameError, Inbound, Plane};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::WebSocketStream;

/// Long enough for anything here to happen on a loaded machine; only a hang runs into it.
pub const PATIENCE: Duration = Duration::from_secs(30);

pub type Client = WebSocketStream<TcpStream>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Message(ConnId, String),
    Oversized(ConnId),
    FrameError(ConnId, FrameError),
    HeartbeatLost(ConnId),
    Closed(ConnId, u16, String),
}

pub struct Recorder(mpsc::UnboundedSender<Event>);

impl Inbound for Recorder {
    fn message(&self, conn: ConnId, text: &str) {
        let _ = self.0.send(Event::Message(conn, text.to_owned()));
    }

    fn oversized(&self, conn: ConnId) {
        let _ = self.0.send(Event::Oversized(conn));
    }

    fn frame_error(&self, conn: ConnId, error: FrameError) {
        let _ = self.0.send(Event::FrameError(conn, error));
    }

    fn heartbeat_lost(&self, conn: ConnId) {
        let _ = self.0.send(Event::HeartbeatLost(conn));
    }

    fn closed(&self, conn: ConnId, code: u16, reason: &str) {
        let _ = self.0.send(Event::Closed(conn, code, reason.to_owned()));
    }
}

pub struct Events(mpsc::UnboundedReceiver<Event>);

impl Events {
    pub async fn next(&mut self) -> Event {
        tokio::time::timeout(PATIENCE, self.0.recv())
            .await
            .expect("the plane reported nothing in time")
            .expect("every recorder is gone")
    }

    /// Whatever has been reported so far, without waiting.
    pub fn so_far(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.0.try_recv().ok()).collect()
    }
}

pub fn recorder() -> (Arc<Recorder>, Events) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Arc::new(Recorder(tx)), Events(rx))
}

pub struct Server {
    listener: TcpListener,
}

/// The server's end of an upgraded connection, still in the test's hands, with the bytes read
/// from it past the upgrade request (what Node would pass along as `head` and buffered data).
pub struct Upgraded {
    socket: TcpStream,
    head: Vec<u8>,
}

impl Server {
    pub async fn bind() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        Server { listener }
    }

    pub async fn connect(&self) -> (Client, Upgraded) {
        let socket = TcpSocket::new_v4().expect("socket");
        self.connect_with(socket).await
    }

    /// Connects from a client socket with a small fixed receive buffer, so a client that stops
    /// reading pushes back soon.
    pub async fn connect_small(&self) -> (Client, Upgraded) {
        let socket = TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(64 * 1024).expect("SO_RCVBUF");
        self.connect_with(socket).await
    }

    async fn connect_with(&self, socket: TcpSocket) -> (Client, Upgraded) {
        let (client, server) = tokio::join!(self.client(socket), async {
            let Request {
                mut upgraded,
                response,
            } = self.request().await;
            upgraded
                .socket
                .write_all(&response)
                .await
                .expect("write 101");
            upgraded
        });
        (client, server)
    }

    /// Connects a client whose upgrade request the server reads but leaves unanswered, so the
    /// plane answers it: the client's handshake completes once the plane writes the response.
    pub async fn connect_unanswered(&self) -> (impl Future<Output = Client>, Request) {
        let socket = TcpSocket::new_v4().expect("socket");
        let client = tokio::spawn(self.client(socket));
        let request = self.request().await;
        let client = async { client.await.expect("client task") };
        (client, request)
    }

    fn client(&self, socket: TcpSocket) -> impl Future<Output = Client> + Send + 'static {
        let addr = self.listener.local_addr().expect("local address");
        async move {
            let stream = socket.connect(addr).await.expect("connect");
            let (client, _) = tokio_tungstenite::client_async(format!("ws://{addr}/path"), stream)
                .await
                .expect("client handshake");
            client
        }
    }

    async fn request(&self) -> Request {
        let (socket, _) = self.listener.accept().await.expect("accept");
        read_request(socket).await
    }
}

/// An upgrade request read whole, and the 101 response that answers it.
pub struct Request {
    pub upgraded: Upgraded,
    pub response: Vec<u8>,
}

async fn read_request(mut socket: TcpStream) -> Request {
    let mut read = Vec::new();
    let end = loop {
        let mut chunk = [0; 1024];
        let n = socket.read(&mut chunk).await.expect("read request");
        assert!(n > 0, "client left during the upgrade");
        read.extend_from_slice(&chunk[..n]);
        if let Some(at) = read.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let request = std::str::from_utf8(&read[..end]).expect("request is text");
    let key = request
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("sec-websocket-key")
                .then(|| value.trim().to_owned())
        })
        .expect("sec-websocket-key");
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        derive_accept_key(key.as_bytes())
    );
    Request {
        upgraded: Upgraded {
            socket,
            head: read.split_off(end),
        },
        response: response.into_bytes(),
    }
}

impl Upgraded {
    /// Reads until `total` bytes past the request are held, as Node may before the takeover.
    pub async fn read_until(&mut self, total: usize) {
        while self.head.len() < total {
            let mut chunk = vec![0; total - self.head.len()];
            let n = self.socket.read(&mut chunk).await.expect("read frames");
            assert!(n > 0, "client left before the takeover");
            self.head.extend_from_slice(&chunk[..n]);
        }
    }

    /// Hands the socket to the plane and closes the test's own fd, as the JS side destroys its
    /// copy after the takeover.
    pub fn adopt(self, plane: &Plane, conn: ConnId, inbound: Arc<dyn Inbound>) -> Connection {
        self.adopt_answering(plane, conn, inbound, Vec::new())
    }

    /// As [`Upgraded::adopt`], the plane writing `response` to complete the upgrade.
    pub fn adopt_answering(
        self,
        plane: &Plane,
        conn: ConnId,
        inbound: Arc<dyn Inbound>,
        response: Vec<u8>,
    ) -> Connection {
        let socket = self.socket.into_std().expect("deregister");
        let (connection, adopted) = plane
            .adopt(conn, socket.as_raw_fd(), self.head, inbound)
            .expect("adopt");
        adopted.answering(response).serve();
        connection
    }
}

/// Everything `client` receives until its stream ends; its pings are answered along the way.
pub async fn read_to_end(client: &mut Client) -> Vec<tokio_tungstenite::tungstenite::Message> {
    use futures_util::StreamExt;
    let mut received = Vec::new();
    loop {
        match tokio::time::timeout(PATIENCE, client.next()).await {
            Err(_) => panic!("the client's stream did not end in time"),
            Ok(Some(Ok(message))) => received.push(message),
            Ok(Some(Err(_)) | None) => return received,
        }
    }
}
