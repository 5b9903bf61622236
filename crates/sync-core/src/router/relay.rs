//! Where one payload goes on a path, as TinyBase's `handleMessage` and `sendToClient` decide.

use std::sync::Arc;

use super::connection::Conns;
use super::path::{Client, Path};
use super::{Outbox, Payload};
use crate::protocol::error::Overflow;
use crate::protocol::limits::{MAX_PAYLOAD_BYTES, MULTIPLE_CLIENT_ID, SERVER_CLIENT_ID};
use crate::protocol::multiplex;

/// Relays `forwarded` (`from\nremainder`), addressed to `to`, to the clients of `path`: `""` is
/// every client but the sender, `"S"` none, anything else that one client. `server_message` is
/// what the server client gets, given by the caller when [`Path::server_hears`] and this
/// completes a message.
pub(super) fn relay(
    path: &Path,
    from: &str,
    to: &str,
    forwarded: &Payload,
    server_message: Option<&str>,
    conns: &mut Conns,
    out: &mut impl Outbox,
) {
    if let Some(message) = server_message {
        out.to_server(path.key, message);
    }
    if to.is_empty() {
        // Channel recipients of one path usually share a channel id: wrap once for all of them.
        let mut wrapped = None;
        for (client_id, client) in &path.clients {
            if **client_id != *from {
                send(client, forwarded, &mut wrapped, conns, out);
            }
        }
    } else if to != SERVER_CLIENT_ID {
        if let Some(client) = path.clients.get(to) {
            send(client, forwarded, &mut None, conns, out);
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
