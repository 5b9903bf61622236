//! The relay router: which clients are on which path, where each message goes, what is held
//! while a path's server client starts, and when paths start and stop. Mirrors TinyBase's
//! `createWsServer` bookkeeping, driven by calls from the host and answered through an [`Outbox`].

mod access;
mod admission;
mod connection;
mod hold;
mod ids;
mod path;
mod payload;
mod relay;
#[cfg(test)]
mod tests;
mod timers;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::protocol::error::{Overflow, Refusal, SyncError};
use crate::protocol::fragment::{self, Decoded, DecodedMessage};
use crate::protocol::limits::{
    MAX_CHANNELS, MAX_CHANNEL_RESOURCES, MAX_PAYLOAD_BYTES, SERVER_CLIENT_ID,
};
use crate::protocol::message::message_type::{CONTENT_HASHES, RESPONSE};
use crate::protocol::message::Verdict;
use crate::protocol::multiplex::{self, Control, Envelope};
use crate::protocol::payload as envelope;

use access::{Gate, RateLimit};
use connection::{Conn, Conns, Kind, Multiplexed, Unadmitted};
use hold::{Held, SocketHolds, ToServer};
use path::{ChannelRef, Client, Leave, Paths, Start, Waiter};
use relay::{publish, relay, Relayed};

pub use access::{is_request, Access, AuthRequest, Decision, Dropped, Limits};
use timers::{Timer, Timers};

pub use payload::Payload;

/// One connection (socket) as the host knows it; the router never reuses an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// One generation of a path: a path that stops and is joined again gets a new key, so late
/// results for the old generation can be told apart and discarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PathKey(pub u64);

/// The host refused a send because the connection's outbound backlog is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backpressure;

/// Path and client counts, as `WsServer.getStats` returns them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub paths: usize,
    pub clients: usize,
}

/// How the router is set up, from `createWsServer`'s arguments.
pub struct Config {
    /// `requestTimeoutSeconds`: fragment groups expire after it, held messages after ten times it.
    pub request_timeout: Duration,
    /// `fragmentSize`: how the server client's outbound messages are split, if at all.
    pub fragment_size: Option<f64>,
    /// Whether `createPersisterForPath` was given: without it paths are ready at once and stop at
    /// once, with no round trip to the host.
    pub has_factory: bool,
    /// Makes the 16-character ids of fragmented messages the server client sends.
    pub message_id: Box<dyn FnMut() -> String + Send>,
    /// Access control and limits: none by default.
    pub limits: Limits,
    /// How long a path whose server client is running stays up after its last client leaves, so
    /// a client arriving meanwhile finds it loaded. Zero stops it at once, as TinyBase does.
    pub keep_warm: Duration,
}

/// What the router asks of its host. It is called while the router is borrowed mutably, so an
/// implementation only queues work; it never calls back into the router.
pub trait Outbox {
    /// Delivers `payload` to `conn`. The payload is shared by every recipient of a broadcast.
    fn send(&mut self, conn: ConnId, payload: &Payload) -> Result<(), Backpressure>;
    /// Closes `conn` with a WebSocket close code and reason, after what was already sent to it.
    fn close(&mut self, conn: ConnId, code: u16, reason: &str);
    /// Reports an error to `onIgnoredError`.
    fn report(&mut self, error: SyncError);
    /// A client joined (`1`) or left (`-1`) a path.
    fn client_ids(&mut self, path_id: &str, client_id: &str, change: i8);
    /// A path appeared (`1`) or finished stopping (`-1`).
    fn path_ids(&mut self, path_id: &str, change: i8);
    /// A new path generation needs its server client: the host calls the persister factory, starts
    /// it, then answers with [`Router::path_ready`] or [`Router::path_failed`].
    fn start_path(&mut self, path: PathKey, path_id: &str);
    /// A path generation lost its last client: the host tears its server client down, then answers
    /// with [`Router::path_stopped`].
    fn stop_path(&mut self, path: PathKey);
    /// A multiplexed socket closed: as [`Outbox::stop_path`] for each of `paths` (those its
    /// channels were the last client of, and those of channels it unsubscribed that are still
    /// stopping), but, as TinyBase tears a socket's channels down together, the first error of
    /// their teardowns is reported once, when every one of them has settled.
    fn stop_paths(&mut self, paths: Vec<PathKey>);
    /// A running path generation has no client left here: true if the host keeps it running
    /// anyway (a cluster whose other nodes still have clients on it), until it answers with
    /// [`Router::vacated`]. A lone server keeps nothing beyond `keep_warm`.
    fn keeps(&mut self, _path: PathKey) -> bool {
        false
    }
    /// Delivers one whole message, `fromClientId\nmessage`, to the path's server client.
    fn to_server(&mut self, path: PathKey, payload: &str);
    /// A client of this router sent `payload` (`fromClientId\nremainder`) on `path_id` to every
    /// client (`to` empty) or to `to`, a client that is not here: a cluster publishes it for the
    /// clients of other nodes. A lone server has no one else to tell.
    fn publish(&mut self, _path_id: &str, _to: &str, _payload: &Payload) {}
    /// With [`Limits::authorizing`]: a connection or channel waits for the host's decision,
    /// which it answers with [`Router::authorized`].
    fn authorize(&mut self, request: AuthRequest);
    /// Access control dropped `count` messages.
    fn dropped(&mut self, _reason: Dropped, _count: usize) {}
}

/// The relay's state for every path, client and connection.
pub struct Router {
    config: Config,
    paths: Paths,
    conns: Conns,
    sockets: SocketHolds,
    timers: Timers,
    /// Tells the host's decisions apart, so a late one never applies to a later subscription.
    next_ticket: u64,
}

impl Router {
    pub fn new(config: Config) -> Self {
        Router {
            paths: Paths::new(config.has_factory, config.keep_warm),
            config,
            conns: Conns::default(),
            sockets: SocketHolds::default(),
            timers: Timers::default(),
            next_ticket: 0,
        }
    }

    /// A connection was accepted for `path_id` with `client_id` (its `sec-websocket-key`).
    /// A legacy connection is one client of that path at once; a multiplexed one (the `tinybase`
    /// subprotocol) joins `path_id/channelId` paths as it subscribes to channels.
    pub fn open(
        &mut self,
        conn: ConnId,
        path_id: &str,
        client_id: &str,
        multiplexed: bool,
        out: &mut impl Outbox,
    ) {
        if self.conns.contains_key(&conn) {
            return;
        }
        let kind = if multiplexed {
            Kind::Multiplexed(Box::new(Multiplexed::new(path_id)))
        } else {
            Kind::Unadmitted(Unadmitted {
                path_id: path_id.into(),
                awaiting: None,
            })
        };
        let state = Conn {
            id: conn,
            client_id: client_id.into(),
            closing: false,
            muted: false,
            rate: None,
            kind,
        };
        self.conns.insert(conn, state);
        if !multiplexed {
            self.ask_legacy(conn, out);
        }
    }

    /// A text payload arrived on `conn` at `now`.
    pub fn receive(&mut self, conn: ConnId, payload: &str, now: Instant, out: &mut impl Outbox) {
        self.receive_judged(conn, payload, None, now, out);
    }

    /// As [`Router::receive`], with the message `payload` carries validated beforehand
    /// ([`Verdict::of_payload`]), as a host does before it takes the lock the router is behind.
    pub fn receive_judged(
        &mut self,
        conn: ConnId,
        payload: &str,
        verdict: Option<Verdict>,
        now: Instant,
        out: &mut impl Outbox,
    ) {
        let Some(state) = self.conns.get_mut(&conn) else {
            return;
        };
        if state.muted {
            // A connection never admitted was denied (or found its path full); a rate-limited
            // one is being closed, and its close is what gets counted.
            if matches!(state.kind, Kind::Unadmitted(_)) {
                out.dropped(Dropped::Denied, 1);
            }
            return;
        }
        if let Some(rate) = self.config.limits.max_messages_per_second {
            if !state
                .rate
                .get_or_insert_with(|| RateLimit::new(rate, now))
                .take(now)
            {
                return state.refuse(Refusal::RateLimited, out);
            }
        }
        if let Kind::Unadmitted(unadmitted) = &mut state.kind {
            let held = unadmitted
                .awaiting
                .as_mut()
                .map(|awaiting| awaiting.push(conn, payload, &mut self.sockets));
            if let Some(Err(_)) = held {
                self.refuse_unadmitted(conn, None, out);
            }
            return;
        }
        self.route(conn, payload, verdict, now, out);
    }

    /// A payload from an admitted connection, or one it sent while it waited to be.
    fn route(
        &mut self,
        conn: ConnId,
        payload: &str,
        verdict: Option<Verdict>,
        now: Instant,
        out: &mut impl Outbox,
    ) {
        let Some(state) = self.conns.get_mut(&conn) else {
            return;
        };
        let Kind::Legacy(legacy) = &mut state.kind else {
            return self.receive_multiplexed(conn, payload, verdict, now, out);
        };
        match legacy
            .decoder
            .decode(payload, verdict, &mut legacy.budget, now, &mut self.timers)
        {
            Decoded::Message(message) => {
                let path = legacy.path;
                let from = state.client_id.clone();
                self.handle_decoded(path, &from, message, now, out);
            }
            Decoded::Invalid(error) => state.invalid(error, out),
            Decoded::Pending | Decoded::Ignored => {}
        }
    }

    /// TinyBase's `createMultipleServerClient` payload handler.
    fn receive_multiplexed(
        &mut self,
        conn: ConnId,
        payload: &str,
        verdict: Option<Verdict>,
        now: Instant,
        out: &mut impl Outbox,
    ) {
        let Some(state) = self.conns.get_mut(&conn) else {
            return;
        };
        let Kind::Multiplexed(mux) = &mut state.kind else {
            return;
        };
        if !mux.valid {
            return;
        }
        if payload.len() > MAX_PAYLOAD_BYTES {
            return self.invalidate(conn, SyncError::Overflow(Overflow::Socket), out);
        }
        match multiplex::parse(payload) {
            Envelope::Control(control) => self.control(conn, control, now, out),
            Envelope::Channel {
                channel_id,
                payload,
            } => {
                if !mux.negotiated {
                    return self.invalidate(conn, SyncError::Message, out);
                }
                match mux.gates.get_mut(channel_id) {
                    None => self.receive_channel(conn, channel_id, payload, verdict, now, out),
                    Some(Gate::Denied) => out.dropped(Dropped::Denied, 1),
                    Some(Gate::Pending { awaiting, .. }) => {
                        if awaiting.push(conn, payload, &mut self.sockets).is_err() {
                            state.overflow(Overflow::Server, out);
                        }
                    }
                }
            }
            Envelope::ChannelIdTooLarge => {
                self.invalidate(conn, SyncError::Overflow(Overflow::Channels), out)
            }
            Envelope::Invalid => self.invalidate(conn, SyncError::Message, out),
        }
    }

    /// A payload on a subscribed channel, or one sent while its subscription was being decided.
    fn receive_channel(
        &mut self,
        conn: ConnId,
        channel_id: &str,
        payload: &str,
        verdict: Option<Verdict>,
        now: Instant,
        out: &mut impl Outbox,
    ) {
        let Some(state) = self.conns.get_mut(&conn) else {
            return;
        };
        let Kind::Multiplexed(mux) = &mut state.kind else {
            return;
        };
        let Some(channel) = mux.channels.get_mut(channel_id) else {
            return self.invalidate(conn, SyncError::Message, out);
        };
        match channel
            .decoder
            .decode(payload, verdict, &mut mux.budget, now, &mut self.timers)
        {
            Decoded::Message(message) => {
                let path = channel.path;
                let from = state.client_id.clone();
                self.handle_decoded(path, &from, message, now, out);
            }
            Decoded::Invalid(error) => self.invalidate(conn, error, out),
            Decoded::Pending | Decoded::Ignored => {}
        }
    }

    /// A multiplexed socket broke a rule: it is reported and closed once, and ignored after.
    fn invalidate(&mut self, conn: ConnId, error: SyncError, out: &mut impl Outbox) {
        let Some(state) = self.conns.get_mut(&conn) else {
            return;
        };
        let Kind::Multiplexed(mux) = &mut state.kind else {
            return;
        };
        if mux.valid {
            mux.valid = false;
            mux.clear_decoders(&mut self.timers);
            state.invalid(error, out);
        }
    }

    /// Hello, subscribe and unsubscribe on a multiplexed socket; before a hello, the others are
    /// ignored, as TinyBase ignores them.
    fn control(&mut self, conn: ConnId, control: Control, now: Instant, out: &mut impl Outbox) {
        let Some(state) = self.conns.get_mut(&conn) else {
            return;
        };
        let Kind::Multiplexed(mux) = &mut state.kind else {
            return;
        };
        match &control {
            Control::Hello { .. } => mux.negotiated = true,
            _ if !mux.negotiated => return,
            Control::Subscribe { channel_id, .. } => {
                if multiplex::is_channel_id_too_large(channel_id) {
                    return self.invalidate(conn, SyncError::Overflow(Overflow::Channels), out);
                }
                if let Some(channel) = mux.channels.get(channel_id.as_str()) {
                    let key = channel.path;
                    let reply = multiplex::reply(&control).into();
                    return self.acknowledge(conn, key, reply, out);
                }
                if mux.gates.contains_key(channel_id.as_str()) {
                    return self.resubscribe_gated(conn, &control, out);
                }
                if mux.channels.len() + mux.gates.len() >= MAX_CHANNELS
                    || mux.resources >= MAX_CHANNEL_RESOURCES
                {
                    return self.invalidate(conn, SyncError::Overflow(Overflow::Channels), out);
                }
                mux.resources += 1;
                return self.subscribe(conn, &control, out);
            }
            Control::Unsubscribe { channel_id } => {
                if multiplex::is_channel_id_too_large(channel_id) {
                    return self.invalidate(conn, SyncError::Overflow(Overflow::Channels), out);
                }
                if let Some(gate) = mux.gates.shift_remove(channel_id.as_str()) {
                    if let Gate::Pending { mut awaiting, .. } = gate {
                        awaiting.take(conn, &mut self.sockets);
                    }
                    mux.resources -= 1;
                } else if let Some(mut channel) = mux.channels.shift_remove(channel_id.as_str()) {
                    channel.decoder.clear(&mut mux.budget, &mut self.timers);
                    let left = self.paths.leave(
                        channel.path,
                        &state.client_id,
                        now,
                        &mut self.sockets,
                        &mut self.timers,
                        out,
                    );
                    // The channel counts against the socket's resources until its path is
                    // torn down.
                    match (left, self.paths.get_mut(channel.path)) {
                        (Leave::Stopping, Some(path)) => {
                            path.waiters.push(Waiter { conn, failed: None });
                            mux.releasing.push(channel.path);
                            out.stop_path(channel.path);
                        }
                        _ => mux.resources -= 1,
                    }
                }
                return;
            }
        }
        state.send(&multiplex::reply(&control).into(), out);
    }

    /// Replies to a subscription to the channel on generation `key`: at once if the host has
    /// called the persister factory for it, else once it has.
    pub(super) fn acknowledge(
        &mut self,
        conn: ConnId,
        key: PathKey,
        reply: Payload,
        out: &mut impl Outbox,
    ) {
        match self.paths.get_mut(key) {
            Some(path) if !path.factory_called => path.unacknowledged.push((conn, reply)),
            _ => {
                if let Some(state) = self.conns.get_mut(&conn) {
                    state.send(&reply, out);
                }
            }
        }
    }

    /// The host called the persister factory for generation `key`: the subscriptions that
    /// waited for it are acknowledged. A generation that gets ready or fails without a factory
    /// call here (its server client runs on another node) acknowledges them then.
    pub fn factory_called(&mut self, key: PathKey, out: &mut impl Outbox) {
        let Some(path) = self.paths.get_mut(key) else {
            return;
        };
        path.factory_called = true;
        for (conn, reply) in std::mem::take(&mut path.unacknowledged) {
            if let Some(state) = self.conns.get_mut(&conn) {
                state.send(&reply, out);
            }
        }
    }

    /// A client leaves generation `key` at `now`; the host tears it down if it was the last
    /// client.
    fn leave(
        &mut self,
        key: PathKey,
        client_id: &str,
        now: Instant,
        out: &mut impl Outbox,
    ) -> Leave {
        let left = self.paths.leave(
            key,
            client_id,
            now,
            &mut self.sockets,
            &mut self.timers,
            out,
        );
        if left == Leave::Stopping {
            out.stop_path(key);
        }
        left
    }

    /// TinyBase's `handleDecodedMessage`: relays each remainder of a message, or holds it while
    /// the path starts. Nothing goes anywhere once the sender has left the path.
    fn handle_decoded(
        &mut self,
        key: PathKey,
        from: &Arc<str>,
        message: DecodedMessage,
        now: Instant,
        out: &mut impl Outbox,
    ) {
        let Some(path) = self.paths.get_mut(key) else {
            return;
        };
        let Some(sender) = path.clients.get(&**from) else {
            return;
        };
        if path.stopping {
            return;
        }
        if !sender.access.relays(message.message_type) {
            out.dropped(Dropped::ReadOnly, 1);
            return;
        }
        let DecodedMessage {
            to_client_id: to,
            remainders,
            mut joined,
            message_type,
        } = message;
        let fragmented = joined.is_some();
        let last = remainders.len().saturating_sub(1);
        if path.is_ready() {
            let server_hears = path.server_hears(from, &to);
            for (index, remainder) in remainders.iter().enumerate() {
                let forwarded = Payload::from(envelope::join(from, remainder));
                let whole;
                let server_message = match (server_hears && index == last, &joined) {
                    (false, _) => None,
                    (true, None) => Some(forwarded.as_str()),
                    (true, Some(joined)) => {
                        whole = envelope::join(from, joined);
                        Some(whole.as_str())
                    }
                };
                let relayed = Relayed {
                    from,
                    to: &to,
                    payload: &forwarded,
                    message_type,
                };
                relay(path, &relayed, server_message, &mut self.conns, out);
                publish(path, &to, &forwarded, out);
            }
            return;
        }
        let conn = sender.conn;
        let ttl = self.config.request_timeout.saturating_mul(10);
        let for_server = to.is_empty() || to == SERVER_CLIENT_ID;
        let coalesces = !fragmented && message_type == CONTENT_HASHES;
        let to: Arc<str> = to.into();
        // A fragmented message whose earlier fragments were dropped never reaches the server.
        let mut intact = true;
        for (index, remainder) in remainders.into_iter().enumerate() {
            let to_server = match (for_server && intact && index == last, fragmented) {
                (false, _) => ToServer::Nothing,
                (true, false) => ToServer::Remainder,
                (true, true) => ToServer::Message(joined.take().unwrap_or_default()),
            };
            let held = Held {
                from: from.clone(),
                conn,
                to: to.clone(),
                remainder: remainder.into_owned(),
                to_server,
                coalesces,
                message_type,
            };
            if path
                .hold
                .push(held, now, ttl, &mut self.sockets, &mut self.timers)
                .is_err()
            {
                intact = false;
                if let Some(state) = self.conns.get_mut(&conn) {
                    state.overflow(Overflow::Server, out);
                }
            }
        }
    }

    /// `conn` is gone at `now`, closed by either side: its clients leave their paths.
    pub fn close(&mut self, conn: ConnId, now: Instant, out: &mut impl Outbox) {
        let Some(state) = self.conns.remove(&conn) else {
            return;
        };
        let client_id = &state.client_id;
        match state.kind {
            Kind::Unadmitted(Unadmitted { awaiting, .. }) => {
                if let Some(mut awaiting) = awaiting {
                    awaiting.take(conn, &mut self.sockets);
                }
            }
            Kind::Legacy(mut legacy) => {
                legacy.decoder.clear(&mut legacy.budget, &mut self.timers);
                self.leave(legacy.path, client_id, now, out);
            }
            Kind::Multiplexed(mut mux) => {
                mux.clear_decoders(&mut self.timers);
                for gate in mux.gates.values_mut() {
                    if let Gate::Pending { awaiting, .. } = gate {
                        awaiting.take(conn, &mut self.sockets);
                    }
                }
                let mut stopping = Vec::new();
                for channel in mux.channels.values() {
                    let left = self.paths.leave(
                        channel.path,
                        client_id,
                        now,
                        &mut self.sockets,
                        &mut self.timers,
                        out,
                    );
                    if left == Leave::Stopping {
                        stopping.push(channel.path);
                    }
                }
                stopping.append(&mut mux.releasing);
                if !stopping.is_empty() {
                    out.stop_paths(stopping);
                }
            }
        }
    }

    /// The server client of `path` sends a message (`to_client_id` `None` for everyone).
    pub fn server_send(
        &mut self,
        path: PathKey,
        to_client_id: Option<&str>,
        remainder: &str,
        out: &mut impl Outbox,
    ) {
        let Some(path) = self.paths.get(path) else {
            return;
        };
        // Each payload starts `to\n`, and is addressed, as any payload, up to its first newline.
        let to = to_client_id.unwrap_or_default();
        let to = to.split(envelope::SEPARATOR).next().unwrap_or(to);
        let message_id = &mut self.config.message_id;
        let payloads = fragment::payloads(
            to_client_id,
            remainder,
            self.config.fragment_size,
            message_id,
        );
        let server_hears = path.server_hears(SERVER_CLIENT_ID, to);
        // Only read-only recipients need it, and they are rare.
        let message_type = match path.has_readers() {
            true => access::server_message_type(remainder),
            false => RESPONSE,
        };
        let last = payloads.len().saturating_sub(1);
        for (index, mut payload) in payloads.into_iter().enumerate() {
            // Readdressed from the server client in place, without a second buffer.
            payload.replace_range(..to.len(), SERVER_CLIENT_ID);
            let forwarded = Payload::from(payload);
            let joined;
            let server_message = match (server_hears && index == last, last == 0) {
                (false, _) => None,
                (true, true) => Some(forwarded.as_str()),
                (true, false) => {
                    joined = envelope::join(SERVER_CLIENT_ID, remainder);
                    Some(joined.as_str())
                }
            };
            let relayed = Relayed {
                from: SERVER_CLIENT_ID,
                to,
                payload: &forwarded,
                message_type,
            };
            relay(path, &relayed, server_message, &mut self.conns, out);
            publish(path, to, &forwarded, out);
        }
    }

    /// The host finished starting `path`: relay what was held, in order.
    pub fn path_ready(&mut self, path: PathKey, has_server_client: bool, out: &mut impl Outbox) {
        self.factory_called(path, out);
        let Some(path) = self.paths.get_mut(path) else {
            return;
        };
        if path.stopping || path.is_ready() {
            return;
        }
        path.start = Start::Ready {
            server_client: has_server_client,
        };
        for held in path.hold.take(&mut self.sockets, &mut self.timers) {
            let forwarded = Payload::from(envelope::join(&held.from, &held.remainder));
            let joined;
            let server_message = match &held.to_server {
                _ if !path.server_hears(&held.from, &held.to) => None,
                ToServer::Nothing => None,
                ToServer::Remainder => Some(forwarded.as_str()),
                ToServer::Message(message) => {
                    joined = envelope::join(&held.from, message);
                    Some(joined.as_str())
                }
            };
            let relayed = Relayed {
                from: &held.from,
                to: &held.to,
                payload: &forwarded,
                message_type: held.message_type,
            };
            relay(path, &relayed, server_message, &mut self.conns, out);
            publish(path, &held.to, &forwarded, out);
        }
    }

    /// Delivers to this router's clients of `path_id` what a client elsewhere sent there: a
    /// client of another node of a cluster, or a node's own pseudo client. It goes where the
    /// sender's message would go on one server (`payload` is `from\nremainder`, `to` empty for
    /// every client but `from`), except to the server client, which talks to this node's
    /// clients only; nothing is published again.
    pub fn deliver(
        &mut self,
        path_id: &str,
        from: &str,
        to: &str,
        payload: &Payload,
        out: &mut impl Outbox,
    ) {
        let Some(path) = self.paths.current(path_id) else {
            return;
        };
        if !path.stopping {
            let message_type = match path.has_readers() {
                true => access::relayed_message_type(payload),
                false => RESPONSE,
            };
            let relayed = Relayed {
                from,
                to,
                payload,
                message_type,
            };
            relay(path, &relayed, None, &mut self.conns, out);
        }
    }

    /// Delivers a whole message (`from\nmessage`) from a client elsewhere to the server client
    /// of `path_id`, if it has one running here.
    pub fn deliver_to_server(&mut self, path_id: &str, payload: &str, out: &mut impl Outbox) {
        let Some(path) = self.paths.current(path_id) else {
            return;
        };
        if !path.stopping
            && path.start
                == (Start::Ready {
                    server_client: true,
                })
        {
            out.to_server(path.key, payload);
        }
    }

    /// Starting `path` failed (already reported by the host) at `now`: its clients leave the
    /// path.
    pub fn path_failed(&mut self, key: PathKey, now: Instant, out: &mut impl Outbox) {
        self.factory_called(key, out);
        let Some(path) = self.paths.get(key) else {
            return;
        };
        if path.stopping || path.is_ready() {
            return;
        }
        let clients: Vec<(Arc<str>, Client)> = path
            .clients
            .iter()
            .map(|(id, client)| (id.clone(), client.clone()))
            .collect();
        for (client_id, client) in clients {
            let left = self.leave(key, &client_id, now, out);
            let Some(channel) = client.channel else {
                continue;
            };
            // TinyBase unsubscribes the channel once the client has left, which includes the
            // teardown when it was the last one.
            match (left, self.paths.get_mut(key)) {
                (Leave::Stopping, Some(path)) => path.waiters.push(Waiter {
                    conn: client.conn,
                    failed: Some(channel),
                }),
                _ => self.drop_failed_channel(client.conn, &channel),
            }
        }
    }

    /// Unsubscribes a channel whose path failed to start, unless the client unsubscribed it
    /// (and so released it) meanwhile.
    fn drop_failed_channel(&mut self, conn: ConnId, channel: &ChannelRef) {
        let Some(Conn {
            kind: Kind::Multiplexed(mux),
            ..
        }) = self.conns.get_mut(&conn)
        else {
            return;
        };
        if mux
            .channels
            .get(&channel.id)
            .is_some_and(|current| current.serial == channel.serial)
        {
            if let Some(mut dropped) = mux.channels.shift_remove(&channel.id) {
                dropped.decoder.clear(&mut mux.budget, &mut self.timers);
                mux.resources -= 1;
            }
        }
    }

    /// The server is being destroyed: every path stops now, as TinyBase's `destroy` stops them,
    /// rather than as its clients leave.
    pub fn stop_all(&mut self, out: &mut impl Outbox) {
        self.paths
            .stop_all(&mut self.sockets, &mut self.timers, out);
    }

    /// The host finished tearing `path` down.
    pub fn path_stopped(&mut self, path: PathKey, out: &mut impl Outbox) {
        for waiter in self.paths.stopped(path, out) {
            match &waiter.failed {
                Some(channel) => self.drop_failed_channel(waiter.conn, channel),
                None => {
                    if let Some(Conn {
                        kind: Kind::Multiplexed(mux),
                        ..
                    }) = self.conns.get_mut(&waiter.conn)
                    {
                        mux.resources -= 1;
                        mux.releasing.retain(|releasing| *releasing != path);
                    }
                }
            }
        }
    }

    /// Expires fragment groups and held messages due by `now`.
    pub fn expire(&mut self, now: Instant, out: &mut impl Outbox) {
        for timer in self.timers.take_due(now) {
            match timer {
                Timer::Fragments { conn, channel } => {
                    let Some(state) = self.conns.get_mut(&conn) else {
                        continue;
                    };
                    match (&mut state.kind, channel) {
                        (Kind::Legacy(legacy), None) => {
                            legacy
                                .decoder
                                .expire(now, &mut legacy.budget, &mut self.timers)
                        }
                        (Kind::Multiplexed(mux), Some(channel_id)) => {
                            if let Some(channel) = mux.channels.get_mut(&channel_id) {
                                channel
                                    .decoder
                                    .expire(now, &mut mux.budget, &mut self.timers);
                            }
                        }
                        _ => {}
                    }
                }
                Timer::Hold(key) => {
                    let Some(path) = self.paths.get_mut(key) else {
                        continue;
                    };
                    for conn in path.hold.expire(&mut self.sockets, &mut self.timers) {
                        if let Some(state) = self.conns.get_mut(&conn) {
                            state.overflow(Overflow::Server, out);
                        }
                    }
                }
                Timer::Warm(key) => self.paths.cooled(key, out),
            }
        }
    }

    /// The host no longer keeps the current generation of `path_id` for others (see
    /// [`Outbox::keeps`]) as of `now`: with no client here, it is kept warm or stopped as after
    /// its last client left.
    pub fn vacated(&mut self, path_id: &str, now: Instant, out: &mut impl Outbox) {
        self.paths.vacated(path_id, now, &mut self.timers, out);
    }

    /// The next time [`Router::expire`] has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// The path id a legacy connection's messages go to; `None` for a multiplexed connection (its
    /// channels may reach any path) or one the router does not know.
    pub fn legacy_path_id(&self, conn: ConnId) -> Option<&str> {
        match &self.conns.get(&conn)?.kind {
            Kind::Unadmitted(unadmitted) => Some(&unadmitted.path_id),
            Kind::Legacy(legacy) => self.paths.get(legacy.path).map(|path| &*path.id),
            Kind::Multiplexed(_) => None,
        }
    }

    /// Path ids in the order the paths appeared.
    pub fn path_ids(&self) -> Vec<String> {
        self.paths.ids()
    }

    /// Client ids of a path in the order they joined; empty for an unknown path.
    pub fn client_ids(&self, path_id: &str) -> Vec<String> {
        self.paths.client_ids(path_id)
    }

    pub fn stats(&self) -> Stats {
        self.paths.stats()
    }
}
