//! Per-connection state: the decoders of what a socket sends, its multiplexed channels, and
//! whether the router has already closed it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use indexmap::IndexMap;

use super::access::{Awaiting, Gate, RateLimit};
use super::ids::IdMap;
use super::timers::{Timer, Timers};
use super::{ConnId, Outbox, PathKey, Payload};
use crate::protocol::error::{Overflow, Refusal, SyncError};
use crate::protocol::fragment::{Decoded, PayloadDecoder, SocketBudget};
use crate::protocol::limits::MAX_PAYLOAD_BYTES;
use crate::protocol::message::Verdict;

pub(super) type Conns = IdMap<ConnId, Conn>;

/// A [`PayloadDecoder`] that keeps its oldest pending fragment group on the router's timers.
#[derive(Debug)]
pub(super) struct Decoder {
    inner: PayloadDecoder,
    timer: Timer,
    scheduled: Option<Instant>,
}

impl Decoder {
    pub(super) fn new(fragment_timeout: Duration, conn: ConnId, channel: Option<Arc<str>>) -> Self {
        Decoder {
            inner: PayloadDecoder::new(fragment_timeout),
            timer: Timer::Fragments { conn, channel },
            scheduled: None,
        }
    }

    pub(super) fn decode<'a>(
        &mut self,
        payload: &'a str,
        verdict: Option<Verdict>,
        budget: &mut SocketBudget,
        now: Instant,
        timers: &mut Timers,
    ) -> Decoded<'a> {
        let decoded = self.inner.decode_judged(payload, verdict, budget, now);
        timers.set(&self.timer, &mut self.scheduled, self.inner.next_deadline());
        decoded
    }

    /// Expires fragment groups after this decoder's timer fired.
    pub(super) fn expire(&mut self, now: Instant, budget: &mut SocketBudget, timers: &mut Timers) {
        // The timer that fired is no longer registered.
        self.scheduled = None;
        self.inner.expire(now, budget);
        timers.set(&self.timer, &mut self.scheduled, self.inner.next_deadline());
    }

    pub(super) fn clear(&mut self, budget: &mut SocketBudget, timers: &mut Timers) {
        self.inner.clear(budget);
        timers.set(&self.timer, &mut self.scheduled, None);
    }
}

/// A socket that is one client of one path.
#[derive(Debug)]
pub(super) struct Legacy {
    pub(super) path: PathKey,
    pub(super) decoder: Decoder,
    pub(super) budget: SocketBudget,
}

/// A legacy socket whose path the host has not granted (yet): not on any path.
#[derive(Debug)]
pub(super) struct Unadmitted {
    pub(super) path_id: Box<str>,
    /// What it sent meanwhile; `None` once it was refused.
    pub(super) awaiting: Option<Awaiting>,
}

/// One subscribed channel of a multiplexed socket.
#[derive(Debug)]
pub(super) struct Channel {
    pub(super) path: PathKey,
    pub(super) serial: u64,
    pub(super) decoder: Decoder,
}

/// A socket speaking the `tinybase` subprotocol, as TinyBase's `createMultipleServerClient`.
#[derive(Debug)]
pub(super) struct Multiplexed {
    pub(super) base_path: Box<str>,
    pub(super) negotiated: bool,
    /// Cleared by the first invalid payload; everything after it is ignored.
    pub(super) valid: bool,
    /// Subscribed channels, in subscription order, so closing leaves them in that order.
    pub(super) channels: IndexMap<Arc<str>, Channel>,
    /// Subscribed channels the host has not granted (yet).
    pub(super) gates: IndexMap<Arc<str>, Gate>,
    /// Channels not yet released: the subscribed ones and those whose path is still stopping.
    pub(super) resources: usize,
    /// The generations of unsubscribed channels that are still stopping.
    pub(super) releasing: Vec<PathKey>,
    pub(super) budget: SocketBudget,
    pub(super) next_serial: u64,
}

impl Multiplexed {
    pub(super) fn new(base_path: &str) -> Self {
        Multiplexed {
            base_path: base_path.into(),
            negotiated: false,
            valid: true,
            channels: IndexMap::new(),
            gates: IndexMap::new(),
            resources: 0,
            releasing: Vec::new(),
            budget: SocketBudget::default(),
            next_serial: 0,
        }
    }

    /// The path a channel is relayed on.
    pub(super) fn path_id(&self, channel_id: &str) -> String {
        if self.base_path.is_empty() {
            channel_id.to_owned()
        } else {
            format!("{}/{channel_id}", self.base_path)
        }
    }

    pub(super) fn clear_decoders(&mut self, timers: &mut Timers) {
        for channel in self.channels.values_mut() {
            channel.decoder.clear(&mut self.budget, timers);
        }
    }
}

#[derive(Debug)]
pub(super) enum Kind {
    Unadmitted(Unadmitted),
    Legacy(Legacy),
    /// Boxed: it is several times a legacy socket's size, and every entry of the connection table
    /// is as large as the largest kind.
    Multiplexed(Box<Multiplexed>),
}

#[derive(Debug)]
pub(super) struct Conn {
    pub(super) id: ConnId,
    /// The `sec-websocket-key`: the client id on every path this socket is on.
    pub(super) client_id: Arc<str>,
    /// The router asked the host to close it: nothing more is sent or reported as an overflow,
    /// as TinyBase checks `readyState == OPEN`.
    pub(super) closing: bool,
    /// The router refused it (denied, or over its message rate): what it sends is dropped.
    pub(super) muted: bool,
    /// Started by its first message, when the server limits messages per second.
    pub(super) rate: Option<RateLimit>,
    pub(super) kind: Kind,
}

impl Conn {
    /// TinyBase's `overflowClient`: reports and closes an open socket.
    pub(super) fn overflow(&mut self, overflow: Overflow, out: &mut impl Outbox) {
        if !self.closing {
            let error = SyncError::Overflow(overflow);
            out.report(error);
            self.close(error, out);
        }
    }

    /// TinyBase's `createInvalidPayloadHandler`, whose callers make sure it runs once per
    /// socket: the report is made even if the socket is already closing.
    pub(super) fn invalid(&mut self, error: SyncError, out: &mut impl Outbox) {
        out.report(error);
        if !self.closing {
            self.close(error, out);
        }
    }

    /// Turns the socket away: from now on what it sends is dropped, and it is closed. Only a
    /// denial goes unreported: the host made it.
    pub(super) fn refuse(&mut self, refusal: Refusal, out: &mut impl Outbox) {
        self.muted = true;
        if !self.closing {
            let error = SyncError::Refused(refusal);
            if refusal != Refusal::Denied {
                out.report(error);
            }
            self.close(error, out);
        }
    }

    fn close(&mut self, error: SyncError, out: &mut impl Outbox) {
        self.closing = true;
        out.close(self.id, error.close_code(), &error.to_string());
    }

    /// Sends a payload that is already in its final form, closing the socket if it is too large
    /// or the socket is backpressured.
    pub(super) fn send(&mut self, payload: &Payload, out: &mut impl Outbox) {
        if !self.closing
            && (payload.len() > MAX_PAYLOAD_BYTES || out.send(self.id, payload).is_err())
        {
            self.overflow(Overflow::Socket, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Kind, Legacy};

    /// Thousands of legacy sockets each pay for the largest kind in the connection table.
    #[test]
    fn a_connection_takes_no_more_room_than_a_legacy_socket_needs() {
        let room = std::mem::size_of::<Legacy>() + std::mem::size_of::<usize>();
        assert!(std::mem::size_of::<Kind>() <= room);
    }
}
