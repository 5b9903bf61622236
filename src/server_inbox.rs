//! What waits for each path's server client while it works. A server client that is handed its
//! clients' changes faster than it settles them (TinyBase's persister queues a save per change)
//! would grow its queues without bound. So a path whose server client has been handed messages
//! gets no more `ContentDiff`s or `ContentHashes` until it reports them settled; meanwhile they
//! wait here, consecutive diffs merged into one, and a client's hashes replaced by its later
//! ones. Any other message for the server client (a request, an answer) goes on at once, after
//! what waited before it. A path holds at most [`PATH_LIMIT`] that way: past it, what waits is
//! handed over anyway, as if the server client were free, so a persister that hangs costs what it
//! would in TinyBase instead of holding up the sockets that feed it, and with them every other
//! path.
//!
//! Only the server client's diffs and the stop that follows them wait: everything else a path
//! makes (client ids, JS-plane sends) goes on in order, since nothing of it depends on the server
//! client's store.

use std::collections::{HashMap, HashSet};
use std::time::{SystemTime, UNIX_EPOCH};

use sync_core::changes::PendingDiff;
use sync_core::protocol::limits::MAX_PAYLOAD_BYTES;
use sync_core::protocol::message::message_type::{CONTENT_DIFF, CONTENT_HASHES};
use sync_core::protocol::message::peek_type;
use sync_core::protocol::payload as envelope;
use sync_core::router::PathKey;

use crate::event::Event;

/// Messages waiting for a server client, and their size.
#[derive(Default, Clone, Copy)]
pub struct Backlog {
    pub messages: usize,
    pub bytes: usize,
}

/// The most one busy path's messages wait here: a few turns of a server client's work.
pub const PATH_LIMIT: Backlog = Backlog {
    messages: 256,
    bytes: MAX_PAYLOAD_BYTES,
};

impl Backlog {
    /// Whether this is as much as `limit` allows, or more.
    pub fn reaches(&self, limit: Backlog) -> bool {
        self.messages >= limit.messages || self.bytes >= limit.bytes
    }

    pub fn add(&mut self, other: Backlog) {
        self.messages += other.messages;
        self.bytes += other.bytes;
    }

    pub fn remove(&mut self, other: Backlog) {
        self.messages -= other.messages;
        self.bytes -= other.bytes;
    }
}

/// One message waiting for a busy server client.
enum Waiting {
    /// A diff not looked into yet: it is parsed only if a diff comes to merge with it.
    Unread(String),
    /// Not a diff that can be merged.
    Whole(String),
    Diff(PendingDiff),
    /// A client's `ContentHashes`. The server client compares them with its own only to ask that
    /// client for what differs, which the client's later hashes tell as well: so, as TinyBase's
    /// own server does with the hashes it holds while a path starts, later ones replace it.
    Hashes(String),
}

impl Waiting {
    fn size(&self) -> usize {
        match self {
            Waiting::Unread(payload) | Waiting::Whole(payload) | Waiting::Hashes(payload) => {
                payload.len()
            }
            Waiting::Diff(diff) => diff.size(),
        }
    }

    fn into_payload(self) -> String {
        match self {
            Waiting::Unread(payload) | Waiting::Whole(payload) | Waiting::Hashes(payload) => {
                payload
            }
            Waiting::Diff(diff) => diff.into_payload(),
        }
    }

    /// Reads a diff not looked into yet: it stays a diff if it is one that can be merged.
    fn read(&mut self, now_ms: u64) {
        if let Waiting::Unread(payload) = self {
            let payload = std::mem::take(payload);
            *self = match PendingDiff::parse(&payload, now_ms) {
                Some(diff) => Waiting::Diff(diff),
                None => Waiting::Whole(payload),
            };
        }
    }

    /// The client a `ContentHashes` came from.
    fn hashes_from(&self) -> Option<&str> {
        match self {
            Waiting::Hashes(payload) => payload.split('\n').next(),
            _ => None,
        }
    }
}

#[derive(Default)]
pub struct ServerInbox {
    /// Paths whose server client holds messages it has not reported settled.
    busy: HashSet<PathKey>,
    waiting: HashMap<PathKey, Parked>,
    backlog: Backlog,
}

/// One busy path's waiting messages, oldest first.
#[derive(Default)]
struct Parked {
    messages: Vec<Waiting>,
    backlog: Backlog,
}

impl ServerInbox {
    /// The messages waiting here.
    pub fn backlog(&self) -> Backlog {
        self.backlog
    }

    /// Passes `event` on to `events` (the queue JS takes), or keeps it while its path's server
    /// client is busy.
    pub fn route(&mut self, event: Event, events: &mut Vec<Event>) {
        match event {
            Event::ToServer { path, payload } if self.busy.contains(&path) => {
                // `fromClientId\nmessage`, validated on its way here.
                let message = envelope::split(&payload).map_or("", |(_, message)| message);
                match peek_type(message) {
                    Some(CONTENT_DIFF) => self.wait(path, Waiting::Unread(payload), events),
                    Some(CONTENT_HASHES) => self.wait(path, Waiting::Hashes(payload), events),
                    _ => {
                        // A request or an answer goes on at once, after what came before it.
                        self.release(path, events);
                        events.push(Event::ToServer { path, payload });
                    }
                }
            }
            Event::ToServer { path, .. } => {
                self.busy.insert(path);
                events.push(event);
            }
            Event::StopPath { path } => {
                self.stopping(path, events);
                events.push(event);
            }
            Event::StopPaths { ref paths } => {
                for path in paths {
                    self.stopping(*path, events);
                }
                events.push(event);
            }
            event => events.push(event),
        }
    }

    /// A server client takes what is due to it before it stops, busy or not: what waited would
    /// otherwise reach a path already gone, and its changes would never be saved.
    fn stopping(&mut self, path: PathKey, events: &mut Vec<Event>) {
        self.release(path, events);
        self.busy.remove(&path);
    }

    /// The server client of `path` settled what it was handed: what waited for it follows.
    pub fn settled(&mut self, path: PathKey, events: &mut Vec<Event>) {
        self.busy.remove(&path);
        if self.release(path, events) {
            self.busy.insert(path);
        }
    }

    fn wait(&mut self, path: PathKey, message: Waiting, events: &mut Vec<Event>) {
        let parked = self.waiting.entry(path).or_default();
        let before = parked.backlog;
        match message {
            Waiting::Hashes(_) => parked.replace_hashes(message),
            diff => parked.park_diff(diff),
        }
        self.backlog.remove(before);
        self.backlog.add(parked.backlog);
        if parked.backlog.reaches(PATH_LIMIT) {
            self.release(path, events);
        }
    }

    /// Moves what waits for `path` to `events`; true if there was any.
    fn release(&mut self, path: PathKey, events: &mut Vec<Event>) -> bool {
        let Some(parked) = self.waiting.remove(&path) else {
            return false;
        };
        self.backlog.remove(parked.backlog);
        for message in parked.messages {
            events.push(Event::ToServer {
                path,
                payload: message.into_payload(),
            });
        }
        true
    }
}

impl Parked {
    /// Adds a diff, merged into the last diff that waits if both merge. Only hashes may wait
    /// after that diff, and the server client reading them after the merged diff has only a newer
    /// store to compare them with.
    fn park_diff(&mut self, mut message: Waiting) {
        let last_diff = self
            .messages
            .iter()
            .rposition(|waiting| !matches!(waiting, Waiting::Hashes(_)));
        if let Some(index) = last_diff {
            let now_ms = now_ms();
            let last = &mut self.messages[index];
            last.read(now_ms);
            if let Waiting::Diff(earlier) = last {
                message.read(now_ms);
                if let Waiting::Diff(later) = &message {
                    let before = earlier.size();
                    if earlier.absorb(later) {
                        self.backlog.bytes = self.backlog.bytes + earlier.size() - before;
                        return;
                    }
                }
            }
        }
        self.push(message);
    }

    /// Adds a client's hashes in place of any of its earlier ones that wait.
    fn replace_hashes(&mut self, hashes: Waiting) {
        let earlier = self
            .messages
            .iter()
            .position(|waiting| waiting.hashes_from() == hashes.hashes_from());
        if let Some(index) = earlier {
            let replaced = self.messages.remove(index);
            self.backlog.remove(Backlog {
                messages: 1,
                bytes: replaced.size(),
            });
        }
        self.push(hashes);
    }

    fn push(&mut self, message: Waiting) {
        self.backlog.add(Backlog {
            messages: 1,
            bytes: message.size(),
        });
        self.messages.push(message);
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}

#[cfg(test)]
mod tests;
