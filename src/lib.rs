#![deny(clippy::all)]
//! N-API binding placeholder.
