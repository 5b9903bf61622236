//! How a legacy connection or a channel gets onto its path: asking the host when it authorizes
//! clients, waiting for its decision, and checking the path's client limit.

use std::sync::Arc;
use std::time::Instant;

use super::access::{Access, AuthRequest, Awaiting, Decision, Dropped, Gate};
use super::connection::{Channel, Conn, Decoder, Kind, Legacy};
use super::path::{ChannelRef, Client};
use super::{ConnId, Outbox, Router};
use crate::protocol::error::{Overflow, Refusal, SyncError};
use crate::protocol::fragment::SocketBudget;
use crate::protocol::multiplex::{self, Control};

impl Router {
    fn ticket(&mut self) -> u64 {
        self.next_ticket += 1;
        self.next_ticket
    }

    /// A legacy connection was opened: it joins its path now, or once the host has decided.
    pub(super) fn ask_legacy(&mut self, conn: ConnId, out: &mut impl Outbox) {
        if !self.config.limits.authorizing {
            self.admit(conn, Access::Write, out);
            return;
        }
        let ticket = self.ticket();
        let Some(Conn {
            client_id,
            kind: Kind::Unadmitted(unadmitted),
            ..
        }) = self.conns.get_mut(&conn)
        else {
            return;
        };
        unadmitted.awaiting = Some(Awaiting::new(ticket));
        out.authorize(AuthRequest {
            ticket,
            conn,
            path_id: &unadmitted.path_id,
            client_id,
            channel_id: None,
        });
    }

    /// The host's decision for the connection or channel it was asked about with `ticket`. What
    /// the client sent meanwhile is then routed, or dropped if it was denied.
    pub fn authorized(
        &mut self,
        conn: ConnId,
        ticket: u64,
        channel_id: Option<&str>,
        decision: Decision,
        now: Instant,
        out: &mut impl Outbox,
    ) {
        match channel_id {
            None => self.decide_legacy(conn, ticket, decision, now, out),
            Some(channel_id) => self.decide_channel(conn, ticket, channel_id, decision, now, out),
        }
    }

    fn decide_legacy(
        &mut self,
        conn: ConnId,
        ticket: u64,
        decision: Decision,
        now: Instant,
        out: &mut impl Outbox,
    ) {
        let Some(Conn {
            kind: Kind::Unadmitted(unadmitted),
            ..
        }) = self.conns.get(&conn)
        else {
            return;
        };
        if unadmitted
            .awaiting
            .as_ref()
            .is_none_or(|awaiting| awaiting.ticket != ticket)
        {
            return;
        }
        match decision {
            Decision::Deny => self.refuse_unadmitted(conn, Some(Refusal::Denied), out),
            Decision::Grant(access) => {
                for payload in self.admit(conn, access, out) {
                    self.route(conn, &payload, None, now, out);
                }
            }
        }
    }

    /// Turns an unadmitted legacy connection away, dropping what it sent while it waited; one
    /// that overflowed its wait is closed as a startup hold that overflowed.
    pub(super) fn refuse_unadmitted(
        &mut self,
        conn: ConnId,
        refusal: Option<Refusal>,
        out: &mut impl Outbox,
    ) {
        let Some(state) = self.conns.get_mut(&conn) else {
            return;
        };
        if let Kind::Unadmitted(unadmitted) = &mut state.kind {
            if let Some(mut awaiting) = unadmitted.awaiting.take() {
                let dropped = awaiting.take(conn, &mut self.sockets).len();
                out.dropped(Dropped::Denied, dropped);
            }
        }
        match refusal {
            Some(refusal) => state.refuse(refusal, out),
            None => {
                state.muted = true;
                state.overflow(Overflow::Server, out);
            }
        }
    }

    /// Puts a legacy connection on its path unless the path is full; returns what it sent while
    /// it waited, to be routed now.
    fn admit(&mut self, conn: ConnId, access: Access, out: &mut impl Outbox) -> Vec<String> {
        let Some(state) = self.conns.get_mut(&conn) else {
            return Vec::new();
        };
        let Kind::Unadmitted(unadmitted) = &mut state.kind else {
            return Vec::new();
        };
        let waiting = unadmitted
            .awaiting
            .take()
            .map(|mut awaiting| awaiting.take(conn, &mut self.sockets))
            .unwrap_or_default();
        let max = self.config.limits.max_clients_per_path;
        if self.paths.is_full(&unadmitted.path_id, max) {
            out.dropped(Dropped::Denied, waiting.len());
            state.refuse(Refusal::PathFull, out);
            return Vec::new();
        }
        let client = Client {
            conn,
            channel: None,
            access,
        };
        let path = self.paths.join(
            &unadmitted.path_id,
            &state.client_id,
            client,
            &mut self.timers,
            out,
        );
        state.kind = Kind::Legacy(Legacy {
            path,
            decoder: Decoder::new(self.config.request_timeout, conn, None),
            budget: SocketBudget::default(),
        });
        waiting
    }

    /// A multiplexed socket subscribes to a channel it has not yet subscribed to, within its
    /// limits: it is acknowledged once the channel is on its path.
    pub(super) fn subscribe(&mut self, conn: ConnId, control: &Control, out: &mut impl Outbox) {
        let Control::Subscribe { channel_id, .. } = control else {
            return;
        };
        let channel_id: Arc<str> = channel_id.as_str().into();
        let reply = multiplex::reply(control);
        if self.config.limits.authorizing {
            self.ask_channel(conn, channel_id, reply, out);
        } else {
            self.admit_channel(conn, channel_id, Access::Write, reply, out);
        }
    }

    /// A channel subscribed to again before it was granted: a pending one is acknowledged, if at
    /// all, to the latest request; a denied one is asked about again.
    pub(super) fn resubscribe_gated(
        &mut self,
        conn: ConnId,
        control: &Control,
        out: &mut impl Outbox,
    ) {
        let Control::Subscribe { channel_id, .. } = control else {
            return;
        };
        let Some(Conn {
            kind: Kind::Multiplexed(mux),
            ..
        }) = self.conns.get_mut(&conn)
        else {
            return;
        };
        match mux.gates.get_full_mut(channel_id.as_str()) {
            Some((_, _, Gate::Pending { reply, .. })) => *reply = multiplex::reply(control),
            Some((_, channel_id, Gate::Denied)) => {
                let channel_id = channel_id.clone();
                self.ask_channel(conn, channel_id, multiplex::reply(control), out);
            }
            None => {}
        }
    }

    fn ask_channel(
        &mut self,
        conn: ConnId,
        channel_id: Arc<str>,
        reply: String,
        out: &mut impl Outbox,
    ) {
        let ticket = self.ticket();
        let Some(Conn {
            client_id,
            kind: Kind::Multiplexed(mux),
            ..
        }) = self.conns.get_mut(&conn)
        else {
            return;
        };
        out.authorize(AuthRequest {
            ticket,
            conn,
            path_id: &mux.path_id(&channel_id),
            client_id,
            channel_id: Some(&channel_id),
        });
        let awaiting = Awaiting::new(ticket);
        mux.gates
            .insert(channel_id, Gate::Pending { awaiting, reply });
    }

    fn decide_channel(
        &mut self,
        conn: ConnId,
        ticket: u64,
        channel_id: &str,
        decision: Decision,
        now: Instant,
        out: &mut impl Outbox,
    ) {
        let Some(Conn {
            kind: Kind::Multiplexed(mux),
            ..
        }) = self.conns.get_mut(&conn)
        else {
            return;
        };
        match mux.gates.get(channel_id) {
            Some(Gate::Pending { awaiting, .. }) if awaiting.ticket == ticket && mux.valid => {}
            _ => return,
        }
        let Some((
            channel_id,
            Gate::Pending {
                mut awaiting,
                reply,
            },
        )) = mux.gates.shift_remove_entry(channel_id)
        else {
            return;
        };
        let waiting = awaiting.take(conn, &mut self.sockets);
        let admitted = match decision {
            Decision::Deny => {
                mux.gates.insert(channel_id.clone(), Gate::Denied);
                false
            }
            Decision::Grant(access) => {
                self.admit_channel(conn, channel_id.clone(), access, reply, out)
            }
        };
        if !admitted {
            out.dropped(Dropped::Denied, waiting.len());
            return;
        }
        for payload in waiting {
            self.receive_channel(conn, &channel_id, &payload, None, now, out);
        }
    }

    /// Puts a channel on its path and acknowledges it, unless the path is full: then it stays
    /// unacknowledged, so the client's synchronizer fails as when it is denied. True if it joined.
    fn admit_channel(
        &mut self,
        conn: ConnId,
        channel_id: Arc<str>,
        access: Access,
        reply: String,
        out: &mut impl Outbox,
    ) -> bool {
        let Some(state) = self.conns.get_mut(&conn) else {
            return false;
        };
        let Kind::Multiplexed(mux) = &mut state.kind else {
            return false;
        };
        let path_id = mux.path_id(&channel_id);
        if self
            .paths
            .is_full(&path_id, self.config.limits.max_clients_per_path)
        {
            out.report(SyncError::Refused(Refusal::PathFull));
            mux.gates.insert(channel_id, Gate::Denied);
            return false;
        }
        let serial = mux.next_serial;
        mux.next_serial += 1;
        let client = Client {
            conn,
            channel: Some(ChannelRef {
                id: channel_id.clone(),
                serial,
            }),
            access,
        };
        let path = self
            .paths
            .join(&path_id, &state.client_id, client, &mut self.timers, out);
        let decoder = Decoder::new(self.config.request_timeout, conn, Some(channel_id.clone()));
        mux.channels.insert(
            channel_id,
            Channel {
                path,
                serial,
                decoder,
            },
        );
        self.acknowledge(conn, path, reply.into(), out);
        true
    }
}
