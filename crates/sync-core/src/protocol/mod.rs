//! TinyBase's wire protocol: payload envelopes, message validation, fragments and multiplexing.

pub mod error;
pub mod fragment;
pub mod limits;
pub mod message;
pub mod multiplex;
pub mod payload;

#[cfg(test)]
mod robustness;
