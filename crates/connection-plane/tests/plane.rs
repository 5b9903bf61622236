//! The plane against real loopback clients: takeover, fan-out, both kinds of close, limits.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{read_to_end, recorder, Client, Event, Events, Request, Server, PATIENCE};
use connection_plane::{
    ConnId, Connection, FrameError, Heartbeat, Inbound, InvalidCloseCode, Payload, Plane, Settings,
    NO_STATUS, OVERSIZED_CODE, OVERSIZED_REASON,
};
use futures_util::{SinkExt, StreamExt};
use sync_core::protocol::limits::MAX_PAYLOAD_BYTES;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Bytes, Message};

fn plane() -> Plane {
    Plane::new(Settings::default()).expect("plane")
}

/// A plane with one client connected and taken over as `id`, what reaches the host recorded.
async fn adopted(id: u64) -> (Plane, Client, Connection, Events) {
    let plane = plane();
    let server = Server::bind().await;
    let (inbound, events) = recorder();
    let (client, upgraded) = server.connect().await;
    let conn = upgraded.adopt(&plane, ConnId(id), inbound);
    (plane, client, conn, events)
}

/// Waits until our Close has reached `client`, without reading it.
async fn our_close_arrived(client: &Client) {
    let mut byte = [0];
    tokio::time::timeout(PATIENCE, client.get_ref().peek(&mut byte))
        .await
        .expect("our Close never came")
        .unwrap();
}

fn text(message: &str) -> Message {
    Message::text(message)
}

fn texts(received: &[Message]) -> Vec<String> {
    received
        .iter()
        .filter_map(|message| match message {
            Message::Text(text) => Some(text.as_str().to_owned()),
            _ => None,
        })
        .collect()
}

fn close_of(received: &[Message]) -> Option<(u16, String)> {
    received.iter().find_map(|message| match message {
        Message::Close(Some(frame)) => Some((frame.code.into(), frame.reason.as_str().to_owned())),
        _ => None,
    })
}

#[tokio::test]
async fn an_upgrade_the_plane_answers_is_complete_before_its_first_frame() {
    let plane = plane();
    let server = Server::bind().await;
    let (inbound, mut events) = recorder();
    let (client, request) = server.connect_unanswered().await;
    let Request { upgraded, response } = request;
    let conn = upgraded.adopt_answering(&plane, ConnId(1), inbound, response);
    // Queued before the client could have read the response: it must still come after it.
    conn.send(Payload::from("first".to_owned())).unwrap();

    let mut client = client.await;
    let first = tokio::time::timeout(PATIENCE, client.next())
        .await
        .expect("nothing arrived in time");
    assert_eq!(first.unwrap().unwrap(), text("first"));
    client.send(text("back")).await.unwrap();
    assert_eq!(
        events.next().await,
        Event::Message(ConnId(1), "back".into())
    );
    drop(client);
    assert!(matches!(
        events.next().await,
        Event::Closed(ConnId(1), _, _)
    ));
}

#[tokio::test]
async fn messages_sent_around_the_takeover_arrive_once_and_in_order() {
    let plane = plane();
    let server = Server::bind().await;
    let (inbound, mut events) = recorder();
    let (mut client, mut upgraded) = server.connect().await;

    for i in 0..50 {
        client.send(text(&format!("before-{i:02}"))).await.unwrap();
    }
    // Each masked frame is 15 bytes, so this cuts one in half: the rest is still in the socket.
    upgraded.read_until(100).await;
    let conn = upgraded.adopt(&plane, ConnId(1), inbound);
    for i in 0..50 {
        client.send(text(&format!("after-{i:02}"))).await.unwrap();
    }

    let expected: Vec<String> = (0..50)
        .map(|i| format!("before-{i:02}"))
        .chain((0..50).map(|i| format!("after-{i:02}")))
        .collect();
    for text in &expected {
        assert_eq!(events.next().await, Event::Message(ConnId(1), text.clone()));
    }

    conn.send(Payload::from("reply".to_owned())).unwrap();
    assert_eq!(client.next().await.unwrap().unwrap(), text("reply"));
    client.close(None).await.unwrap();
    assert_eq!(
        events.next().await,
        Event::Closed(ConnId(1), 1005, String::new())
    );
    plane.shutdown();
}

#[tokio::test]
async fn head_holding_whole_frames_and_the_upgrade_remainder_is_replayed() {
    let plane = plane();
    let server = Server::bind().await;
    let (inbound, mut events) = recorder();
    let (mut client, mut upgraded) = server.connect().await;

    client.send(text("one")).await.unwrap();
    client.send(text("two")).await.unwrap();
    // Exactly two whole frames of 2 + 4 + 3 bytes: nothing of them is left in the socket.
    upgraded.read_until(18).await;
    let _conn = upgraded.adopt(&plane, ConnId(2), inbound);
    client.send(text("three")).await.unwrap();

    for expected in ["one", "two", "three"] {
        assert_eq!(
            events.next().await,
            Event::Message(ConnId(2), expected.to_owned())
        );
    }
    drop(client);
    assert_eq!(
        events.next().await,
        Event::Closed(ConnId(2), 1006, String::new())
    );
    plane.shutdown();
}

#[tokio::test]
async fn a_shared_payload_fans_out_to_every_connection_in_order() {
    let plane = plane();
    let server = Server::bind().await;
    let (inbound, mut events) = recorder();
    let mut clients = Vec::new();
    let mut conns = Vec::new();
    for id in 0..3 {
        let (client, upgraded) = server.connect().await;
        clients.push(client);
        conns.push(upgraded.adopt(&plane, ConnId(id), inbound.clone()));
    }

    for round in 0..200 {
        let broadcast = Payload::from(format!("all-{round}"));
        for (id, conn) in conns.iter().enumerate() {
            conn.send(broadcast.clone()).unwrap();
            conn.send(Payload::from(format!("only-{id}-{round}")))
                .unwrap();
        }
    }
    for conn in &conns {
        conn.close(1000, "done").unwrap();
    }

    for (id, client) in clients.iter_mut().enumerate() {
        let received = read_to_end(client).await;
        let expected: Vec<String> = (0..200)
            .flat_map(|round| [format!("all-{round}"), format!("only-{id}-{round}")])
            .collect();
        assert_eq!(texts(&received), expected);
        assert_eq!(close_of(&received), Some((1000, "done".to_owned())));
    }
    let mut closed: Vec<Event> = Vec::new();
    for _ in 0..3 {
        closed.push(events.next().await);
    }
    closed.sort_by_key(|event| format!("{event:?}"));
    assert_eq!(
        closed,
        (0..3)
            .map(|id| Event::Closed(ConnId(id), 1000, "done".to_owned()))
            .collect::<Vec<_>>()
    );
    for conn in &conns {
        assert_eq!(conn.buffered_amount(), 0);
    }
    plane.shutdown();
}

#[tokio::test]
async fn our_close_goes_out_after_queued_frames_and_waits_for_the_reply() {
    let (plane, mut client, conn, mut events) = adopted(3).await;

    conn.send(Payload::from("last words".to_owned())).unwrap();
    conn.close(4000, "bye").unwrap();
    conn.send(Payload::from("too late".to_owned())).unwrap();

    let received = read_to_end(&mut client).await;
    assert_eq!(texts(&received), ["last words"]);
    assert_eq!(close_of(&received), Some((4000, "bye".to_owned())));
    assert_eq!(
        events.next().await,
        Event::Closed(ConnId(3), 4000, "bye".to_owned())
    );
    plane.shutdown();
}

#[tokio::test]
async fn an_overlong_close_reason_is_cut_at_a_character_boundary() {
    let (plane, mut client, conn, mut events) = adopted(4).await;

    // 61 two-byte characters and one more: 124 bytes, one over what a close frame holds.
    let reason = "é".repeat(62);
    conn.close(4001, &reason).unwrap();

    let received = read_to_end(&mut client).await;
    let cut = "é".repeat(61);
    assert_eq!(close_of(&received), Some((4001, cut.clone())));
    assert_eq!(events.next().await, Event::Closed(ConnId(4), 4001, cut));
    plane.shutdown();
}

#[tokio::test]
async fn a_close_without_a_status_sends_an_empty_close_frame() {
    let (plane, mut client, conn, mut events) = adopted(16).await;

    // The reason goes with the status: ws's close() drops it too when given no code.
    conn.close(NO_STATUS, "ignored").unwrap();

    let received = read_to_end(&mut client).await;
    assert_eq!(received, [Message::Close(None)]);
    // The client's reply carries no status either.
    assert_eq!(
        events.next().await,
        Event::Closed(ConnId(16), NO_STATUS, String::new())
    );
    plane.shutdown();
}

#[tokio::test]
async fn a_close_code_that_may_not_be_sent_is_refused_and_the_connection_stays_open() {
    let (plane, mut client, conn, mut events) = adopted(17).await;

    for code in [1004, 1006, 1015, 2000, 5000] {
        assert_eq!(conn.close(code, "no"), Err(InvalidCloseCode(code)));
    }
    conn.send(Payload::from("still open".to_owned())).unwrap();
    conn.close(1000, "now").unwrap();

    let received = read_to_end(&mut client).await;
    assert_eq!(texts(&received), ["still open"]);
    assert_eq!(close_of(&received), Some((1000, "now".to_owned())));
    assert_eq!(
        events.next().await,
        Event::Closed(ConnId(17), 1000, "now".to_owned())
    );
    plane.shutdown();
}

#[tokio::test]
async fn the_peers_close_follows_what_was_queued_before_it() {
    let (plane, mut client, conn, mut events) = adopted(5).await;

    for i in 0..100 {
        conn.send(Payload::from(format!("due-{i}"))).unwrap();
    }
    client
        .close(Some(CloseFrame {
            code: CloseCode::from(4002),
            reason: "later".into(),
        }))
        .await
        .unwrap();

    let received = read_to_end(&mut client).await;
    let expected: Vec<String> = (0..100).map(|i| format!("due-{i}")).collect();
    assert_eq!(texts(&received), expected);
    assert_eq!(close_of(&received), Some((4002, "later".to_owned())));
    assert_eq!(
        events.next().await,
        Event::Closed(ConnId(5), 4002, "later".to_owned())
    );
    plane.shutdown();
}

#[tokio::test]
async fn the_reply_to_a_slow_readers_close_waits_for_its_whole_backlog() {
    let plane = plane();
    let server = Server::bind().await;
    let (inbound, mut events) = recorder();
    let (mut client, upgraded) = server.connect_small().await;
    let conn = upgraded.adopt(&plane, ConnId(22), inbound);

    // Far more than the socket buffers hold: the reply is queued behind most of it.
    let chunk = Payload::from("s".repeat(256 * 1024));
    for _ in 0..48 {
        conn.send(chunk.clone()).unwrap();
    }
    client
        .close(Some(CloseFrame {
            code: CloseCode::from(4005),
            reason: "enough".into(),
        }))
        .await
        .unwrap();

    let received = read_to_end(&mut client).await;
    let delivered: usize = texts(&received).iter().map(String::len).sum();
    assert_eq!(delivered, 48 * chunk.len());
    assert_eq!(close_of(&received), Some((4005, "enough".to_owned())));
    assert_eq!(
        events.next().await,
        Event::Closed(ConnId(22), 4005, "enough".to_owned())
    );
    assert_eq!(conn.buffered_amount(), 0);
    plane.shutdown();
}

#[tokio::test]
async fn terminate_drops_the_socket_without_a_close_frame() {
    let (plane, mut client, conn, mut events) = adopted(6).await;

    conn.terminate();
    assert_eq!(
        events.next().await,
        Event::Closed(ConnId(6), 1006, String::new())
    );
    let received = read_to_end(&mut client).await;
    assert_eq!(close_of(&received), None);
    conn.close(1000, "").unwrap();
    assert!(conn.send(Payload::from("ignored".to_owned())).is_ok());
    plane.shutdown();
}

#[tokio::test]
async fn a_message_over_16_mib_is_still_delivered_for_the_router_to_judge() {
    let (plane, mut client, _conn, mut events) = adopted(7).await;

    client.send(text("fine")).await.unwrap();
    client
        .send(Message::text("x".repeat(MAX_PAYLOAD_BYTES + 1)))
        .await
        .unwrap();
    client.send(text("after")).await.unwrap();

    assert_eq!(
        events.next().await,
        Event::Message(ConnId(7), "fine".to_owned())
    );
    // Compared by size: a failing comparison would print all 16 MiB.
    match events.next().await {
        Event::Message(ConnId(7), big) => assert_eq!(big.len(), MAX_PAYLOAD_BYTES + 1),
        other => panic!("expected the big message, got {other:?}"),
    }
    assert_eq!(
        events.next().await,
        Event::Message(ConnId(7), "after".to_owned())
    );
    // The plane itself neither closed nor reported anything.
    drop(client);
    assert_eq!(
        events.next().await,
        Event::Closed(ConnId(7), 1006, String::new())
    );
    plane.shutdown();
}

#[tokio::test]
async fn messages_arriving_while_our_close_is_under_way_are_delivered_whatever_their_size() {
    let (plane, mut client, conn, mut events) = adopted(18).await;

    conn.close(4003, "closing").unwrap();
    // Once our Close has reached the client the plane is waiting for the reply, and the client,
    // not having read it yet, may still send.
    our_close_arrived(&client).await;
    client.send(text("late")).await.unwrap();
    client
        .send(Message::text("y".repeat(MAX_PAYLOAD_BYTES + 1)))
        .await
        .unwrap();

    let received = read_to_end(&mut client).await;
    assert_eq!(close_of(&received), Some((4003, "closing".to_owned())));
    assert_eq!(
        events.next().await,
        Event::Message(ConnId(18), "late".to_owned())
    );
    match events.next().await {
        Event::Message(ConnId(18), big) => assert_eq!(big.len(), MAX_PAYLOAD_BYTES + 1),
        other => panic!("expected the big message, got {other:?}"),
    }
    assert_eq!(
        events.next().await,
        Event::Closed(ConnId(18), 4003, "closing".to_owned())
    );
    plane.shutdown();
}

#[tokio::test]
async fn a_message_past_the_read_limit_is_cut_off_and_still_closed_with_1013() {
    let plane = Plane::new(Settings {
        max_message_size: 1024,
        ..Settings::default()
    })
    .unwrap();
    let server = Server::bind().await;
    let (inbound, mut events) = recorder();
    let (mut client, upgraded) = server.connect().await;
    let _conn = upgraded.adopt(&plane, ConnId(8), inbound);

    client
        .send(Message::text("y".repeat(256 * 1024)))
        .await
        .unwrap();

    let received = read_to_end(&mut client).await;
    assert_eq!(
        close_of(&received),
        Some((OVERSIZED_CODE, OVERSIZED_REASON.to_owned()))
    );
    // The plane discards until the peer hangs up, which a tungstenite client does on drop.
    drop(client);
    assert_eq!(events.next().await, Event::Oversized(ConnId(8)));
    assert_eq!(
        events.next().await,
        Event::Closed(ConnId(8), 1006, String::new())
    );
    plane.shutdown();
}

/// Sends a frame exactly as given, past the client's own framing (which would mask it).
async fn send_raw(client: &mut common::Client, frame: &[u8]) {
    use tokio::io::AsyncWriteExt;
    client.get_mut().write_all(frame).await.unwrap();
}

/// A masked client frame of a few bytes, with a zero mask so the payload reads as it is.
fn masked(first: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mut frame = vec![first, 0x80 | payload.len() as u8, 0, 0, 0, 0];
    frame.extend_from_slice(payload);
    frame
}

/// The frame is reported as ws reports it, the client gets ws's bare status, nothing after the
/// frame is delivered, and the connection ends 1006 as ws never reads the client's Close.
async fn expect_rejected(frame: &[u8], conn: ConnId, code: &str, message: &str, status: u16) {
    let plane = plane();
    let server = Server::bind().await;
    let (inbound, mut events) = recorder();
    let (mut client, upgraded) = server.connect().await;
    let _conn = upgraded.adopt(&plane, conn, inbound);

    client.send(text("before")).await.unwrap();
    send_raw(&mut client, frame).await;
    client.send(text("after")).await.unwrap();

    let received = read_to_end(&mut client).await;
    assert_eq!(close_of(&received), Some((status, String::new())));
    assert_eq!(
        events.next().await,
        Event::Message(conn, "before".to_owned())
    );
    match events.next().await {
        Event::FrameError(id, error) => {
            assert_eq!(id, conn);
            assert_eq!(
                (error.code, error.message.as_str(), error.status),
                (code, message, status)
            );
            assert_eq!(error.range_error, status != 1007);
        }
        other => panic!("expected a frame error, got {other:?}"),
    }
    drop(client);
    assert_eq!(
        events.next().await,
        Event::Closed(conn, 1006, String::new())
    );
    plane.shutdown();
}

#[tokio::test]
async fn invalid_utf8_text_is_reported_and_closed_with_1007() {
    expect_rejected(
        &masked(0x81, b"\xff\xfe"),
        ConnId(9),
        "WS_ERR_INVALID_UTF8",
        "Invalid WebSocket frame: invalid UTF-8 sequence",
        1007,
    )
    .await;
}

#[tokio::test]
async fn an_unmasked_frame_is_reported_and_closed_with_1002() {
    expect_rejected(
        &[0x81, 0x02, b'h', b'i'],
        ConnId(19),
        "WS_ERR_EXPECTED_MASK",
        "Invalid WebSocket frame: MASK must be set",
        1002,
    )
    .await;
}

#[tokio::test]
async fn a_reserved_opcode_is_reported_and_closed_with_1002() {
    expect_rejected(
        &masked(0x83, b"hi"),
        ConnId(20),
        "WS_ERR_INVALID_OPCODE",
        "Invalid WebSocket frame: invalid opcode 3",
        1002,
    )
    .await;
}

#[tokio::test]
async fn a_close_status_ws_refuses_is_reported_and_answered_with_1002() {
    for (index, code) in [999u16, 1005, 1006, 1015, 2999, 5000]
        .into_iter()
        .enumerate()
    {
        let mut payload = code.to_be_bytes().to_vec();
        payload.extend_from_slice(b"why");
        expect_rejected(
            &masked(0x88, &payload),
            ConnId(30 + index as u64),
            "WS_ERR_INVALID_CLOSE_CODE",
            &format!("Invalid WebSocket frame: invalid status code {code}"),
            1002,
        )
        .await;
    }
}

#[tokio::test]
async fn a_close_status_ws_refuses_read_with_the_upgrade_is_reported_too() {
    let plane = plane();
    let server = Server::bind().await;
    let (inbound, mut events) = recorder();
    let (mut client, mut upgraded) = server.connect().await;
    client.send(text("first")).await.unwrap();
    send_raw(&mut client, &masked(0x88, &1015u16.to_be_bytes())).await;
    // Both frames, 2 + 4 + 5 and 2 + 4 + 2 bytes, are in the head the plane is handed.
    upgraded.read_until(19).await;
    let _conn = upgraded.adopt(&plane, ConnId(36), inbound);

    assert_eq!(
        events.next().await,
        Event::Message(ConnId(36), "first".to_owned())
    );
    match events.next().await {
        Event::FrameError(ConnId(36), error) => assert_eq!(
            (error.code, error.message.as_str()),
            (
                "WS_ERR_INVALID_CLOSE_CODE",
                "Invalid WebSocket frame: invalid status code 1015"
            )
        ),
        other => panic!("expected a frame error, got {other:?}"),
    }
    let received = read_to_end(&mut client).await;
    assert_eq!(close_of(&received), Some((1002, String::new())));
    drop(client);
    assert_eq!(
        events.next().await,
        Event::Closed(ConnId(36), 1006, String::new())
    );
    plane.shutdown();
}

#[tokio::test]
async fn a_reply_to_our_close_with_a_status_ws_refuses_is_reported() {
    let (plane, mut client, conn, mut events) = adopted(37).await;

    conn.close(4004, "going").unwrap();
    our_close_arrived(&client).await;
    send_raw(&mut client, &masked(0x88, &1006u16.to_be_bytes())).await;

    match events.next().await {
        Event::FrameError(ConnId(37), error) => {
            assert_eq!(error.code, "WS_ERR_INVALID_CLOSE_CODE")
        }
        other => panic!("expected a frame error, got {other:?}"),
    }
    // ws sends nothing more either: its Close is out already.
    let received = read_to_end(&mut client).await;
    assert_eq!(close_of(&received), Some((4004, "going".to_owned())));
    assert_eq!(received.len(), 1);
    drop(client);
    assert_eq!(
        events.next().await,
        Event::Closed(ConnId(37), 1006, String::new())
    );
    plane.shutdown();
}

/// ws takes 1014 from a peer, which tungstenite would answer and report as 1002 "Protocol
/// violation": the answer echoes the peer's status and reason, after what was queued before it.
#[tokio::test]
async fn a_1014_close_is_answered_and_reported_with_its_status_and_reason() {
    let (plane, mut client, conn, mut events) = adopted(40).await;

    for i in 0..100 {
        conn.send(Payload::from(format!("due-{i}"))).unwrap();
    }
    client.send(text("before")).await.unwrap();
    client
        .close(Some(CloseFrame {
            code: CloseCode::from(1014),
            reason: "Bad Gateway é".into(),
        }))
        .await
        .unwrap();

    let received = read_to_end(&mut client).await;
    let expected: Vec<String> = (0..100).map(|i| format!("due-{i}")).collect();
    assert_eq!(texts(&received), expected);
    assert_eq!(
        close_of(&received),
        Some((1014, "Bad Gateway é".to_owned()))
    );
    assert_eq!(
        events.next().await,
        Event::Message(ConnId(40), "before".to_owned())
    );
    assert_eq!(
        events.next().await,
        Event::Closed(ConnId(40), 1014, "Bad Gateway é".to_owned())
    );
    assert_eq!(events.so_far(), []);
    assert_eq!(conn.buffered_amount(), 0);
    plane.shutdown();
}

/// ws checks the status first, then the reason: 1014 passes, a reason that is not UTF-8 does not.
#[tokio::test]
async fn a_1014_close_whose_reason_is_not_utf8_is_reported_and_closed_with_1007() {
    expect_rejected(
        &masked(0x88, b"\x03\xf6\xff\xfe"),
        ConnId(43),
        "WS_ERR_INVALID_UTF8",
        "Invalid WebSocket frame: invalid UTF-8 sequence",
        1007,
    )
    .await;
}

#[tokio::test]
async fn a_1014_close_read_with_the_upgrade_is_answered_too() {
    use tokio::io::AsyncReadExt;
    let plane = plane();
    let server = Server::bind().await;
    let (inbound, mut events) = recorder();
    let (mut client, mut upgraded) = server.connect().await;
    client.send(text("first")).await.unwrap();
    send_raw(&mut client, &masked(0x88, b"\x03\xf6gw")).await;
    // Both frames, 2 + 4 + 5 and 2 + 4 + 4 bytes, are in the head the plane is handed.
    upgraded.read_until(21).await;
    let _conn = upgraded.adopt(&plane, ConnId(41), inbound);

    assert_eq!(
        events.next().await,
        Event::Message(ConnId(41), "first".to_owned())
    );
    assert_eq!(
        events.next().await,
        Event::Closed(ConnId(41), 1014, "gw".to_owned())
    );
    assert_eq!(events.so_far(), []);
    // Read as bytes: the client's tungstenite, which never sent a Close of its own, would
    // report the answer as 1002 itself.
    let mut received = Vec::new();
    tokio::time::timeout(PATIENCE, client.get_mut().read_to_end(&mut received))
        .await
        .expect("the server never hung up")
        .unwrap();
    assert_eq!(received, b"\x88\x04\x03\xf6gw");
    plane.shutdown();
}

#[tokio::test]
async fn a_reply_to_our_close_with_1014_is_reported_as_it_is() {
    let (plane, mut client, conn, mut events) = adopted(42).await;

    conn.close(4004, "going").unwrap();
    our_close_arrived(&client).await;
    client
        .close(Some(CloseFrame {
            code: CloseCode::from(1014),
            reason: "gateway".into(),
        }))
        .await
        .unwrap();

    let received = read_to_end(&mut client).await;
    assert_eq!(close_of(&received), Some((4004, "going".to_owned())));
    assert_eq!(
        events.next().await,
        Event::Closed(ConnId(42), 1014, "gateway".to_owned())
    );
    assert_eq!(events.so_far(), []);
    plane.shutdown();
}

#[tokio::test]
async fn a_frame_error_while_our_close_is_under_way_is_still_reported() {
    let (plane, mut client, conn, mut events) = adopted(21).await;

    conn.close(4004, "going").unwrap();
    our_close_arrived(&client).await;
    send_raw(&mut client, &masked(0x81, b"\xc0")).await;

    match events.next().await {
        Event::FrameError(ConnId(21), error) => assert_eq!(error.code, "WS_ERR_INVALID_UTF8"),
        other => panic!("expected a frame error, got {other:?}"),
    }
    // No second Close: ours was sent already, and the client's reply is never read.
    let received = read_to_end(&mut client).await;
    assert_eq!(
        received,
        [Message::Close(Some(CloseFrame {
            code: CloseCode::from(4004),
            reason: "going".into(),
        }))]
    );
    // The plane reads on until the peer hangs up, so the peer's late frames cannot reset it.
    drop(client);
    assert_eq!(
        events.next().await,
        Event::Closed(ConnId(21), 1006, String::new())
    );
    plane.shutdown();
}

#[tokio::test]
async fn binary_frames_arrive_as_lossy_text() {
    let (plane, mut client, _conn, mut events) = adopted(10).await;

    client
        .send(Message::binary(Bytes::from_static(b"hi\xff")))
        .await
        .unwrap();
    assert_eq!(
        events.next().await,
        Event::Message(ConnId(10), "hi\u{FFFD}".to_owned())
    );
    drop(client);
    assert_eq!(
        events.next().await,
        Event::Closed(ConnId(10), 1006, String::new())
    );
    plane.shutdown();
}

#[tokio::test]
async fn sends_to_a_peer_that_stops_reading_are_refused_once_the_backlog_is_full() {
    let plane = plane();
    let server = Server::bind().await;
    let (inbound, mut events) = recorder();
    let (mut client, upgraded) = server.connect_small().await;
    let conn = upgraded.adopt(&plane, ConnId(11), inbound);

    assert!(conn
        .send(Payload::from("z".repeat(MAX_PAYLOAD_BYTES + 1)))
        .is_err());

    let chunk = Payload::from("c".repeat(256 * 1024));
    let mut accepted = 0;
    while conn.send(chunk.clone()).is_ok() {
        accepted += chunk.len();
        assert!(conn.buffered_amount() <= MAX_PAYLOAD_BYTES);
        // What the kernel holds is all that can be past the backlog: a few MiB, far below this.
        assert!(accepted < 3 * MAX_PAYLOAD_BYTES, "the backlog never filled");
        tokio::task::yield_now().await;
    }
    assert!(conn.buffered_amount() + chunk.len() > MAX_PAYLOAD_BYTES);

    // Once the peer reads again, everything accepted arrives and the backlog drains.
    conn.close(1000, "").unwrap();
    let received = read_to_end(&mut client).await;
    let delivered: usize = texts(&received).iter().map(String::len).sum();
    assert_eq!(delivered, accepted);
    assert_eq!(conn.buffered_amount(), 0);
    assert_eq!(
        events.next().await,
        Event::Closed(ConnId(11), 1000, String::new())
    );
    plane.shutdown();
}

#[tokio::test]
async fn the_heartbeat_drops_a_peer_that_stops_answering() {
    let plane = Plane::new(Settings {
        heartbeat: Some(Heartbeat {
            interval: Duration::from_millis(20),
            allowed_misses: 2,
        }),
        ..Settings::default()
    })
    .unwrap();
    let server = Server::bind().await;
    let (inbound, mut events) = recorder();
    // Never polled, so it never answers a ping.
    let (_client, upgraded) = server.connect().await;
    let _conn = upgraded.adopt(&plane, ConnId(12), inbound);

    assert_eq!(events.next().await, Event::HeartbeatLost(ConnId(12)));
    assert_eq!(
        events.next().await,
        Event::Closed(ConnId(12), 1006, String::new())
    );
    plane.shutdown();
}

#[tokio::test]
async fn the_heartbeat_keeps_a_peer_that_answers() {
    let plane = Plane::new(Settings {
        heartbeat: Some(Heartbeat {
            interval: Duration::from_millis(50),
            allowed_misses: 5,
        }),
        ..Settings::default()
    })
    .unwrap();
    let server = Server::bind().await;
    let (inbound, mut events) = recorder();
    let (client, upgraded) = server.connect().await;
    let conn = upgraded.adopt(&plane, ConnId(13), inbound);
    let (mut sink, mut stream) = client.split();

    let reader = tokio::spawn(async move {
        let mut pings = 0;
        while let Some(Ok(message)) = stream.next().await {
            if message.is_ping() {
                pings += 1;
            }
        }
        pings
    });
    // Long enough for a dozen intervals: a peer whose pongs went unnoticed would be gone.
    tokio::time::sleep(Duration::from_millis(600)).await;
    sink.send(text("still here")).await.unwrap();
    assert_eq!(
        events.next().await,
        Event::Message(ConnId(13), "still here".to_owned())
    );

    conn.close(1000, "").unwrap();
    let pings = tokio::time::timeout(PATIENCE, reader)
        .await
        .unwrap()
        .unwrap();
    assert!(pings > 0, "an idle peer was never pinged");
    assert_eq!(
        events.next().await,
        Event::Closed(ConnId(13), 1000, String::new())
    );
    plane.shutdown();
}

/// A hub with a bug: it panics on every message.
struct Panicking(Arc<common::Recorder>);

impl Inbound for Panicking {
    fn message(&self, _: ConnId, _: &str) {
        panic!("a hub bug");
    }

    fn oversized(&self, conn: ConnId) {
        self.0.oversized(conn);
    }

    fn frame_error(&self, conn: ConnId, error: FrameError) {
        self.0.frame_error(conn, error);
    }

    fn closed(&self, conn: ConnId, code: u16, reason: &str) {
        self.0.closed(conn, code, reason);
    }
}

#[tokio::test]
async fn a_panic_while_serving_still_reports_the_end() {
    let plane = plane();
    let server = Server::bind().await;
    let (inbound, mut events) = recorder();
    let (mut client, upgraded) = server.connect().await;
    let _conn = upgraded.adopt(&plane, ConnId(14), Arc::new(Panicking(inbound)));

    client.send(text("boom")).await.unwrap();
    assert_eq!(
        events.next().await,
        Event::Closed(ConnId(14), 1006, String::new())
    );
    let received = read_to_end(&mut client).await;
    assert_eq!(close_of(&received), None);
    plane.shutdown();
}

#[tokio::test]
async fn adopting_something_that_is_not_an_fd_fails() {
    let plane = plane();
    let (inbound, _events) = recorder();
    assert!(plane.adopt(ConnId(15), -1, Vec::new(), inbound).is_err());
    plane.shutdown();
}

#[tokio::test]
async fn a_paused_connection_reads_nothing_until_resumed_and_loses_nothing() {
    let (plane, mut client, conn, mut events) = adopted(1).await;

    conn.pause_reading();
    for i in 0..20 {
        client.send(text(&format!("held-{i:02}"))).await.unwrap();
    }
    // Writing goes on while paused: once the reply is through, the task has run past the sends.
    conn.send(Payload::from("still writing".to_owned()))
        .unwrap();
    assert_eq!(client.next().await.unwrap().unwrap(), text("still writing"));
    assert_eq!(events.so_far(), vec![]);

    conn.resume_reading();
    for i in 0..20 {
        assert_eq!(
            events.next().await,
            Event::Message(ConnId(1), format!("held-{i:02}"))
        );
    }
    client.close(None).await.unwrap();
    assert_eq!(
        events.next().await,
        Event::Closed(ConnId(1), 1005, String::new())
    );
    plane.shutdown();
}
