//! The TinyBase WebSocket sync protocol and the relay router, as pure logic.
//!
//! Nothing here touches sockets, threads or N-API: the binding crate feeds payloads in and carries
//! the router's effects out, so every rule can be unit-tested on its own.

pub mod changes;
pub mod protocol;
pub mod router;
