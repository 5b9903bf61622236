//! A connection that once read a large message does not keep room for it while it idles, as
//! tungstenite alone would for the connection's life. Alone in its binary: it measures what the
//! whole process holds on the heap.

mod common;

use std::time::Duration;

use common::{recorder, Event, Events, Server, PATIENCE};
use connection_plane::{ConnId, Plane, Settings};
use tokio::io::AsyncWriteExt;

#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

const LARGE: usize = 4 * 1024 * 1024;

/// A masked text frame, written to the socket as it is: a client's own buffers would be counted
/// too.
fn text_frame(text: &str) -> Vec<u8> {
    let mask = [0x21, 0x43, 0x65, 0x87];
    let mut frame = vec![0x81, 0x80 | 127];
    frame.extend_from_slice(&(text.len() as u64).to_be_bytes());
    frame.extend_from_slice(&mask);
    frame.extend(
        text.bytes()
            .enumerate()
            .map(|(index, byte)| byte ^ mask[index % 4]),
    );
    frame
}

async fn received(events: &mut Events) -> String {
    match events.next().await {
        Event::Message(ConnId(1), text) => text,
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn an_idle_connection_keeps_no_room_for_the_largest_message_it_read() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let plane = Plane::new(Settings::default()).unwrap();
    let server = Server::bind().await;
    let (inbound, mut events) = recorder();
    let (mut client, upgraded) = server.connect().await;
    let _conn = upgraded.adopt(&plane, ConnId(1), inbound);
    let socket = client.get_mut();
    socket.write_all(&text_frame("small")).await.unwrap();
    assert_eq!(received(&mut events).await, "small");
    let before = dhat::HeapStats::get().curr_bytes;

    socket
        .write_all(&text_frame(&"x".repeat(LARGE)))
        .await
        .unwrap();
    assert_eq!(received(&mut events).await.len(), LARGE);
    socket.write_all(&text_frame("after")).await.unwrap();
    assert_eq!(received(&mut events).await, "after");

    // The room is let go of once the connection waits for more, which it does by now or soon.
    let waited = tokio::time::Instant::now();
    let mut held = dhat::HeapStats::get().curr_bytes;
    while held >= before + LARGE / 4 && waited.elapsed() < PATIENCE {
        tokio::time::sleep(Duration::from_millis(10)).await;
        held = dhat::HeapStats::get().curr_bytes;
    }
    assert!(
        held < before + LARGE / 4,
        "{} bytes more held after a {LARGE}-byte message",
        held - before
    );
    plane.shutdown();
}
