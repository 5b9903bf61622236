//! The plane's own listening socket, over loopback: upgrades it answers become connections, other
//! connections are handed over unread, and dropping it stops accepting.

mod common;

use std::net::{SocketAddr, TcpStream as StdTcpStream};
use std::sync::Arc;

use common::{recorder, Event, PATIENCE};
use connection_plane::{
    ConnId, Intake, Payload, Plane, Settings, Upgrade, UpgradeRules, DEFAULT_BACKLOG,
};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

enum Arrival {
    Upgrade(StdTcpStream, Upgrade),
    HandedOver(StdTcpStream),
}

/// Passes what the listening socket accepted to the test.
struct Arrivals(mpsc::UnboundedSender<Arrival>);

impl Intake for Arrivals {
    fn upgrade(&self, socket: StdTcpStream, upgrade: Upgrade) {
        let _ = self.0.send(Arrival::Upgrade(socket, upgrade));
    }

    fn hand_over(&self, socket: StdTcpStream) {
        let _ = self.0.send(Arrival::HandedOver(socket));
    }
}

async fn next(arrivals: &mut mpsc::UnboundedReceiver<Arrival>) -> Arrival {
    tokio::time::timeout(PATIENCE, arrivals.recv())
        .await
        .expect("nothing arrived in time")
        .expect("the intake is gone")
}

fn listen(
    plane: &Plane,
) -> (
    connection_plane::Listening,
    mpsc::UnboundedReceiver<Arrival>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let listening = plane
        .listen(
            &[loopback],
            DEFAULT_BACKLOG,
            UpgradeRules::default(),
            Arc::new(Arrivals(tx)),
        )
        .expect("listen");
    (listening, rx)
}

#[tokio::test]
async fn an_upgrade_the_listening_socket_answers_becomes_a_connection_of_the_plane() {
    let plane = Plane::new(Settings::default()).unwrap();
    let (listening, mut arrivals) = listen(&plane);
    let address = listening.local_addr();
    let client = tokio::spawn(async move {
        let stream = TcpStream::connect(address).await.expect("connect");
        tokio_tungstenite::client_async(format!("ws://{address}/some/path?x"), stream).await
    });

    let Arrival::Upgrade(socket, upgrade) = next(&mut arrivals).await else {
        panic!("a plain upgrade was handed over");
    };
    assert_eq!(upgrade.target, "/some/path?x");
    let (inbound, mut events) = recorder();
    let (conn, adopted) = plane.adopt_accepted(ConnId(7), socket, inbound);
    adopted.answering(upgrade.response).serve();
    conn.send(Payload::from("hello".to_owned())).unwrap();

    let (mut client, response) = client.await.unwrap().expect("client handshake");
    assert_eq!(response.status(), 101);
    let first = tokio::time::timeout(PATIENCE, client.next()).await.unwrap();
    assert_eq!(first.unwrap().unwrap(), Message::text("hello"));
    client.send(Message::text("back")).await.unwrap();
    assert_eq!(
        events.next().await,
        Event::Message(ConnId(7), "back".into())
    );
    drop(client);
    assert!(matches!(
        events.next().await,
        Event::Closed(ConnId(7), _, _)
    ));
}

#[tokio::test]
async fn any_other_connection_is_handed_over_with_nothing_read_from_it() {
    let plane = Plane::new(Settings::default()).unwrap();
    let (listening, mut arrivals) = listen(&plane);
    let request = b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let mut client = TcpStream::connect(listening.local_addr()).await.unwrap();
    client.write_all(request).await.unwrap();

    let Arrival::HandedOver(socket) = next(&mut arrivals).await else {
        panic!("a plain HTTP request was answered as an upgrade");
    };
    socket.set_nonblocking(true).unwrap();
    let mut socket = TcpStream::from_std(socket).unwrap();
    let mut received = vec![0; request.len()];
    socket.read_exact(&mut received).await.unwrap();
    assert_eq!(received, request);
    // The handed-over socket is whole: it answers, and the client reads the answer.
    socket.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await.unwrap();
    let mut answer = [0; 8];
    client.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"HTTP/1.1");
}

#[tokio::test]
async fn once_it_stops_answering_an_upgrade_is_handed_over_too() {
    let plane = Plane::new(Settings::default()).unwrap();
    let (listening, mut arrivals) = listen(&plane);
    listening.stop_answering();
    let address = listening.local_addr();
    let mut client = TcpStream::connect(address).await.unwrap();
    let request = "GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    client.write_all(request.as_bytes()).await.unwrap();
    let Arrival::HandedOver(socket) = next(&mut arrivals).await else {
        panic!("an upgrade was answered after the plane stopped answering");
    };
    let mut peeked = vec![0; request.len()];
    let read = socket.peek(&mut peeked).unwrap();
    assert_eq!(&peeked[..read], &request.as_bytes()[..read]);
}

#[tokio::test]
async fn a_dropped_listening_socket_accepts_nothing_more() {
    let plane = Plane::new(Settings::default()).unwrap();
    let (listening, _arrivals) = listen(&plane);
    let address = listening.local_addr();
    drop(listening);
    // The accepting task lets the socket go on its next turn; a connection that reached it
    // before then is accepted, or reset as it closes.
    tokio::time::timeout(PATIENCE, async {
        while !TcpStream::connect(address)
            .await
            .is_err_and(|error| error.kind() == std::io::ErrorKind::ConnectionRefused)
        {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the socket kept accepting");
}

#[tokio::test]
async fn an_address_in_use_is_refused() {
    let plane = Plane::new(Settings::default()).unwrap();
    let (listening, _arrivals) = listen(&plane);
    let (tx, _rx) = mpsc::unbounded_channel();
    let taken = plane.listen(
        &[listening.local_addr()],
        DEFAULT_BACKLOG,
        UpgradeRules::default(),
        Arc::new(Arrivals(tx)),
    );
    assert_eq!(
        taken.err().map(|error| error.kind()),
        Some(std::io::ErrorKind::AddrInUse)
    );
}
