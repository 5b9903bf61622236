//! Where one payload goes on a path, as TinyBase's `handleMessage` and `sendToClient` decide.

use std::sync::Arc;

use super::connection::Conns;
use super::path::{Client, Path};
use super::{Outbox, Payload};
use crate::protocol::error::Overflow;
use crate::protocol::limits::{MAX_PAYLOAD_BYTES, MULTIPLE_CLIENT_ID, SERVER_CLIENT_ID};
use crate::protocol::multiplex;

/// One payload on its way: `payload` is `from\nremainder`, addressed to `to`, part of a message of
/// `message_type`.
pub(super) struct Relayed<'a> {
    pub(super) from: &'a str,
    pub(super) to: &'a str,
    pub(super) payload: &'a Payload,
    pub(super) message_type: i64,
}

/// Relays a payload to the clients of `path`: `""` is every client but the sender, `"S"` none,
/// anything else that one client, each only if its access lets it receive the message.
/// `server_message` is what the server client gets, given by the caller when
/// [`Path::server_hears`] and this completes a message.
pub(super) fn relay(
    path: &Path,
    relayed: &Relayed,
    server_message: Option<&str>,
    conns: &mut Conns,
    out: &mut impl Outbox,
) {
    let Relayed {
        from,
        to,
        payload,
        message_type,
    } = *relayed;
    if let Some(message) = server_message {
        out.to_server(path.key, message);
    }
    if to.is_empty() {
        // Channel recipients of one path usually share a channel id: wrap once for all of them.
        let mut wrapped = None;
        for (client_id, client) in &path.clients {
            if **client_id != *from && client.access.receives(message_type) {
                send(client, payload, &mut wrapped, conns, out);
            }
        }
    } else if to != SERVER_CLIENT_ID {
        if let Some(client) = path
            .clients
            .get(to)
            .filter(|client| client.access.receives(message_type))
        {
            send(client, payload, &mut None, conns, out);
        }
    }
}

/// Offers what a client relayed on `path` to other nodes, unless its addressee is here or is
/// the server client.
pub(super) fn publish(path: &Path, to: &str, forwarded: &Payload, out: &mut impl Outbox) {
    if to.is_empty() || (to != SERVER_CLIENT_ID && !path.clients.contains_key(to)) {
        out.publish(&path.id, to, forwarded);
    }
}

/// Sends to one client, wrapping for its channel, and overflows its socket if the payload is
/// too large or the socket is backpressured.
fn send(
    client: &Client,
    payload: &Payload,
    wrapped: &mut Option<(Arc<str>, Payload)>,
    conns: &mut Conns,
    out: &mut impl Outbox,
) {
    let Some(conn) = conns.get_mut(&client.conn) else {
        return;
    };
    if conn.closing {
        return;
    }
    let sent = match &client.channel {
        None => payload.len() <= MAX_PAYLOAD_BYTES && out.send(client.conn, payload).is_ok(),
        Some(channel) => {
            let size = MULTIPLE_CLIENT_ID.len() + 1 + channel.id.len() + 1 + payload.len();
            size <= MAX_PAYLOAD_BYTES && {
                let payload = match wrapped {
                    Some((channel_id, wrapped)) if *channel_id == channel.id => wrapped,
                    _ => {
                        let payload = multiplex::wrap(&channel.id, payload.as_str()).into();
                        &wrapped.insert((channel.id.clone(), payload)).1
                    }
                };
                out.send(client.conn, payload).is_ok()
            }
        }
    };
    if !sent {
        conn.overflow(Overflow::Socket, out);
    }
}
