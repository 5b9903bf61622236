//! Validation of a message remainder, `[requestId, messageType, body]`, exactly as TinyBase's
//! server decides whether to relay it.

/// TinyBase's message types, as numbered on the wire.
pub mod message_type {
    pub const RESPONSE: i64 = 0;
    pub const GET_CONTENT_HASHES: i64 = 1;
    pub const CONTENT_HASHES: i64 = 2;
    pub const CONTENT_DIFF: i64 = 3;
    pub const GET_TABLE_DIFF: i64 = 4;
    pub const GET_ROW_DIFF: i64 = 5;
    pub const GET_CELL_DIFF: i64 = 6;
    pub const GET_VALUE_DIFF: i64 = 7;
}

/// Returns the message type of a valid remainder, or `None` where TinyBase would reject it.
pub fn validate(remainder: &str) -> Option<i64> {
    let _ = remainder;
    todo!("protocol::message::validate")
}
