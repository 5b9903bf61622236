//! The listening socket the package owns with the `listen` option: the plane accepts on it, the
//! upgrades it answers join the hub as native connections without the JS thread, and every
//! other connection goes to Node's HTTP server.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Weak;

use connection_plane::{Intake, Upgrade};

use crate::hub::Hub;

/// TinyBase's subprotocol for multiplexed channels.
const MULTIPLEX_PROTOCOL: &str = "tinybase";

/// Where to listen for `port` on `host`: as Node's `listen` without a host, every IPv6 and IPv4
/// address, or every IPv4 one where the machine has no IPv6.
pub fn addresses(host: Option<&str>, port: u16) -> io::Result<Vec<SocketAddr>> {
    match host {
        Some(host) => Ok((host, port).to_socket_addrs()?.collect()),
        None => Ok(vec![
            SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)),
            SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)),
        ]),
    }
}

/// TinyBase's path id: the request target after its first slash, up to any query.
fn path_id_of(target: &str) -> &str {
    let path = target.split_once('/').map_or("", |(_, path)| path);
    path.split('?').next().unwrap_or(path)
}

/// Connections reach the hub through this; it does not keep the hub alive.
pub struct HubIntake(pub Weak<Hub>);

impl Intake for HubIntake {
    fn upgrade(&self, socket: TcpStream, upgrade: Upgrade) {
        if let Some(hub) = self.0.upgrade() {
            let multiplexed = upgrade.protocol.as_deref() == Some(MULTIPLEX_PROTOCOL);
            let path_id = path_id_of(&upgrade.target);
            hub.upgraded(socket, path_id, &upgrade.key, multiplexed, upgrade.response);
        }
    }

    fn hand_over(&self, socket: TcpStream) {
        if let Some(hub) = self.0.upgrade() {
            hub.for_node(socket);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::path_id_of;

    #[test]
    fn the_path_id_is_what_tinybase_reads_from_the_url() {
        assert_eq!(path_id_of("/"), "");
        assert_eq!(path_id_of("/a/b"), "a/b");
        assert_eq!(path_id_of("/a?x=/y"), "a");
        assert_eq!(path_id_of("/%20"), "%20");
    }
}
