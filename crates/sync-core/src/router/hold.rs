//! The startup hold: what clients send to a path while its server client starts, kept in order
//! and relayed once it is ready, within TinyBase's limits per path and per socket.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indexmap::IndexSet;

use super::ids::IdMap;
use super::timers::{Timer, Timers};
use super::{ConnId, PathKey};
use crate::protocol::limits::{MAX_PAYLOAD_BYTES, MAX_QUEUED_MESSAGES};
use crate::protocol::payload;

/// What the server client gets when a held remainder is relayed.
#[derive(Debug)]
pub(super) enum ToServer {
    /// Nothing: not the last remainder of a message, a message for one client, or a message
    /// whose other fragments were dropped.
    Nothing,
    /// The message was not fragmented: the remainder is the whole message.
    Remainder,
    /// The last remainder of a fragmented message: the whole message, joined.
    Message(String),
}

/// One remainder held for relay, as `to\nremainder` from `from`.
#[derive(Debug)]
pub(super) struct Held {
    pub(super) from: Arc<str>,
    /// The socket of the sender's client entry, whose own hold counters this is charged to.
    pub(super) conn: ConnId,
    pub(super) to: Arc<str>,
    pub(super) remainder: String,
    pub(super) to_server: ToServer,
    /// A ContentHashes message: a newer one from the same sender to the same target replaces it.
    pub(super) coalesces: bool,
    /// The whole message's type, which decides whether a read-only client is handed it.
    pub(super) message_type: i64,
}

impl Held {
    /// The size of the `to\nremainder` payload TinyBase holds, in UTF-8 bytes.
    fn size(&self) -> usize {
        self.to.len() + 1 + self.remainder.len()
    }

    fn coalesce_key(&self) -> String {
        payload::join(&self.from, &self.to)
    }
}

/// The message, byte and socket limits were hit: the sender's held messages were dropped.
#[derive(Debug)]
pub(super) struct HoldFull;

/// Held messages per socket, across every path the socket is on.
#[derive(Debug, Default)]
pub(super) struct SocketHolds(IdMap<ConnId, (usize, usize)>);

impl SocketHolds {
    pub(super) fn get(&self, conn: ConnId) -> (usize, usize) {
        self.0.get(&conn).copied().unwrap_or_default()
    }

    pub(super) fn add(&mut self, conn: ConnId, size: usize) {
        let (count, bytes) = self.0.entry(conn).or_default();
        *count += 1;
        *bytes += size;
    }

    pub(super) fn sub(&mut self, conn: ConnId, size: usize) {
        if let Some((count, bytes)) = self.0.get_mut(&conn) {
            *count -= 1;
            *bytes -= size;
            if *count == 0 {
                self.0.remove(&conn);
            }
        }
    }
}

/// One path generation's held messages, in arrival order.
#[derive(Debug)]
pub(super) struct Hold {
    timer: Timer,
    entries: Vec<Held>,
    bytes: usize,
    /// Where the held ContentHashes of each `from\nto` pair is.
    coalesced: HashMap<String, usize>,
    /// When the hold expires: set by the first held message, cleared when the hold empties.
    deadline: Option<Instant>,
}

impl Hold {
    pub(super) fn new(path: PathKey) -> Self {
        Hold {
            timer: Timer::Hold(path),
            entries: Vec::new(),
            bytes: 0,
            coalesced: Default::default(),
            deadline: None,
        }
    }

    /// Holds `held`, or, if that would break a limit, drops everything its sender has held here.
    pub(super) fn push(
        &mut self,
        held: Held,
        now: Instant,
        ttl: Duration,
        sockets: &mut SocketHolds,
        timers: &mut Timers,
    ) -> Result<(), HoldFull> {
        let key = held.coalesces.then(|| held.coalesce_key());
        let replacing = key
            .as_ref()
            .and_then(|key| self.coalesced.get(key).copied());
        let replaced = replacing.map(|index| &self.entries[index]);
        let replaced_size = replaced.map_or(0, Held::size);
        let same_socket = replaced.is_some_and(|replaced| replaced.conn == held.conn);
        let size = held.size();
        let (socket_count, socket_bytes) = sockets.get(held.conn);
        let socket_refund = if same_socket { replaced_size } else { 0 };
        if (replacing.is_none() && self.entries.len() >= MAX_QUEUED_MESSAGES)
            || self.bytes - replaced_size + size > MAX_PAYLOAD_BYTES
            || (!same_socket && socket_count >= MAX_QUEUED_MESSAGES)
            || socket_bytes - socket_refund + size > MAX_PAYLOAD_BYTES
        {
            self.drop_client(&held.from, sockets, timers);
            return Err(HoldFull);
        }
        sockets.add(held.conn, size);
        match replacing {
            Some(index) => {
                let replaced = std::mem::replace(&mut self.entries[index], held);
                sockets.sub(replaced.conn, replaced_size);
            }
            None => {
                if let Some(key) = key {
                    self.coalesced.insert(key, self.entries.len());
                }
                self.entries.push(held);
            }
        }
        self.bytes = self.bytes - replaced_size + size;
        if self.deadline.is_none() {
            // A timeout too large for the clock never expires.
            timers.set(&self.timer, &mut self.deadline, now.checked_add(ttl));
        }
        Ok(())
    }

    /// Drops what `client_id` holds here, as when it leaves the path or overflows the hold.
    pub(super) fn drop_client(
        &mut self,
        client_id: &str,
        sockets: &mut SocketHolds,
        timers: &mut Timers,
    ) {
        if self.entries.is_empty() {
            return;
        }
        self.entries.retain(|held| {
            let keep = *held.from != *client_id;
            if !keep {
                sockets.sub(held.conn, held.size());
            }
            keep
        });
        self.bytes = self.entries.iter().map(Held::size).sum();
        self.coalesced = self
            .entries
            .iter()
            .enumerate()
            .filter(|(_, held)| held.coalesces)
            .map(|(index, held)| (held.coalesce_key(), index))
            .collect();
        if self.entries.is_empty() {
            timers.set(&self.timer, &mut self.deadline, None);
        }
    }

    /// Empties the hold, returning what it held in order.
    pub(super) fn take(&mut self, sockets: &mut SocketHolds, timers: &mut Timers) -> Vec<Held> {
        timers.set(&self.timer, &mut self.deadline, None);
        self.bytes = 0;
        self.coalesced.clear();
        let entries = std::mem::take(&mut self.entries);
        for held in &entries {
            sockets.sub(held.conn, held.size());
        }
        entries
    }

    /// Empties a hold whose deadline passed, returning the sockets that had messages in it, in
    /// the order of their first held message.
    pub(super) fn expire(
        &mut self,
        sockets: &mut SocketHolds,
        timers: &mut Timers,
    ) -> IndexSet<ConnId> {
        // The timer that fired is no longer registered.
        self.deadline = None;
        self.take(sockets, timers)
            .iter()
            .map(|held| held.conn)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(from: &str, conn: u64, to: &str, remainder: &str, coalesces: bool) -> Held {
        Held {
            from: from.into(),
            conn: ConnId(conn),
            to: to.into(),
            remainder: remainder.to_owned(),
            to_server: ToServer::Remainder,
            coalesces,
            message_type: 2,
        }
    }

    fn remainders(entries: &[Held]) -> Vec<(&str, &str)> {
        entries
            .iter()
            .map(|held| (&*held.from, held.remainder.as_str()))
            .collect()
    }

    #[test]
    fn coalesces_in_place_and_keeps_socket_counts() {
        let now = Instant::now();
        let ttl = Duration::from_secs(10);
        let (mut sockets, mut timers) = (SocketHolds::default(), Timers::default());
        let mut hold = Hold::new(PathKey(1));
        hold.push(
            held("a", 1, "", "h1", true),
            now,
            ttl,
            &mut sockets,
            &mut timers,
        )
        .unwrap();
        hold.push(
            held("a", 1, "", "x", false),
            now,
            ttl,
            &mut sockets,
            &mut timers,
        )
        .unwrap();
        hold.push(
            held("a", 1, "b", "h2", true),
            now,
            ttl,
            &mut sockets,
            &mut timers,
        )
        .unwrap();
        hold.push(
            held("a", 1, "", "h3!", true),
            now,
            ttl,
            &mut sockets,
            &mut timers,
        )
        .unwrap();
        assert_eq!(sockets.get(ConnId(1)), (3, 4 + 2 + 4));
        assert_eq!(timers.next(), Some(now + ttl));
        let entries = hold.take(&mut sockets, &mut timers);
        assert_eq!(
            remainders(&entries),
            [("a", "h3!"), ("a", "x"), ("a", "h2")]
        );
        assert_eq!(sockets.get(ConnId(1)), (0, 0));
        assert_eq!(timers.next(), None);
    }

    #[test]
    fn dropping_a_client_keeps_the_rest_and_the_deadline() {
        let now = Instant::now();
        let ttl = Duration::from_secs(10);
        let (mut sockets, mut timers) = (SocketHolds::default(), Timers::default());
        let mut hold = Hold::new(PathKey(1));
        hold.push(
            held("a", 1, "", "1", true),
            now,
            ttl,
            &mut sockets,
            &mut timers,
        )
        .unwrap();
        hold.push(
            held("b", 2, "", "2", true),
            now,
            ttl,
            &mut sockets,
            &mut timers,
        )
        .unwrap();
        hold.drop_client("a", &mut sockets, &mut timers);
        assert_eq!(sockets.get(ConnId(1)), (0, 0));
        assert_eq!(timers.next(), Some(now + ttl));
        let later = now + Duration::from_secs(1);
        hold.push(
            held("b", 2, "", "3", true),
            later,
            ttl,
            &mut sockets,
            &mut timers,
        )
        .unwrap();
        assert_eq!(timers.next(), Some(now + ttl));
        hold.drop_client("b", &mut sockets, &mut timers);
        assert_eq!(timers.next(), None);
        assert!(hold.take(&mut sockets, &mut timers).is_empty());
    }
}
