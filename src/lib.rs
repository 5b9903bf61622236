#![deny(clippy::all)]
//! tinybase-ws-server-native: TinyBase's WebSocket sync server with its relay on Rust threads.
//!
//! `binding` is the N-API surface the JS wrapper drives; `hub` joins the pure router
//! (`sync-core`) to the native connection plane (`connection-plane`), to JS and, in a cluster,
//! to the other nodes (`cluster`, wired in by `cluster_host`).

mod binding;
mod cluster_host;
mod event;
mod hub;
mod intake;
mod server_inbox;
