use super::*;

const HLC_1: &str = "OtkG7Uy---aaaaaa";
const HLC_2: &str = "OtkG7Uz---aaaaaa";

fn to_server(path: u64, payload: &str) -> Event {
    Event::ToServer {
        path: PathKey(path),
        payload: payload.to_owned(),
    }
}

fn diff(row: &str, value: u32, hlc: &str) -> String {
    format!(
        r#"c1
["r",3,[[{{"t":[{{"{row}":[{{"c":[{value},"{hlc}"]}},"{hlc}"]}},"{hlc}"]}},"{hlc}"],[{{}},""],1]]"#
    )
}

/// What `events` hands the server client of each path, in order.
fn delivered(events: &[Event]) -> Vec<(u64, String)> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::ToServer { path, payload } => Some((path.0, payload.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_busy_server_client_is_handed_the_diffs_that_waited_as_one() {
    let mut inbox = ServerInbox::default();
    let mut events = Vec::new();
    inbox.route(to_server(1, &diff("a", 1, HLC_1)), &mut events);
    inbox.route(to_server(1, &diff("a", 2, HLC_2)), &mut events);
    inbox.route(to_server(1, &diff("b", 3, HLC_1)), &mut events);
    // Another path's server client is not held up by this one.
    inbox.route(to_server(2, &diff("a", 9, HLC_1)), &mut events);
    assert_eq!(
        delivered(&events),
        [(1, diff("a", 1, HLC_1)), (2, diff("a", 9, HLC_1))]
    );
    assert_eq!(inbox.backlog().messages, 1);

    events.clear();
    inbox.settled(PathKey(1), &mut events);
    let merged = format!(
        r#"c1
["r",3,[[{{"t":[{{"a":[{{"c":[2,"{HLC_2}"]}},"{HLC_2}"],"b":[{{"c":[3,"{HLC_1}"]}},"{HLC_1}"]}},"{HLC_2}"]}},"{HLC_2}"],[{{}},""],1]]"#
    );
    assert_eq!(delivered(&events), [(1, merged)]);
    assert_eq!(inbox.backlog().messages, 0);
    assert_eq!(inbox.backlog().bytes, 0);

    // Handed the merged diff, the path is busy again until that too is settled.
    events.clear();
    inbox.route(to_server(1, &diff("c", 4, HLC_1)), &mut events);
    assert!(events.is_empty());
    inbox.settled(PathKey(1), &mut events);
    inbox.settled(PathKey(1), &mut events);
    inbox.route(to_server(1, &diff("d", 5, HLC_1)), &mut events);
    assert_eq!(
        delivered(&events),
        [(1, diff("c", 4, HLC_1)), (1, diff("d", 5, HLC_1))]
    );
}

#[test]
fn other_messages_go_on_after_the_diffs_before_them_and_a_stop_takes_what_waited() {
    let mut inbox = ServerInbox::default();
    let mut events = Vec::new();
    let request = "c2\n[\"q\",4,{\"t\":1}]".to_owned();
    inbox.route(to_server(1, &diff("a", 1, HLC_1)), &mut events);
    inbox.route(to_server(1, &diff("b", 2, HLC_1)), &mut events);
    inbox.route(to_server(1, &diff("b", 3, HLC_2)), &mut events);
    assert_eq!(delivered(&events).len(), 1);
    // A request does not wait: it follows the diffs that came before it, merged.
    inbox.route(to_server(1, &request), &mut events);
    inbox.route(
        Event::Error {
            message: "passes".to_owned(),
        },
        &mut events,
    );
    inbox.route(to_server(1, &diff("c", 4, HLC_1)), &mut events);
    assert_eq!(inbox.backlog().messages, 1);
    inbox.route(Event::StopPath { path: PathKey(1) }, &mut events);
    let merged = format!(
        r#"c1
["r",3,[[{{"t":[{{"b":[{{"c":[3,"{HLC_2}"]}},"{HLC_2}"]}},"{HLC_2}"]}},"{HLC_2}"],[{{}},""],1]]"#
    );
    assert_eq!(
        delivered(&events),
        [
            (1, diff("a", 1, HLC_1)),
            (1, merged),
            (1, request.clone()),
            (1, diff("c", 4, HLC_1)),
        ]
    );
    assert!(matches!(events[3], Event::Error { .. }));
    assert!(matches!(events.last(), Some(Event::StopPath { .. })));
    assert_eq!(inbox.backlog().messages, 0);
    // A stopped path is no longer busy.
    events.clear();
    inbox.route(to_server(1, &diff("d", 5, HLC_1)), &mut events);
    assert_eq!(events.len(), 1);
}

#[test]
fn a_clients_hashes_wait_in_place_of_its_earlier_ones_and_diffs_merge_past_them() {
    let mut inbox = ServerInbox::default();
    let mut events = Vec::new();
    let hashes = |from: &str, hash: u32| format!("{from}\n[\"h{hash}\",2,[{hash},0]]");
    inbox.route(to_server(1, &diff("a", 1, HLC_1)), &mut events);
    events.clear();
    inbox.route(to_server(1, &hashes("c2", 1)), &mut events);
    inbox.route(to_server(1, &diff("b", 2, HLC_1)), &mut events);
    inbox.route(to_server(1, &hashes("c3", 2)), &mut events);
    inbox.route(to_server(1, &hashes("c2", 3)), &mut events);
    inbox.route(to_server(1, &diff("c", 3, HLC_1)), &mut events);
    assert!(events.is_empty());
    assert_eq!(inbox.backlog().messages, 3);
    inbox.settled(PathKey(1), &mut events);
    let merged = format!(
        r#"c1
["r",3,[[{{"t":[{{"b":[{{"c":[2,"{HLC_1}"]}},"{HLC_1}"],"c":[{{"c":[3,"{HLC_1}"]}},"{HLC_1}"]}},"{HLC_1}"]}},"{HLC_1}"],[{{}},""],1]]"#
    );
    // c2's first hashes are gone; its latest come after c3's, which came before them.
    assert_eq!(
        delivered(&events),
        [(1, merged), (1, hashes("c3", 2)), (1, hashes("c2", 3))]
    );
    assert_eq!(inbox.backlog().messages, 0);
    assert_eq!(inbox.backlog().bytes, 0);
}

#[test]
fn paths_stopped_together_take_what_waited_for_each_first() {
    let mut inbox = ServerInbox::default();
    let mut events = Vec::new();
    for path in [1, 2, 3] {
        inbox.route(to_server(path, &diff("a", 1, HLC_1)), &mut events);
        inbox.route(to_server(path, &diff("b", 2, HLC_1)), &mut events);
    }
    assert_eq!(inbox.backlog().messages, 3);
    events.clear();
    // A multiplexed socket's close stops two of its paths at once.
    inbox.route(
        Event::StopPaths {
            paths: vec![PathKey(1), PathKey(3)],
        },
        &mut events,
    );
    assert_eq!(
        delivered(&events),
        [(1, diff("b", 2, HLC_1)), (3, diff("b", 2, HLC_1))]
    );
    assert!(matches!(events.last(), Some(Event::StopPaths { .. })));
    assert_eq!(inbox.backlog().messages, 1);
    // Stopped, they are free; the path left running still waits for its server client.
    events.clear();
    for path in [1, 2, 3] {
        inbox.route(to_server(path, &diff("c", 3, HLC_1)), &mut events);
    }
    assert_eq!(
        delivered(&events),
        [(1, diff("c", 3, HLC_1)), (3, diff("c", 3, HLC_1))]
    );
}

#[test]
fn a_path_past_its_limit_is_handed_what_waited_as_if_its_server_client_were_free() {
    let mut inbox = ServerInbox::default();
    let mut events = Vec::new();
    // Diffs that cannot merge: each adds a row with an index id below the last one's.
    let write = |index: usize| diff(&(1000 - index).to_string(), 1, HLC_1);
    inbox.route(to_server(1, &write(0)), &mut events);
    for index in 1..PATH_LIMIT.messages {
        inbox.route(to_server(1, &write(index)), &mut events);
    }
    assert_eq!(events.len(), 1);
    assert_eq!(inbox.backlog().messages, PATH_LIMIT.messages - 1);
    // The message that reaches the limit goes with all those before it, in order.
    inbox.route(to_server(1, &write(PATH_LIMIT.messages)), &mut events);
    let expected: Vec<(u64, String)> = (0..=PATH_LIMIT.messages)
        .map(|index| (1, write(index)))
        .collect();
    assert_eq!(delivered(&events), expected);
    assert_eq!(inbox.backlog().messages, 0);
    assert_eq!(inbox.backlog().bytes, 0);
}
