#![deny(clippy::all)]
//! tinybase-ws-server-native: TinyBase's WebSocket sync server with its relay on Rust threads.
//!
//! `binding` is the N-API surface the JS wrapper drives; `hub` joins the pure router
//! (`sync-core`) to the native connection plane (`connection-plane`) and to JS.

mod binding;
mod event;
mod hub;
