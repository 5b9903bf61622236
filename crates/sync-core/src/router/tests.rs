//! The router driven through its public API, with an [`Outbox`] that records every effect.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use super::*;
use crate::protocol::limits::{MAX_QUEUED_MESSAGES, MULTIPLE_CLIENT_ID};

mod access;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    Send(u64, String),
    Close(u64, u16, String),
    Report(SyncError),
    ClientIds(String, String, i8),
    PathIds(String, i8),
    Start(u64, String),
    Stop(u64),
    StopTogether(Vec<u64>),
    ToServer(u64, String),
    Authorize(u64, u64, String, Option<String>),
}
use Event::*;

#[derive(Default)]
struct Recorder {
    events: Vec<Event>,
    payloads: Vec<Payload>,
    backpressured: HashSet<ConnId>,
    /// What a cluster would publish: path id, addressee, payload.
    published: Vec<(String, String, String)>,
    /// Messages access control dropped, by reason.
    dropped: HashMap<Dropped, usize>,
    /// Whether the host keeps paths running for other nodes' clients, as a cluster's holder.
    keeps: bool,
}

impl Outbox for Recorder {
    fn send(&mut self, conn: ConnId, payload: &Payload) -> Result<(), Backpressure> {
        if self.backpressured.contains(&conn) {
            return Err(Backpressure);
        }
        self.events.push(Send(conn.0, payload.as_str().to_owned()));
        self.payloads.push(payload.clone());
        Ok(())
    }

    fn close(&mut self, conn: ConnId, code: u16, reason: &str) {
        self.events.push(Close(conn.0, code, reason.to_owned()));
    }

    fn report(&mut self, error: SyncError) {
        self.events.push(Report(error));
    }

    fn client_ids(&mut self, path_id: &str, client_id: &str, change: i8) {
        self.events
            .push(ClientIds(path_id.into(), client_id.into(), change));
    }

    fn path_ids(&mut self, path_id: &str, change: i8) {
        self.events.push(PathIds(path_id.into(), change));
    }

    fn start_path(&mut self, path: PathKey, path_id: &str) {
        self.events.push(Start(path.0, path_id.into()));
    }

    fn stop_path(&mut self, path: PathKey) {
        self.events.push(Stop(path.0));
    }

    fn stop_paths(&mut self, paths: Vec<PathKey>) {
        self.events
            .push(StopTogether(paths.iter().map(|path| path.0).collect()));
    }

    fn to_server(&mut self, path: PathKey, payload: &str) {
        self.events.push(ToServer(path.0, payload.into()));
    }

    fn keeps(&mut self, _path: PathKey) -> bool {
        self.keeps
    }

    fn publish(&mut self, path_id: &str, to: &str, payload: &Payload) {
        self.published
            .push((path_id.into(), to.into(), payload.as_str().into()));
    }

    fn dropped(&mut self, reason: Dropped, count: usize) {
        *self.dropped.entry(reason).or_default() += count;
    }

    fn authorize(&mut self, request: AuthRequest) {
        self.events.push(Authorize(
            request.ticket,
            request.conn.0,
            request.path_id.into(),
            request.channel_id.map(str::to_owned),
        ));
    }
}

const TIMEOUT: Duration = Duration::from_secs(1);
const GET: &str = r#"[null,1,""]"#;
const OVERFLOW_SERVER: SyncError = SyncError::Overflow(Overflow::Server);
const OVERFLOW_SOCKET: SyncError = SyncError::Overflow(Overflow::Socket);
const OVERFLOW_CHANNELS: SyncError = SyncError::Overflow(Overflow::Channels);

/// A ContentHashes message, which a newer one replaces while held.
fn hashes(hash: u32) -> String {
    format!("[null,2,[{hash},0]]")
}

/// A valid GetTableDiff whose payload is `size` bytes once addressed to `to`.
fn sized(to: &str, size: usize) -> String {
    let padding = "x".repeat(size - to.len() - 1 - r#"[null,4,{"":1}]"#.len());
    format!("{to}\n[null,4,{{\"{padding}\":1}}]")
}

fn close(conn: u64, error: SyncError) -> Event {
    Close(conn, error.close_code(), error.to_string())
}

struct Fixture {
    router: Router,
    out: Recorder,
    now: Instant,
}

impl Fixture {
    fn new(has_factory: bool) -> Self {
        Self::with_fragments(has_factory, None)
    }

    fn with_fragments(has_factory: bool, fragment_size: Option<f64>) -> Self {
        Self::with_config(
            has_factory,
            fragment_size,
            Limits::default(),
            Duration::ZERO,
        )
    }

    fn with_limits(has_factory: bool, limits: Limits) -> Self {
        Self::with_config(has_factory, None, limits, Duration::ZERO)
    }

    fn kept_warm(keep_warm: Duration) -> Self {
        Self::with_config(true, None, Limits::default(), keep_warm)
    }

    fn with_config(
        has_factory: bool,
        fragment_size: Option<f64>,
        limits: Limits,
        keep_warm: Duration,
    ) -> Self {
        let mut ids = 0..;
        let config = Config {
            request_timeout: TIMEOUT,
            fragment_size,
            has_factory,
            message_id: Box::new(move || format!("messageId{:07}", ids.next().unwrap_or(0))),
            limits,
            keep_warm,
        };
        Fixture {
            router: Router::new(config),
            out: Recorder::default(),
            now: Instant::now(),
        }
    }

    fn open(&mut self, conn: u64, path_id: &str, client_id: &str) {
        let out = &mut self.out;
        self.router
            .open(ConnId(conn), path_id, client_id, false, out);
    }

    fn open_multiplexed(&mut self, conn: u64, base_path: &str, client_id: &str) {
        let out = &mut self.out;
        self.router
            .open(ConnId(conn), base_path, client_id, true, out);
    }

    fn receive(&mut self, conn: u64, payload: &str) {
        let (now, out) = (self.now, &mut self.out);
        self.router.receive(ConnId(conn), payload, now, out);
    }

    fn close(&mut self, conn: u64) {
        let (now, out) = (self.now, &mut self.out);
        self.router.close(ConnId(conn), now, out);
    }

    fn path_failed(&mut self, path: u64) {
        let (now, out) = (self.now, &mut self.out);
        self.router.path_failed(PathKey(path), now, out);
    }

    fn vacated(&mut self, path_id: &str) {
        let (now, out) = (self.now, &mut self.out);
        self.router.vacated(path_id, now, out);
    }

    fn hello(&mut self, conn: u64) {
        self.receive(conn, &format!("S\n{}", r#"["h",-1,[0,1]]"#));
    }

    fn subscribe(&mut self, conn: u64, channel_id: &str) {
        self.receive(conn, &format!("S\n[\"s\",-1,[1,\"{channel_id}\"]]"));
    }

    fn unsubscribe(&mut self, conn: u64, channel_id: &str) {
        self.receive(conn, &format!("S\n[null,-1,[2,\"{channel_id}\"]]"));
    }

    fn ready(&mut self, path: u64, has_server_client: bool) {
        let out = &mut self.out;
        self.router
            .path_ready(PathKey(path), has_server_client, out);
    }

    fn factory_called(&mut self, path: u64) {
        self.router.factory_called(PathKey(path), &mut self.out);
    }

    fn events(&mut self) -> Vec<Event> {
        self.out.payloads.clear();
        std::mem::take(&mut self.out.events)
    }

    fn sends(&mut self) -> Vec<(u64, String)> {
        self.events()
            .into_iter()
            .filter_map(|event| match event {
                Send(conn, payload) => Some((conn, payload)),
                _ => None,
            })
            .collect()
    }
}

fn sent(conn: u64, payload: &str) -> (u64, String) {
    (conn, payload.to_owned())
}

#[test]
fn a_legacy_client_joins_its_path_at_once_without_a_factory() {
    let mut f = Fixture::new(false);
    f.open(1, "p", "ka");
    f.open(2, "p", "kb");
    assert_eq!(
        f.events(),
        [
            PathIds("p".into(), 1),
            ClientIds("p".into(), "ka".into(), 1),
            ClientIds("p".into(), "kb".into(), 1),
        ]
    );
    assert_eq!(f.router.client_ids("p"), ["ka", "kb"]);
    assert_eq!(
        f.router.stats(),
        Stats {
            paths: 1,
            clients: 2
        }
    );
    assert!(f.router.client_ids("q").is_empty());
}

#[test]
fn a_broadcast_reaches_every_other_client_in_join_order() {
    let mut f = Fixture::new(false);
    for (conn, key) in [(1, "ka"), (2, "kb"), (3, "kc")] {
        f.open(conn, "p", key);
    }
    f.open(4, "q", "kd");
    f.events();
    f.receive(2, &format!("\n{GET}"));
    let forwarded = format!("kb\n{GET}");
    assert_eq!(f.sends(), [sent(1, &forwarded), sent(3, &forwarded)]);
}

#[test]
fn a_broadcast_shares_one_payload_among_its_recipients() {
    let mut f = Fixture::new(false);
    for (conn, key) in [(1, "ka"), (2, "kb"), (3, "kc")] {
        f.open(conn, "p", key);
    }
    f.receive(1, &format!("\n{GET}"));
    let [first, second] = f.out.payloads.as_slice() else {
        panic!("two recipients expected, got {:?}", f.out.payloads);
    };
    assert_eq!(first.bytes().as_ptr(), second.bytes().as_ptr());
}

#[test]
fn a_direct_message_reaches_only_its_target() {
    let mut f = Fixture::new(false);
    for (conn, key) in [(1, "ka"), (2, "kb"), (3, "kc")] {
        f.open(conn, "p", key);
    }
    f.events();
    f.receive(1, &format!("kc\n{GET}"));
    f.receive(1, &format!("nobody\n{GET}"));
    f.receive(1, &format!("S\n{GET}"));
    assert_eq!(f.sends(), [sent(3, &format!("ka\n{GET}"))]);
}

#[test]
fn the_server_client_gets_broadcasts_and_its_own_messages_once() {
    let mut f = Fixture::new(true);
    f.open(1, "p", "ka");
    f.open(2, "p", "kb");
    f.ready(0, true);
    f.events();
    f.receive(1, &format!("\n{GET}"));
    f.receive(1, &format!("S\n{GET}"));
    f.receive(1, &format!("kb\n{GET}"));
    let forwarded = format!("ka\n{GET}");
    assert_eq!(
        f.events(),
        [
            ToServer(0, forwarded.clone()),
            Send(2, forwarded.clone()),
            ToServer(0, forwarded.clone()),
            Send(2, forwarded),
        ]
    );
}

#[test]
fn a_path_without_a_server_client_relays_to_clients_only() {
    let mut f = Fixture::new(true);
    f.open(1, "p", "ka");
    f.open(2, "p", "kb");
    f.ready(0, false);
    f.events();
    f.receive(1, &format!("\n{GET}"));
    f.receive(1, &format!("S\n{GET}"));
    assert_eq!(f.events(), [Send(2, format!("ka\n{GET}"))]);
}

#[test]
fn a_fragmented_message_is_relayed_fragment_by_fragment_and_reaches_the_server_whole() {
    let mut f = Fixture::new(true);
    f.open(1, "p", "ka");
    f.open(2, "p", "kb");
    f.ready(0, true);
    f.events();
    let first = "abcdefghijklmnop\n0\n2\n[null,1,";
    let second = "abcdefghijklmnop\n1\n2\n\"\"]";
    f.receive(1, &format!("\n{second}"));
    assert_eq!(f.events(), []);
    f.receive(1, &format!("\n{first}"));
    assert_eq!(
        f.events(),
        [
            Send(2, format!("ka\n{first}")),
            ToServer(0, format!("ka\n{GET}")),
            Send(2, format!("ka\n{second}")),
        ]
    );
}

#[test]
fn a_pending_fragment_group_expires_on_the_router_timer() {
    let mut f = Fixture::new(false);
    f.open(1, "p", "ka");
    assert_eq!(f.router.next_deadline(), None);
    f.receive(1, "\nabcdefghijklmnop\n0\n2\n[null,1,");
    assert_eq!(f.router.next_deadline(), Some(f.now + TIMEOUT));
    f.router.expire(f.now + TIMEOUT / 2, &mut f.out);
    assert_eq!(f.router.next_deadline(), Some(f.now + TIMEOUT));
    f.router.expire(f.now + TIMEOUT, &mut f.out);
    assert_eq!(f.router.next_deadline(), None);
    f.close(1);
    assert_eq!(f.router.next_deadline(), None);
}

#[test]
fn an_invalid_payload_is_reported_and_closes_its_socket_once() {
    let mut f = Fixture::new(false);
    f.open(1, "p", "ka");
    f.open(2, "p", "kb");
    f.events();
    f.receive(1, "\n[null,1,1]");
    f.receive(1, "no envelope");
    f.receive(1, &format!("\n{GET}"));
    assert_eq!(
        f.events(),
        [Report(SyncError::Message), close(1, SyncError::Message)]
    );
    f.receive(2, &format!("\n{GET}"));
    // The socket is closing: nothing more is sent to it.
    assert_eq!(f.sends(), []);
}

#[test]
fn a_verdict_is_taken_for_the_payload_it_judged_and_for_no_other() {
    let mut f = Fixture::new(false);
    f.open(1, "p", "ka");
    f.open(2, "p", "kb");
    f.open(3, "p", "kc");
    f.events();
    let (now, out) = (f.now, &mut f.out);
    // A verdict that calls an invalid message valid shows that the router took it...
    let payload = "\n[null,1,1]";
    let forged = Verdict::forged(&payload[1..], Some(1));
    f.router
        .receive_judged(ConnId(1), payload, Some(forged), now, out);
    assert_eq!(
        f.sends(),
        [sent(2, "ka\n[null,1,1]"), sent(3, "ka\n[null,1,1]")]
    );
    // ...and the same text arriving in another payload is judged again, and refused.
    let again = payload.to_owned();
    let (now, out) = (f.now, &mut f.out);
    f.router
        .receive_judged(ConnId(1), &again, Some(forged), now, out);
    assert_eq!(
        f.events(),
        [Report(SyncError::Message), close(1, SyncError::Message)]
    );
}

#[test]
fn a_payload_too_large_for_its_recipient_overflows_that_socket_only() {
    let mut f = Fixture::new(false);
    f.open(1, "p", "a-long-client-id");
    f.open(2, "p", "kb");
    f.events();
    // Fits as sent, but not once the longer sender id replaces the target id in front of it.
    f.receive(1, &sized("kb", MAX_PAYLOAD_BYTES));
    assert_eq!(
        f.events(),
        [Report(OVERFLOW_SOCKET), close(2, OVERFLOW_SOCKET)]
    );
    f.receive(1, &format!("kb\n{GET}"));
    assert_eq!(f.events(), []);
}

#[test]
fn a_backpressured_socket_is_reported_and_closed_once() {
    let mut f = Fixture::new(false);
    for (conn, key) in [(1, "ka"), (2, "kb"), (3, "kc")] {
        f.open(conn, "p", key);
    }
    f.events();
    f.out.backpressured.insert(ConnId(2));
    f.receive(1, &format!("\n{GET}"));
    f.receive(1, &format!("\n{GET}"));
    let forwarded = format!("ka\n{GET}");
    assert_eq!(
        f.events(),
        [
            Report(OVERFLOW_SOCKET),
            close(2, OVERFLOW_SOCKET),
            Send(3, forwarded.clone()),
            Send(3, forwarded),
        ]
    );
}

#[test]
fn messages_are_held_until_the_path_is_ready_then_relayed_in_order() {
    let mut f = Fixture::new(true);
    f.open(1, "p", "ka");
    f.open(2, "p", "kb");
    assert_eq!(
        f.events(),
        [
            PathIds("p".into(), 1),
            Start(0, "p".into()),
            ClientIds("p".into(), "ka".into(), 1),
            ClientIds("p".into(), "kb".into(), 1),
        ]
    );
    f.receive(1, &format!("\n{}", hashes(1)));
    f.receive(2, &format!("ka\n{GET}"));
    f.receive(1, &format!("S\n{GET}"));
    f.receive(1, &format!("kb\n{}", hashes(2)));
    // A newer ContentHashes from the same sender to the same target takes the older one's place.
    f.receive(1, &format!("\n{}", hashes(3)));
    assert_eq!(f.events(), []);
    assert_eq!(f.router.next_deadline(), Some(f.now + TIMEOUT * 10));
    f.ready(0, true);
    assert_eq!(f.router.next_deadline(), None);
    assert_eq!(
        f.events(),
        [
            ToServer(0, format!("ka\n{}", hashes(3))),
            Send(2, format!("ka\n{}", hashes(3))),
            Send(1, format!("kb\n{GET}")),
            ToServer(0, format!("ka\n{GET}")),
            Send(2, format!("ka\n{}", hashes(2))),
        ]
    );
    f.receive(1, &format!("S\n{GET}"));
    assert_eq!(f.events(), [ToServer(0, format!("ka\n{GET}"))]);
}

#[test]
fn a_held_fragmented_message_reaches_the_server_whole_once_ready() {
    let mut f = Fixture::new(true);
    f.open(1, "p", "ka");
    f.open(2, "p", "kb");
    f.events();
    let first = "abcdefghijklmnop\n0\n2\n[null,1,";
    let second = "abcdefghijklmnop\n1\n2\n\"\"]";
    f.receive(1, &format!("\n{first}"));
    f.receive(1, &format!("\n{second}"));
    f.ready(0, true);
    assert_eq!(
        f.events(),
        [
            Send(2, format!("ka\n{first}")),
            ToServer(0, format!("ka\n{GET}")),
            Send(2, format!("ka\n{second}")),
        ]
    );
}

#[test]
fn a_client_over_the_held_message_limit_loses_its_messages_and_is_closed() {
    let mut f = Fixture::new(true);
    f.open(1, "p", "ka");
    f.open(2, "p", "kb");
    f.receive(2, &format!("\n{GET}"));
    for _ in 1..MAX_QUEUED_MESSAGES {
        f.receive(1, &format!("\n{GET}"));
    }
    f.events();
    f.receive(1, &format!("\n{GET}"));
    assert_eq!(
        f.events(),
        [Report(OVERFLOW_SERVER), close(1, OVERFLOW_SERVER)]
    );
    // It is still on the path until its socket closes, so it may hold again.
    f.receive(1, &format!("kb\n{GET}"));
    f.ready(0, false);
    // kb's broadcast skips the closing socket; what ka held again still goes.
    assert_eq!(f.events(), [Send(2, format!("ka\n{GET}"))]);
}

#[test]
fn held_bytes_are_limited_per_path() {
    let mut f = Fixture::new(true);
    for (conn, key) in [(1, "ka"), (2, "kb"), (3, "kc")] {
        f.open(conn, "p", key);
    }
    f.events();
    let nine_mib = sized("", 9 << 20);
    f.receive(1, &nine_mib);
    f.receive(2, &sized("", 8 << 20));
    assert_eq!(
        f.events(),
        [Report(OVERFLOW_SERVER), close(2, OVERFLOW_SERVER)]
    );
    f.ready(0, false);
    assert_eq!(f.events(), [Send(3, format!("ka{nine_mib}"))]);
}

#[test]
fn held_messages_are_limited_per_socket_across_its_channels() {
    let mut f = Fixture::new(true);
    f.open_multiplexed(1, "base", "km");
    f.hello(1);
    f.subscribe(1, "a");
    f.subscribe(1, "b");
    f.open(2, "base/a", "ka");
    f.open(3, "base/b", "kb");
    for _ in 0..600 {
        f.receive(1, &format!("M\na\n\n{GET}"));
    }
    for _ in 600..MAX_QUEUED_MESSAGES {
        f.receive(1, &format!("M\nb\n\n{GET}"));
    }
    f.events();
    f.receive(1, &format!("M\nb\n\n{GET}"));
    assert_eq!(
        f.events(),
        [Report(OVERFLOW_SERVER), close(1, OVERFLOW_SERVER)]
    );
    // Only the path that overflowed dropped the socket's messages.
    f.ready(1, false);
    assert_eq!(f.sends(), []);
    f.ready(0, false);
    assert_eq!(f.sends(), vec![sent(2, &format!("km\n{GET}")); 600]);
}

#[test]
fn an_expired_hold_closes_every_client_with_held_messages() {
    let mut f = Fixture::new(true);
    for (conn, key) in [(1, "ka"), (2, "kb"), (3, "kc")] {
        f.open(conn, "p", key);
    }
    f.events();
    f.receive(2, &format!("\n{GET}"));
    f.now += TIMEOUT;
    f.receive(1, &format!("\n{GET}"));
    f.receive(2, &format!("\n{GET}"));
    let due = f.now + TIMEOUT * 9;
    assert_eq!(f.router.next_deadline(), Some(due));
    f.router.expire(due - Duration::from_millis(1), &mut f.out);
    assert_eq!(f.events(), []);
    f.router.expire(due, &mut f.out);
    assert_eq!(
        f.events(),
        [
            Report(OVERFLOW_SERVER),
            close(2, OVERFLOW_SERVER),
            Report(OVERFLOW_SERVER),
            close(1, OVERFLOW_SERVER),
        ]
    );
    assert_eq!(f.router.next_deadline(), None);
    f.ready(0, false);
    assert_eq!(f.events(), []);
}

#[test]
fn a_path_without_a_factory_goes_when_its_last_client_leaves() {
    let mut f = Fixture::new(false);
    f.open(1, "p", "ka");
    f.open(2, "q", "kb");
    f.events();
    f.close(1);
    assert_eq!(
        f.events(),
        [
            ClientIds("p".into(), "ka".into(), -1),
            PathIds("p".into(), -1)
        ]
    );
    assert_eq!(f.router.path_ids(), ["q"]);
    f.close(1);
    f.close(7);
    assert_eq!(f.events(), []);
}

#[test]
fn a_stopping_path_is_replaced_by_a_new_generation_and_late_results_are_ignored() {
    let mut f = Fixture::new(true);
    f.open(1, "p", "ka");
    f.ready(0, true);
    f.events();
    f.close(1);
    assert_eq!(
        f.events(),
        [ClientIds("p".into(), "ka".into(), -1), Stop(0)]
    );
    assert_eq!(f.router.path_ids(), ["p"]);
    assert_eq!(
        f.router.stats(),
        Stats {
            paths: 1,
            clients: 0
        }
    );

    f.open(2, "p", "kb");
    assert_eq!(
        f.events(),
        [Start(1, "p".into()), ClientIds("p".into(), "kb".into(), 1)]
    );
    f.router.path_stopped(PathKey(0), &mut f.out);
    f.ready(0, true);
    f.path_failed(0);
    f.router.server_send(PathKey(0), None, GET, &mut f.out);
    f.router.path_stopped(PathKey(1), &mut f.out);
    assert_eq!(f.events(), []);
    assert_eq!(f.router.path_ids(), ["p"]);

    f.receive(2, &format!("\n{GET}"));
    f.ready(1, true);
    assert_eq!(f.events(), [ToServer(1, format!("kb\n{GET}"))]);
    f.close(2);
    assert_eq!(
        f.events(),
        [ClientIds("p".into(), "kb".into(), -1), Stop(1)]
    );
    f.router.path_stopped(PathKey(1), &mut f.out);
    f.router.path_stopped(PathKey(1), &mut f.out);
    assert_eq!(f.events(), [PathIds("p".into(), -1)]);
    assert!(f.router.path_ids().is_empty());
    assert_eq!(f.router.stats(), Stats::default());
}

#[test]
fn path_ids_keep_the_order_they_appeared_in() {
    let mut f = Fixture::new(true);
    for (conn, path) in [(1, "a"), (2, "b"), (3, "c")] {
        f.open(conn, path, "k");
    }
    f.close(2);
    f.open(4, "b", "k");
    assert_eq!(f.router.path_ids(), ["a", "b", "c"]);
    f.router.path_stopped(PathKey(1), &mut f.out);
    assert_eq!(f.router.path_ids(), ["a", "b", "c"]);
    f.close(4);
    f.router.path_stopped(PathKey(3), &mut f.out);
    assert_eq!(f.router.path_ids(), ["a", "c"]);
    f.open(5, "b", "k");
    assert_eq!(f.router.path_ids(), ["a", "c", "b"]);
}

#[test]
fn a_failed_start_removes_its_clients_and_stops_the_path() {
    let mut f = Fixture::new(true);
    f.open(1, "p", "ka");
    f.open(2, "p", "kb");
    f.receive(1, &format!("\n{GET}"));
    f.events();
    f.path_failed(0);
    assert_eq!(
        f.events(),
        [
            ClientIds("p".into(), "ka".into(), -1),
            ClientIds("p".into(), "kb".into(), -1),
            Stop(0),
        ]
    );
    assert_eq!(
        f.router.stats(),
        Stats {
            paths: 1,
            clients: 0
        }
    );
    // The sockets stay open, relaying nothing, but still validated.
    f.receive(1, &format!("\n{GET}"));
    assert_eq!(f.events(), []);
    f.receive(1, "\n[null,1,1]");
    assert_eq!(
        f.events(),
        [Report(SyncError::Message), close(1, SyncError::Message)]
    );
    f.router.path_stopped(PathKey(0), &mut f.out);
    f.open(3, "p", "kc");
    assert_eq!(
        f.events(),
        [
            PathIds("p".into(), -1),
            PathIds("p".into(), 1),
            Start(1, "p".into()),
            ClientIds("p".into(), "kc".into(), 1),
        ]
    );
    f.close(2);
    assert_eq!(f.events(), []);
}

#[test]
fn the_server_client_sends_fragmented_and_direct_messages_without_holding() {
    let mut f = Fixture::with_fragments(true, Some(10.0));
    f.open(1, "p", "ka");
    f.open(2, "p", "kb");
    f.ready(0, true);
    f.open(3, "q", "kc");
    f.events();
    f.router.server_send(PathKey(0), None, GET, &mut f.out);
    let first = "S\nmessageId0000000\n0\n2\n[null,1,\"\"";
    let second = "S\nmessageId0000000\n1\n2\n]";
    assert_eq!(
        f.sends(),
        [
            sent(1, first),
            sent(2, first),
            sent(1, second),
            sent(2, second)
        ]
    );
    f.router
        .server_send(PathKey(0), Some("kb"), "[1]", &mut f.out);
    f.router
        .server_send(PathKey(0), Some("S"), "[2]", &mut f.out);
    f.router.server_send(PathKey(1), None, "[3]", &mut f.out);
    f.router.server_send(PathKey(9), None, "[4]", &mut f.out);
    assert_eq!(
        f.events(),
        [
            Send(2, "S\n[1]".into()),
            ToServer(0, "S\n[2]".into()),
            Send(3, "S\n[3]".into()),
        ]
    );
}

#[test]
fn a_multiplexed_socket_joins_channel_paths_after_its_hello() {
    let mut f = Fixture::new(false);
    f.open_multiplexed(1, "base", "km");
    f.subscribe(1, "a");
    assert_eq!(f.events(), []);
    f.hello(1);
    assert_eq!(f.events(), [Send(1, "S\n[\"h\",-1,[0,1]]".into())]);
    let reply = Send(1, "S\n[\"s\",-1,[1,\"a\"]]".into());
    f.subscribe(1, "a");
    assert_eq!(
        f.events(),
        [
            PathIds("base/a".into(), 1),
            ClientIds("base/a".into(), "km".into(), 1),
            reply.clone(),
        ]
    );
    f.subscribe(1, "a");
    assert_eq!(f.events(), [reply]);
    f.open(2, "base/a", "kl");
    f.open_multiplexed(3, "", "kn");
    f.hello(3);
    f.subscribe(3, "base/a");
    assert_eq!(f.router.client_ids("base/a"), ["km", "kl", "kn"]);
    f.events();

    f.receive(2, &format!("\n{GET}"));
    assert_eq!(
        f.sends(),
        [
            sent(1, &format!("M\na\nkl\n{GET}")),
            sent(3, &format!("M\nbase/a\nkl\n{GET}")),
        ]
    );
    f.receive(1, &format!("M\na\n\n{GET}"));
    assert_eq!(
        f.sends(),
        [
            sent(2, &format!("km\n{GET}")),
            sent(3, &format!("M\nbase/a\nkm\n{GET}")),
        ]
    );
    f.receive(3, &format!("M\nbase/a\nkm\n{GET}"));
    assert_eq!(f.sends(), [sent(1, &format!("M\na\nkn\n{GET}"))]);

    f.unsubscribe(1, "a");
    assert_eq!(f.events(), [ClientIds("base/a".into(), "km".into(), -1)]);
    f.receive(1, &format!("M\na\n\n{GET}"));
    assert_eq!(
        f.events(),
        [Report(SyncError::Message), close(1, SyncError::Message)]
    );
}

#[test]
fn channel_recipients_share_one_wrapped_payload_and_overflow_on_its_size() {
    let mut f = Fixture::new(false);
    for conn in [1, 3] {
        f.open_multiplexed(conn, "", &format!("k{conn}"));
        f.hello(conn);
        f.subscribe(conn, "a");
    }
    f.open(2, "a", "kl");
    f.events();
    f.receive(2, &format!("\n{GET}"));
    let [first, second] = f.out.payloads.as_slice() else {
        panic!("two recipients expected, got {:?}", f.out.payloads);
    };
    assert_eq!(first.bytes().as_ptr(), second.bytes().as_ptr());

    f.open(4, "a", "kz");
    f.events();
    // Fits once forwarded, not once wrapped for the channel.
    let payload = sized("", MAX_PAYLOAD_BYTES - 2);
    f.receive(2, &payload);
    assert_eq!(
        f.events(),
        [
            Report(OVERFLOW_SOCKET),
            close(1, OVERFLOW_SOCKET),
            Report(OVERFLOW_SOCKET),
            close(3, OVERFLOW_SOCKET),
            Send(4, format!("kl{payload}")),
        ]
    );
}

#[test]
fn channel_payloads_before_a_hello_or_for_unknown_channels_close_the_socket() {
    let mut f = Fixture::new(false);
    f.open_multiplexed(1, "", "km");
    f.receive(1, &format!("M\na\n\n{GET}"));
    f.open_multiplexed(2, "", "kn");
    f.hello(2);
    f.events();
    f.receive(2, &format!("M\nb\n\n{GET}"));
    f.receive(2, &format!("M\nb\n\n{GET}"));
    assert_eq!(
        f.events(),
        [Report(SyncError::Message), close(2, SyncError::Message),]
    );
    f.open_multiplexed(3, "", "ko");
    f.receive(3, &format!("\n{GET}"));
    f.receive(3, &format!("M\n{}\n\n{GET}", "x".repeat(1025)));
    assert_eq!(
        f.events(),
        [Report(SyncError::Message), close(3, SyncError::Message)]
    );
}

#[test]
fn an_invalid_channel_payload_closes_the_whole_socket_which_leaves_every_channel_on_close() {
    let mut f = Fixture::new(false);
    f.open_multiplexed(1, "", "km");
    f.hello(1);
    f.subscribe(1, "a");
    f.subscribe(1, "b");
    f.receive(1, "M\nb\n\nabcdefghijklmnop\n0\n2\n[null,1,");
    assert!(f.router.next_deadline().is_some());
    f.events();
    f.receive(1, "M\na\n\n[null,1,1]");
    assert_eq!(
        f.events(),
        [Report(SyncError::Message), close(1, SyncError::Message)]
    );
    assert_eq!(f.router.next_deadline(), None);
    f.receive(1, &format!("M\nb\n\n{GET}"));
    f.hello(1);
    assert_eq!(f.events(), []);
    assert_eq!(
        f.router.stats(),
        Stats {
            paths: 2,
            clients: 2
        }
    );
    f.close(1);
    assert_eq!(
        f.events(),
        [
            ClientIds("a".into(), "km".into(), -1),
            PathIds("a".into(), -1),
            ClientIds("b".into(), "km".into(), -1),
            PathIds("b".into(), -1),
        ]
    );
}

#[test]
fn a_socket_may_subscribe_to_a_hundred_channels() {
    let mut f = Fixture::new(false);
    f.open_multiplexed(1, "", "km");
    f.hello(1);
    for channel in 0..MAX_CHANNELS {
        f.subscribe(1, &format!("c{channel}"));
    }
    f.events();
    f.subscribe(1, "c0");
    assert_eq!(f.events(), [Send(1, "S\n[\"s\",-1,[1,\"c0\"]]".into())]);
    f.subscribe(1, "one-too-many");
    assert_eq!(
        f.events(),
        [Report(OVERFLOW_CHANNELS), close(1, OVERFLOW_CHANNELS)]
    );
}

#[test]
fn channels_still_tearing_down_count_against_the_socket() {
    let mut f = Fixture::new(true);
    f.open_multiplexed(1, "", "km");
    f.hello(1);
    for channel in 0..MAX_CHANNELS {
        f.subscribe(1, &format!("c{channel}"));
    }
    for channel in 0..MAX_CHANNELS {
        f.unsubscribe(1, &format!("c{channel}"));
    }
    for channel in 0..MAX_CHANNELS {
        f.subscribe(1, &format!("d{channel}"));
    }
    f.unsubscribe(1, "d0");
    f.router.path_stopped(PathKey(0), &mut f.out);
    f.subscribe(1, "e0");
    f.unsubscribe(1, "e0");
    f.events();
    // 99 channels, but 200 resources: c1..c99 and d0 and e0 are still tearing down.
    f.subscribe(1, "e1");
    assert_eq!(
        f.events(),
        [Report(OVERFLOW_CHANNELS), close(1, OVERFLOW_CHANNELS)]
    );
}

#[test]
fn channel_ids_over_the_size_limit_overflow_the_socket() {
    let long = "x".repeat(1025);
    let mut f = Fixture::new(false);
    f.open_multiplexed(1, "", "km");
    f.hello(1);
    f.events();
    f.subscribe(1, &long);
    assert_eq!(
        f.events(),
        [Report(OVERFLOW_CHANNELS), close(1, OVERFLOW_CHANNELS)]
    );
    f.open_multiplexed(2, "", "kn");
    f.hello(2);
    f.events();
    f.unsubscribe(2, &long);
    assert_eq!(
        f.events(),
        [Report(OVERFLOW_CHANNELS), close(2, OVERFLOW_CHANNELS)]
    );
    f.open_multiplexed(3, "", "ko");
    f.receive(3, &format!("M\n{long}\n\n{GET}"));
    assert_eq!(
        f.events(),
        [Report(OVERFLOW_CHANNELS), close(3, OVERFLOW_CHANNELS)]
    );
}

#[test]
fn a_failed_channel_is_unsubscribed_once_its_client_has_left() {
    let mut f = Fixture::new(true);
    f.open_multiplexed(1, "", "km");
    f.hello(1);
    f.subscribe(1, "a");
    f.factory_called(0);
    f.open(2, "a", "kl");
    f.events();
    f.path_failed(0);
    assert_eq!(
        f.events(),
        [
            ClientIds("a".into(), "km".into(), -1),
            ClientIds("a".into(), "kl".into(), -1),
            Stop(0),
        ]
    );
    // km was not the last to leave, so its channel went at once: subscribing joins afresh.
    f.subscribe(1, "a");
    assert_eq!(
        f.events(),
        [Start(1, "a".into()), ClientIds("a".into(), "km".into(), 1)]
    );
    f.factory_called(1);
    assert_eq!(f.events(), [Send(1, "S\n[\"s\",-1,[1,\"a\"]]".into())]);
}

#[test]
fn the_last_failed_channel_stays_subscribed_until_its_path_is_torn_down() {
    let mut f = Fixture::new(true);
    f.open_multiplexed(1, "", "km");
    f.hello(1);
    f.subscribe(1, "a");
    f.factory_called(0);
    f.events();
    f.path_failed(0);
    assert_eq!(
        f.events(),
        [ClientIds("a".into(), "km".into(), -1), Stop(0)]
    );
    f.subscribe(1, "a");
    f.receive(1, &format!("M\na\n\n{GET}"));
    assert_eq!(f.events(), [Send(1, "S\n[\"s\",-1,[1,\"a\"]]".into())]);
    f.router.path_stopped(PathKey(0), &mut f.out);
    assert_eq!(f.events(), [PathIds("a".into(), -1)]);
    f.receive(1, &format!("M\na\n\n{GET}"));
    assert_eq!(
        f.events(),
        [Report(SyncError::Message), close(1, SyncError::Message)]
    );
}

#[test]
fn a_hold_too_long_for_the_clock_never_expires() {
    let mut f = Fixture::new(true);
    f.router.config.request_timeout = Duration::MAX;
    f.open(1, "p", "ka");
    f.receive(1, &format!("\n{GET}"));
    assert_eq!(f.router.next_deadline(), None);
}

#[test]
fn stopping_every_path_drops_clients_without_client_events() {
    let mut f = Fixture::new(true);
    f.open(1, "a", "k1");
    f.open(2, "a", "k2");
    f.open(3, "b", "k3");
    f.ready(0, true);
    f.ready(1, true);
    f.events();
    f.router.stop_all(&mut f.out);
    assert_eq!(f.events(), vec![Stop(0), Stop(1)]);
    // Still counted while the host tears them down, as in TinyBase.
    assert_eq!(
        f.router.stats(),
        Stats {
            paths: 2,
            clients: 3
        }
    );
    f.receive(1, &format!("\n{}", hashes(1)));
    f.close(1);
    f.close(3);
    assert_eq!(f.events(), vec![]);
    f.router.path_stopped(PathKey(0), &mut f.out);
    f.router.path_stopped(PathKey(1), &mut f.out);
    assert_eq!(
        f.events(),
        vec![PathIds("a".into(), -1), PathIds("b".into(), -1)]
    );
    assert_eq!(f.router.stats(), Stats::default());
    f.close(2);
    assert_eq!(f.events(), vec![]);
}

#[test]
fn stopping_every_path_without_a_factory_removes_them_at_once() {
    let mut f = Fixture::new(false);
    f.open(1, "a", "k1");
    f.open(2, "b", "k2");
    f.events();
    f.router.stop_all(&mut f.out);
    assert_eq!(
        f.events(),
        vec![PathIds("a".into(), -1), PathIds("b".into(), -1)]
    );
    assert_eq!(f.router.stats(), Stats::default());
    f.close(1);
    assert_eq!(f.events(), vec![]);
}

fn published(path_id: &str, to: &str, payload: &str) -> (String, String, String) {
    (path_id.into(), to.into(), payload.into())
}

#[test]
fn what_other_nodes_may_need_is_published_once_and_nothing_else() {
    let mut f = Fixture::new(false);
    f.open(1, "p", "ka");
    f.open(2, "p", "kb");
    f.receive(1, &format!("\n{GET}"));
    f.receive(1, &format!("kb\n{GET}"));
    f.receive(1, &format!("elsewhere\n{GET}"));
    f.receive(1, &format!("S\n{GET}"));
    assert_eq!(
        f.out.published,
        [
            published("p", "", &format!("ka\n{GET}")),
            published("p", "elsewhere", &format!("ka\n{GET}")),
        ]
    );
    assert_eq!(
        f.sends(),
        [
            sent(2, &format!("ka\n{GET}")),
            sent(2, &format!("ka\n{GET}"))
        ]
    );
}

#[test]
fn messages_held_while_a_path_starts_are_published_as_they_are_relayed() {
    let mut f = Fixture::new(true);
    f.open(1, "p", "ka");
    f.receive(1, &format!("\n{GET}"));
    assert!(f.out.published.is_empty());
    f.ready(0, true);
    assert_eq!(f.out.published, [published("p", "", &format!("ka\n{GET}"))]);
}

#[test]
fn a_delivery_from_elsewhere_reaches_this_nodes_clients_as_a_local_message_would() {
    let mut f = Fixture::new(true);
    f.open(1, "p", "ka");
    f.open(2, "p", "kb");
    f.open_multiplexed(3, "base", "kc");
    f.hello(3);
    f.subscribe(3, "p");
    f.ready(0, true);
    f.ready(1, true);
    f.events();
    let payload = Payload::from(format!("kz\n{GET}"));
    f.router.deliver("p", "kz", "", &payload, &mut f.out);
    f.router.deliver("p", "kz", "kb", &payload, &mut f.out);
    f.router.deliver("p", "kz", "nobody", &payload, &mut f.out);
    f.router.deliver("unknown", "kz", "", &payload, &mut f.out);
    let from_remote = format!("kz\n{GET}");
    assert_eq!(
        f.events(),
        [
            Send(1, from_remote.clone()),
            Send(2, from_remote.clone()),
            Send(2, from_remote),
        ]
    );
    f.router.deliver("base/p", "kz", "", &payload, &mut f.out);
    assert_eq!(
        f.sends(),
        [sent(3, &format!("{MULTIPLE_CLIENT_ID}\np\nkz\n{GET}"))]
    );
    f.router.deliver("p", "ka", "", &payload, &mut f.out);
    assert_eq!(f.sends(), [sent(2, &format!("kz\n{GET}"))]);
    assert!(f.out.published.is_empty());
}

#[test]
fn the_server_clients_messages_are_published_and_others_reach_it_from_elsewhere() {
    let mut f = Fixture::new(true);
    f.open(1, "p", "ka");
    f.ready(0, true);
    f.events();
    let out = &mut f.out;
    f.router.server_send(PathKey(0), None, GET, out);
    f.router.server_send(PathKey(0), Some("kz"), GET, out);
    f.router.server_send(PathKey(0), Some("ka"), GET, out);
    assert_eq!(
        f.out.published,
        [
            published("p", "", &format!("S\n{GET}")),
            published("p", "kz", &format!("S\n{GET}")),
        ]
    );
    f.events();
    let out = &mut f.out;
    f.router.deliver_to_server("p", &format!("kz\n{GET}"), out);
    f.router.deliver_to_server("q", &format!("kz\n{GET}"), out);
    assert_eq!(f.events(), [ToServer(0, format!("kz\n{GET}"))]);
}

const WARM: Duration = Duration::from_secs(60);

#[test]
fn a_running_path_is_kept_warm_and_a_returning_client_joins_it_without_a_start() {
    let mut f = Fixture::kept_warm(WARM);
    f.open(1, "p", "ka");
    f.ready(0, true);
    f.events();
    f.close(1);
    // Its clients left, as TinyBase tells; the path, whose server client runs on, stays listed.
    assert_eq!(f.events(), [ClientIds("p".into(), "ka".into(), -1)]);
    assert_eq!(f.router.path_ids(), ["p"]);
    let warm_until = f.router.next_deadline().unwrap();
    assert_eq!(warm_until, f.now + WARM);

    f.open(2, "p", "kb");
    assert_eq!(f.events(), [ClientIds("p".into(), "kb".into(), 1)]);
    assert_eq!(f.router.next_deadline(), None);
    // The same generation, already ready: its server client hears the newcomer at once.
    f.receive(2, &format!("\n{GET}"));
    assert_eq!(f.events(), [ToServer(0, format!("kb\n{GET}"))]);
    f.router.expire(warm_until, &mut f.out);
    assert_eq!(f.events(), []);
}

#[test]
fn a_warm_path_stops_when_its_time_runs_out_and_the_next_client_starts_it_anew() {
    let mut f = Fixture::kept_warm(WARM);
    f.open(1, "p", "ka");
    f.ready(0, true);
    f.close(1);
    f.events();
    let warm_until = f.router.next_deadline().unwrap();
    f.router
        .expire(warm_until - Duration::from_millis(1), &mut f.out);
    assert_eq!(f.events(), []);
    f.router.expire(warm_until, &mut f.out);
    assert_eq!(f.events(), [Stop(0)]);
    f.router.path_stopped(PathKey(0), &mut f.out);
    assert_eq!(f.events(), [PathIds("p".into(), -1)]);

    f.open(2, "p", "kb");
    assert_eq!(
        f.events(),
        [
            PathIds("p".into(), 1),
            Start(1, "p".into()),
            ClientIds("p".into(), "kb".into(), 1)
        ]
    );
}

/// Far enough from the real clock that a window timed by it rather than by the host shows.
const AHEAD: Duration = Duration::from_secs(24 * 60 * 60);
const TICK: Duration = Duration::from_millis(1);

#[test]
fn a_warm_window_is_timed_by_the_hosts_clock() {
    let mut f = Fixture::kept_warm(WARM);
    f.open(1, "p", "ka");
    f.open_multiplexed(2, "", "km");
    f.hello(2);
    f.subscribe(2, "q");
    f.factory_called(1);
    f.ready(0, true);
    f.ready(1, true);
    f.events();
    f.now += AHEAD;
    let p_left = f.now;
    f.close(1);
    f.now += Duration::from_secs(10);
    let q_left = f.now;
    f.unsubscribe(2, "q");
    f.events();

    assert_eq!(f.router.next_deadline(), Some(p_left + WARM));
    f.router.expire(p_left + WARM - TICK, &mut f.out);
    assert_eq!(f.events(), []);
    f.router.expire(p_left + WARM, &mut f.out);
    assert_eq!(f.events(), [Stop(0)]);
    assert_eq!(f.router.next_deadline(), Some(q_left + WARM));
    f.router.expire(q_left + WARM - TICK, &mut f.out);
    assert_eq!(f.events(), []);
    f.router.expire(q_left + WARM, &mut f.out);
    assert_eq!(f.events(), [Stop(1)]);
}

#[test]
fn stopping_everything_stops_warm_paths_too() {
    let mut f = Fixture::kept_warm(WARM);
    f.open(1, "p", "ka");
    f.open(2, "q", "kb");
    f.ready(0, true);
    f.ready(1, true);
    f.close(1);
    f.events();
    f.router.stop_all(&mut f.out);
    assert_eq!(f.events(), [Stop(0), Stop(1)]);
    assert_eq!(f.router.next_deadline(), None);
}

#[test]
fn only_a_path_whose_server_client_runs_is_kept_warm() {
    let mut f = Fixture::kept_warm(WARM);
    // Still starting: stopped as TinyBase stops it.
    f.open(1, "starting", "ka");
    f.events();
    f.close(1);
    assert_eq!(
        f.events(),
        [ClientIds("starting".into(), "ka".into(), -1), Stop(0)]
    );
    // No server client (the factory gave no persister): nothing to keep.
    f.open(2, "bare", "kb");
    f.ready(1, false);
    f.events();
    f.close(2);
    assert_eq!(
        f.events(),
        [ClientIds("bare".into(), "kb".into(), -1), Stop(1)]
    );
}

#[test]
fn a_multiplexed_channel_left_on_a_warm_path_is_released_at_once() {
    let mut f = Fixture::kept_warm(WARM);
    f.open_multiplexed(1, "", "km");
    f.hello(1);
    f.subscribe(1, "a");
    f.ready(0, true);
    f.events();
    f.unsubscribe(1, "a");
    assert_eq!(f.events(), [ClientIds("a".into(), "km".into(), -1)]);
    f.subscribe(1, "a");
    assert_eq!(
        f.events(),
        [
            ClientIds("a".into(), "km".into(), 1),
            Send(1, format!("S\n{}", r#"["s",-1,[1,"a"]]"#))
        ]
    );
}

#[test]
fn a_subscription_is_acknowledged_once_the_factory_was_called_for_its_path() {
    let mut f = Fixture::new(true);
    let reply = |conn| Send(conn, "S\n[\"s\",-1,[1,\"a\"]]".into());
    for conn in [1, 2] {
        f.open_multiplexed(conn, "", &format!("k{conn}"));
        f.hello(conn);
    }
    f.events();
    f.subscribe(1, "a");
    // Repeated before the factory was called: its reply keeps its place behind the first.
    f.subscribe(1, "a");
    f.subscribe(2, "a");
    assert_eq!(
        f.events(),
        [
            PathIds("a".into(), 1),
            Start(0, "a".into()),
            ClientIds("a".into(), "k1".into(), 1),
            ClientIds("a".into(), "k2".into(), 1),
        ]
    );
    f.factory_called(0);
    assert_eq!(f.events(), [reply(1), reply(1), reply(2)]);
    // Called already: acknowledged at once, though the path is still starting.
    f.subscribe(2, "a");
    assert_eq!(f.events(), [reply(2)]);

    // Left while starting, joined again: a new generation, whose factory call is awaited.
    f.unsubscribe(1, "a");
    f.unsubscribe(2, "a");
    f.events();
    f.subscribe(1, "a");
    assert_eq!(
        f.events(),
        [Start(1, "a".into()), ClientIds("a".into(), "k1".into(), 1)]
    );
    f.factory_called(0);
    assert_eq!(f.events(), []);
    f.factory_called(1);
    assert_eq!(f.events(), [reply(1)]);
}

#[test]
fn a_closing_multiplexed_socket_stops_its_channels_paths_together() {
    let mut f = Fixture::new(true);
    f.open_multiplexed(1, "", "km");
    f.hello(1);
    for channel in ["a", "b", "c", "d"] {
        f.subscribe(1, channel);
    }
    // Another client stays on c, so its path carries on.
    f.open(2, "c", "kl");
    for path in 0..4 {
        f.factory_called(path);
        f.ready(path, true);
    }
    f.events();
    // d is unsubscribed and still stopping when the socket closes.
    f.unsubscribe(1, "d");
    assert_eq!(
        f.events(),
        [ClientIds("d".into(), "km".into(), -1), Stop(3)]
    );
    f.close(1);
    assert_eq!(
        f.events(),
        [
            ClientIds("a".into(), "km".into(), -1),
            ClientIds("b".into(), "km".into(), -1),
            ClientIds("c".into(), "km".into(), -1),
            StopTogether(vec![0, 1, 3]),
        ]
    );
    // An unsubscribed channel whose path has stopped is no longer waited for.
    f.open_multiplexed(3, "", "kn");
    f.hello(3);
    f.subscribe(3, "e");
    f.factory_called(4);
    f.unsubscribe(3, "e");
    f.router.path_stopped(PathKey(4), &mut f.out);
    f.events();
    f.close(3);
    assert_eq!(f.events(), []);
}

/// Path "p" running for a host that keeps paths for other nodes, its only client here gone.
fn kept_for_others(keep_warm: Duration) -> Fixture {
    let mut f = Fixture::kept_warm(keep_warm);
    f.out.keeps = true;
    f.open(1, "p", "ka");
    f.ready(0, true);
    f.events();
    f.close(1);
    assert_eq!(f.events(), [ClientIds("p".into(), "ka".into(), -1)]);
    f
}

#[test]
fn a_path_kept_for_other_nodes_runs_until_vacated_and_a_returning_client_joins_it() {
    let mut f = kept_for_others(Duration::ZERO);
    assert_eq!(f.router.path_ids(), ["p"]);
    assert_eq!(f.router.next_deadline(), None);
    // Other nodes' clients still reach its server client.
    f.router
        .deliver_to_server("p", &format!("far\n{GET}"), &mut f.out);
    assert_eq!(f.events(), [ToServer(0, format!("far\n{GET}"))]);

    f.open(2, "p", "kb");
    assert_eq!(f.events(), [ClientIds("p".into(), "kb".into(), 1)]);
    // Vacated while a client is here again: nothing stops.
    f.vacated("p");
    assert_eq!(f.events(), []);

    f.close(2);
    f.events();
    f.vacated("p");
    assert_eq!(f.events(), [Stop(0)]);
    f.vacated("p");
    assert_eq!(f.events(), []);
}

#[test]
fn a_vacated_path_is_then_kept_warm() {
    let mut f = kept_for_others(WARM);
    assert_eq!(f.router.next_deadline(), None);
    f.now += AHEAD;
    f.vacated("p");
    assert_eq!(f.events(), []);
    assert_eq!(f.router.next_deadline(), Some(f.now + WARM));
    f.router.expire(f.now + WARM - TICK, &mut f.out);
    assert_eq!(f.events(), []);
    f.router.expire(f.now + WARM, &mut f.out);
    assert_eq!(f.events(), [Stop(0)]);
}
