//! Access control through the router's API: the host's decisions, read-only clients, and the
//! client and rate limits; then a property test of the read-only filter.

use super::*;

const DIFF: &str = r#"[null,3,[[{},""],[{},""],1]]"#;
const RESPONSE_TO_R: &str = r#"["r",0,[1,2]]"#;
const GET_TABLES: &str = r#"["r",4,{}]"#;

fn authorizing() -> Limits {
    Limits {
        authorizing: true,
        ..Limits::default()
    }
}

impl Fixture {
    fn decide(&mut self, conn: u64, ticket: u64, channel: Option<&str>, decision: Decision) {
        let (now, out) = (self.now, &mut self.out);
        self.router
            .authorized(ConnId(conn), ticket, channel, decision, now, out);
    }

    /// A legacy client granted `access` at once.
    fn open_as(&mut self, conn: u64, path_id: &str, client_id: &str, access: Access) {
        self.open(conn, path_id, client_id);
        let ticket = self.last_ticket();
        self.decide(conn, ticket, None, Decision::Grant(access));
    }

    fn last_ticket(&self) -> u64 {
        self.out
            .events
            .iter()
            .rev()
            .find_map(|event| match event {
                Authorize(ticket, ..) => Some(*ticket),
                _ => None,
            })
            .expect("an authorize request")
    }
}

fn denied(conn: u64) -> Event {
    Close(conn, 1008, SyncError::Refused(Refusal::Denied).to_string())
}

#[test]
fn a_legacy_client_joins_only_once_granted_and_its_early_messages_follow() {
    let mut f = Fixture::with_limits(false, authorizing());
    f.open_as(1, "p", "ka", Access::Write);
    f.events();
    f.open(2, "p", "kb");
    assert_eq!(f.events(), [Authorize(2, 2, "p".into(), None)]);
    assert_eq!(f.router.client_ids("p"), ["ka"]);
    f.receive(1, &format!("\n{DIFF}"));
    f.receive(2, &format!("\n{GET}"));
    assert_eq!(
        f.events(),
        [],
        "nothing reaches or leaves a client not yet admitted"
    );
    f.decide(2, 2, None, Decision::Grant(Access::Write));
    assert_eq!(
        f.events(),
        [
            ClientIds("p".into(), "kb".into(), 1),
            Send(1, format!("kb\n{GET}")),
        ]
    );
}

#[test]
fn a_denied_legacy_client_is_closed_and_nothing_it_sent_is_relayed() {
    let mut f = Fixture::with_limits(false, authorizing());
    f.open_as(1, "p", "ka", Access::Write);
    f.open(2, "p", "kb");
    f.receive(2, &format!("\n{DIFF}"));
    f.events();
    f.decide(2, 1, None, Decision::Grant(Access::Write));
    assert_eq!(f.events(), [], "a stale ticket decides nothing");
    f.decide(2, 2, None, Decision::Deny);
    f.receive(2, &format!("\n{DIFF}"));
    assert_eq!(f.events(), [denied(2)]);
    assert_eq!(f.out.dropped[&Dropped::Denied], 2);
    f.decide(2, 2, None, Decision::Grant(Access::Write));
    f.close(2);
    assert_eq!(f.events(), []);
    assert_eq!(f.router.client_ids("p"), ["ka"]);
}

#[test]
fn a_read_only_client_sends_only_requests_and_is_handed_no_requests() {
    let mut f = Fixture::with_limits(true, authorizing());
    f.open_as(1, "p", "kw", Access::Write);
    f.open_as(2, "p", "kr", Access::Read);
    f.ready(0, true);
    f.events();
    for remainder in [DIFF, &hashes(1), RESPONSE_TO_R] {
        f.receive(2, &format!("\n{remainder}"));
        f.receive(2, &format!("kw\n{remainder}"));
        f.receive(2, &format!("S\n{remainder}"));
    }
    assert_eq!(f.events(), []);
    assert_eq!(f.out.dropped[&Dropped::ReadOnly], 9);
    f.receive(2, &format!("\n{GET}"));
    f.receive(2, &format!("kw\n{GET_TABLES}"));
    assert_eq!(
        f.events(),
        [
            ToServer(0, format!("kr\n{GET}")),
            Send(1, format!("kr\n{GET}")),
            Send(1, format!("kr\n{GET_TABLES}")),
        ]
    );
    // The writer's and the server client's requests skip it; content and answers reach it.
    f.receive(1, &format!("\n{GET}"));
    f.receive(1, &format!("kr\n{GET_TABLES}"));
    f.receive(1, &format!("\n{DIFF}"));
    f.receive(1, &format!("kr\n{RESPONSE_TO_R}"));
    f.router.server_send(PathKey(0), None, GET, &mut f.out);
    f.router
        .server_send(PathKey(0), Some("kr"), RESPONSE_TO_R, &mut f.out);
    assert_eq!(
        f.events(),
        [
            ToServer(0, format!("kw\n{GET}")),
            ToServer(0, format!("kw\n{DIFF}")),
            Send(2, format!("kw\n{DIFF}")),
            Send(2, format!("kw\n{RESPONSE_TO_R}")),
            Send(1, format!("S\n{GET}")),
            Send(2, format!("S\n{RESPONSE_TO_R}")),
        ]
    );
}

#[test]
fn a_read_only_client_is_handed_no_request_from_another_node() {
    let mut f = Fixture::with_limits(false, authorizing());
    f.open_as(1, "p", "kr", Access::Read);
    f.events();
    for remainder in [GET, DIFF, GET_TABLES] {
        let payload = Payload::from(format!("kx\n{remainder}"));
        f.router.deliver("p", "kx", "", &payload, &mut f.out);
    }
    assert_eq!(f.sends(), [sent(1, &format!("kx\n{DIFF}"))]);
}

#[test]
fn a_read_only_clients_messages_held_at_startup_keep_its_filter() {
    let mut f = Fixture::with_limits(true, authorizing());
    f.open_as(1, "p", "kr", Access::Read);
    f.open_as(2, "p", "kw", Access::Write);
    f.events();
    f.receive(1, &format!("\n{DIFF}"));
    f.receive(2, &format!("\n{GET}"));
    f.receive(2, &format!("\n{DIFF}"));
    f.ready(0, true);
    assert_eq!(
        f.events(),
        [
            ToServer(0, format!("kw\n{GET}")),
            ToServer(0, format!("kw\n{DIFF}")),
            Send(1, format!("kw\n{DIFF}")),
        ]
    );
}

#[test]
fn a_denied_channel_is_never_acknowledged_while_its_sibling_syncs() {
    let mut f = Fixture::with_limits(false, authorizing());
    f.open_multiplexed(1, "base", "km");
    f.open_as(2, "base/open", "kw", Access::Write);
    f.hello(1);
    f.subscribe(1, "open");
    f.subscribe(1, "secret");
    let events = f.events();
    assert!(events.contains(&Authorize(2, 1, "base/open".into(), Some("open".into()))));
    assert!(events.contains(&Authorize(
        3,
        1,
        "base/secret".into(),
        Some("secret".into())
    )));
    let acknowledged = |event: &Event| matches!(event, Send(1, reply) if reply.contains(",-1,[1,"));
    assert!(!events.iter().any(acknowledged));
    f.receive(1, &format!("M\nsecret\n\n{DIFF}"));
    f.decide(1, 3, Some("secret"), Decision::Deny);
    f.decide(1, 2, Some("open"), Decision::Grant(Access::Write));
    f.receive(1, &format!("M\nsecret\n\n{DIFF}"));
    f.receive(1, &format!("M\nopen\n\n{DIFF}"));
    assert_eq!(
        f.events(),
        [
            ClientIds("base/open".into(), "km".into(), 1),
            Send(1, "S\n[\"s\",-1,[1,\"open\"]]".into()),
            Send(2, format!("km\n{DIFF}")),
        ]
    );
    assert_eq!(f.out.dropped[&Dropped::Denied], 2);
    // Unsubscribing releases it; subscribing again asks again.
    f.unsubscribe(1, "secret");
    f.subscribe(1, "secret");
    assert_eq!(
        f.events(),
        [Authorize(4, 1, "base/secret".into(), Some("secret".into()))]
    );
}

#[test]
fn a_channel_granted_later_gets_what_was_sent_meanwhile() {
    let mut f = Fixture::with_limits(false, authorizing());
    f.open_as(1, "b/c", "kw", Access::Write);
    f.open_multiplexed(2, "b", "km");
    f.hello(2);
    f.subscribe(2, "c");
    f.receive(2, &format!("M\nc\n\n{GET}"));
    f.events();
    f.decide(2, 2, Some("c"), Decision::Grant(Access::Read));
    f.receive(1, &format!("\n{GET}"));
    assert_eq!(
        f.events(),
        [
            ClientIds("b/c".into(), "km".into(), 1),
            Send(2, "S\n[\"s\",-1,[1,\"c\"]]".into()),
            Send(1, format!("km\n{GET}")),
        ]
    );
}

#[test]
fn a_client_beyond_the_path_limit_is_refused() {
    let limits = Limits {
        max_clients_per_path: Some(2),
        ..Limits::default()
    };
    let mut f = Fixture::with_limits(false, limits);
    f.open(1, "p", "ka");
    f.open(2, "p", "kb");
    f.open(3, "q", "kc");
    f.events();
    f.open(4, "p", "kd");
    let full = SyncError::Refused(Refusal::PathFull);
    assert_eq!(f.events(), [Report(full), Close(4, 1013, full.to_string())]);
    f.open_multiplexed(5, "", "km");
    f.hello(5);
    f.subscribe(5, "p");
    f.subscribe(5, "q");
    assert_eq!(
        f.events(),
        [
            Send(5, "S\n[\"h\",-1,[0,1]]".into()),
            Report(full),
            ClientIds("q".into(), "km".into(), 1),
            Send(5, "S\n[\"s\",-1,[1,\"q\"]]".into()),
        ]
    );
    f.close(1);
    f.open(6, "p", "ke");
    assert_eq!(f.router.client_ids("p"), ["kb", "ke"]);
}

#[test]
fn a_client_over_its_message_rate_is_closed() {
    let limits = Limits {
        max_messages_per_second: Some(3.0),
        ..Limits::default()
    };
    let mut f = Fixture::with_limits(false, limits);
    f.open(1, "p", "ka");
    f.open(2, "p", "kb");
    f.events();
    for _ in 0..5 {
        f.receive(1, &format!("\n{GET}"));
    }
    let limited = SyncError::Refused(Refusal::RateLimited);
    let forwarded = sent(2, &format!("ka\n{GET}"));
    let events = f.events();
    assert_eq!(
        events,
        [
            Send(forwarded.0, forwarded.1.clone()),
            Send(forwarded.0, forwarded.1.clone()),
            Send(forwarded.0, forwarded.1),
            Report(limited),
            Close(1, 1008, limited.to_string()),
        ]
    );
}

mod read_only_property {
    //! Whatever a read-only client sends, in whatever order, on a path with writers and a
    //! server client: nothing that can change a store leaves it, and no request reaches it.
    //! In TinyBase's protocol a store changes only by merging a `ContentDiff` or a `Response`,
    //! and a `ContentHashes` is what makes a peer ask for (and merge) the sender's content.

    use super::*;
    use crate::protocol::fragment::{payloads, PayloadDecoder, SocketBudget};
    use crate::protocol::payload as envelope;
    use proptest::prelude::*;

    const READER: u64 = 3;

    /// A message from the read-only client: any type, valid or not, to anyone, maybe in
    /// fragments.
    fn message() -> impl Strategy<Value = (String, String, Option<f64>)> {
        let remainder = prop_oneof![
            Just(DIFF.to_owned()),
            Just(hashes(7)),
            Just(RESPONSE_TO_R.to_owned()),
            Just(r#"["r",0,[{"t":[{"r":[{"c":[1,"AAAAAAAAAAAAAAAA"]},""]},""]},""]]"#.to_owned()),
            Just(GET.to_owned()),
            Just(GET_TABLES.to_owned()),
            Just(r#"["r",5,{"t":{}}]"#.to_owned()),
            Just(r#"["r",7,{}]"#.to_owned()),
            "[\\[\\]\"0-9a-z,{}:]{0,24}",
        ];
        let to = prop_oneof![Just(""), Just("S"), Just("kw"), Just("kv"), Just("kr")];
        let fragment = prop_oneof![Just(None), (1.0..12.0f64).prop_map(Some)];
        (to, remainder, fragment)
            .prop_map(|(to, remainder, fragment)| (to.to_owned(), remainder, fragment))
    }

    /// The whole message a recipient gets from `from`, reassembling fragments as a client.
    fn whole_messages(payloads_from: &[String]) -> Vec<String> {
        let mut decoder = PayloadDecoder::new(TIMEOUT);
        let mut budget = SocketBudget::default();
        let now = Instant::now();
        let mut messages = Vec::new();
        for payload in payloads_from {
            // The relay forwards `from\nremainder`; decode it as if `from` were the addressee.
            if let Decoded::Message(message) = decoder.decode(payload, &mut budget, now) {
                messages.push(message.message().to_owned());
            }
        }
        messages
    }

    fn message_type(remainder: &str) -> i64 {
        crate::protocol::message::validate(remainder).expect("only valid messages are relayed")
    }

    proptest! {
        #[test]
        fn no_message_from_a_read_only_client_can_change_another_store(
            sent in proptest::collection::vec(message(), 1..24),
            startup in any::<bool>(),
        ) {
            let mut f = Fixture::with_limits(true, authorizing());
            f.open_as(1, "p", "kw", Access::Write);
            f.open_as(2, "p", "kv", Access::Write);
            f.open_as(READER, "p", "kr", Access::Read);
            if !startup {
                f.ready(0, true);
            }
            f.events();
            let mut ids = 0..;
            for (to, remainder, fragment_size) in &sent {
                let mut id = || format!("fragment{:08}", ids.next().unwrap_or(0));
                for payload in payloads(Some(to), remainder, *fragment_size, &mut id) {
                    f.receive(READER, &payload);
                }
            }
            if startup {
                f.ready(0, true);
            }
            // The writers answer a request each, and ask the reader for content.
            f.receive(1, &format!("kr\n{RESPONSE_TO_R}"));
            f.receive(2, &format!("\n{GET}"));
            f.receive(2, &format!("kr\n{GET_TABLES}"));
            let events = f.events();
            for event in &events {
                if let ToServer(_, payload) = event {
                    let (from, remainder) = envelope::split(payload).unwrap();
                    if from == "kr" {
                        prop_assert!(is_request(message_type(remainder)), "{payload}");
                    }
                }
            }
            for conn in [1, 2, READER] {
                let received: Vec<String> = events
                    .iter()
                    .filter_map(|event| match event {
                        Send(to, payload) if *to == conn => Some(payload.clone()),
                        _ => None,
                    })
                    .collect();
                if conn == READER {
                    for message in whole_messages(&received) {
                        let handed = message_type(&message);
                        prop_assert!(!is_request(handed), "the reader was handed {message}");
                    }
                }
                let from_reader: Vec<String> = received
                    .iter()
                    .filter(|payload| envelope::split(payload).unwrap().0 == "kr")
                    .cloned()
                    .collect();
                for message in whole_messages(&from_reader) {
                    prop_assert!(is_request(message_type(&message)), "{message}");
                }
            }
        }
    }
}
