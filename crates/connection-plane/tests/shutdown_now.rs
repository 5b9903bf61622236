//! Stopping the plane at once, as a process or worker that exits must: nothing is sent, nothing is
//! waited for, and nothing of the plane is left behind. Alone in its binary, so threads and
//! descriptors are counted undisturbed.

mod common;

use std::time::Duration;

use common::{read_to_end, recorder, Event, Server, PATIENCE};
use connection_plane::{ConnId, Plane, Settings};
use tokio_tungstenite::tungstenite::Message;

const THREAD_NAME: &str = "ws-plane-now";

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

/// Polls `condition` until it holds: what outlives `shutdown_now` ends on its own, soon after.
async fn eventually(condition: impl Fn() -> bool, what: &str) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !condition() {
        assert!(tokio::time::Instant::now() < deadline, "{what} never");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_now_sends_nothing_waits_for_nothing_and_leaves_nothing() {
    let fds_before = open_fds();
    // A graceful stop would wait an hour here, on a client that never answers.
    let plane = Plane::new(Settings {
        thread_name: THREAD_NAME.to_owned(),
        shutdown_grace: Duration::from_secs(3600),
        close_timeout: Duration::from_secs(3600),
        ..Settings::default()
    })
    .unwrap();

    let server = Server::bind().await;
    let (inbound, mut events) = recorder();
    let (mut reading, upgraded) = server.connect().await;
    let _reading_conn = upgraded.adopt(&plane, ConnId(0), inbound.clone());
    let (silent, upgraded) = server.connect().await;
    let _silent_conn = upgraded.adopt(&plane, ConnId(1), inbound.clone());
    // A thread names itself once it runs, which a loaded machine may delay.
    eventually(|| plane_threads() > 0, "the plane's threads started").await;

    let stopped = tokio::task::spawn_blocking(move || plane.shutdown_now());
    tokio::time::timeout(PATIENCE, stopped)
        .await
        .expect("shutdown_now waited")
        .unwrap();

    // Dropped, not closed: the client sees its stream end without a Close.
    assert_eq!(read_to_end(&mut reading).await, Vec::<Message>::new());
    let mut closed = Vec::new();
    for _ in 0..2 {
        match events.next().await {
            Event::Closed(id, code, _) => closed.push((id, code)),
            other => panic!("unexpected {other:?}"),
        }
    }
    closed.sort();
    assert_eq!(closed, [(ConnId(0), 1006), (ConnId(1), 1006)]);

    eventually(|| plane_threads() == 0, "the plane's threads ended").await;
    drop((reading, silent, server));
    assert_eq!(open_fds(), fds_before);
}
