//! Shutting the plane down: every connection is told, and nothing of the plane is left running.
//! Alone in its binary, so threads and descriptors are counted undisturbed.

mod common;

use std::time::Duration;

use common::{read_to_end, recorder, Event, Server};
use connection_plane::{ConnId, Payload, Plane, Settings, GOING_AWAY};
use tokio_tungstenite::tungstenite::Message;

const THREAD_NAME: &str = "ws-plane-test";

fn plane_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim_end() == THREAD_NAME)
        .count()
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_every_connection_and_leaves_no_thread_or_socket() {
    let fds_before = open_fds();
    let plane = Plane::new(Settings {
        thread_name: THREAD_NAME.to_owned(),
        shutdown_grace: Duration::from_millis(300),
        ..Settings::default()
    })
    .unwrap();

    let server = Server::bind().await;
    let (inbound, mut events) = recorder();
    let mut readers = Vec::new();
    for id in 0..2 {
        let (mut client, upgraded) = server.connect().await;
        let conn = upgraded.adopt(&plane, ConnId(id), inbound.clone());
        for i in 0..5 {
            conn.send(Payload::from(format!("{id}-{i}"))).unwrap();
        }
        readers.push(tokio::spawn(async move { read_to_end(&mut client).await }));
    }
    // Never polled: it cannot answer the Close, so the grace runs out on it.
    let (silent, upgraded) = server.connect().await;
    let _silent_conn = upgraded.adopt(&plane, ConnId(2), inbound.clone());
    // Its threads name themselves once they first run, which a loaded machine may delay: the
    // check below that none is left would pass vacuously if none had been seen.
    let mut waits = 0;
    while plane_threads() == 0 && waits < 500 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        waits += 1;
    }
    assert!(plane_threads() > 0, "no plane thread ever ran");

    tokio::task::spawn_blocking(move || plane.shutdown())
        .await
        .unwrap();

    for (id, reader) in readers.into_iter().enumerate() {
        let received = reader.await.unwrap();
        let mut expected: Vec<Message> =
            (0..5).map(|i| Message::text(format!("{id}-{i}"))).collect();
        expected.push(Message::Close(Some(
            tokio_tungstenite::tungstenite::protocol::CloseFrame {
                code: GOING_AWAY.into(),
                reason: "".into(),
            },
        )));
        assert_eq!(received, expected);
    }
    let mut closed = Vec::new();
    for _ in 0..3 {
        match events.next().await {
            Event::Closed(id, code, _) => closed.push((id, code)),
            other => panic!("unexpected {other:?}"),
        }
    }
    closed.sort();
    assert_eq!(
        closed,
        [
            (ConnId(0), GOING_AWAY),
            (ConnId(1), GOING_AWAY),
            (ConnId(2), 1006)
        ]
    );

    assert_eq!(plane_threads(), 0);
    drop(silent);
    drop(server);
    assert_eq!(open_fds(), fds_before);
}
