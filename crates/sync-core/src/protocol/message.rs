//! Validation of a message remainder, `[requestId, messageType, body]`, exactly as TinyBase's
//! server decides whether to relay it.

use serde_json::Value;

use super::limits::UNDEFINED_MARKER;

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
    let message: Value = serde_json::from_str(remainder).ok()?;
    let [request_id, message_type, body] = message.as_array()?.as_slice() else {
        return None;
    };
    if !(request_id.is_null() || is_string(request_id)) {
        return None;
    }
    let message_type = integer(message_type)?;
    use message_type::*;
    let valid = match message_type {
        RESPONSE => is_response(body),
        GET_CONTENT_HASHES => body.as_str() == Some(""),
        CONTENT_HASHES => is_content_hashes(body),
        CONTENT_DIFF => is_mergeable(body),
        GET_TABLE_DIFF | GET_VALUE_DIFF => is_hash_tree(body, 0),
        GET_ROW_DIFF => is_hash_tree(body, 1),
        GET_CELL_DIFF => is_hash_tree(body, 2),
        _ => false,
    };
    valid.then_some(message_type)
}

fn is_string(value: &Value) -> bool {
    value.as_str().is_some_and(|s| s != UNDEFINED_MARKER)
}

fn integer(value: &Value) -> Option<i64> {
    let number = value.as_f64()?;
    (number.fract() == 0.0 && number.abs() < 9.0e15).then_some(number as i64)
}

fn is_hash(value: &Value) -> bool {
    value
        .as_f64()
        .is_some_and(|hash| hash.fract() == 0.0 && (0.0..=4_294_967_295.0).contains(&hash))
}

fn is_hash_tree(value: &Value, depth: u8) -> bool {
    value.as_object().is_some_and(|tree| {
        tree.values().all(|child| match depth {
            0 => is_hash(child),
            _ => is_hash_tree(child, depth - 1),
        })
    })
}

fn is_hlc(value: &Value) -> bool {
    value.as_str().is_some_and(|hlc| {
        hlc.is_empty()
            || (hlc.len() == 16
                && hlc
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    })
}

fn is_stamp(value: &Value, depth: u8) -> bool {
    let Some(stamp) = value.as_array() else {
        return false;
    };
    let shape_ok = match stamp.as_slice() {
        [_] => true,
        [_, hlc] => is_hlc(hlc),
        _ => false,
    };
    shape_ok
        && match depth {
            0 => true,
            _ => stamp[0]
                .as_object()
                .is_some_and(|children| children.values().all(|c| is_stamp(c, depth - 1))),
        }
}

fn is_content_hashes(body: &Value) -> bool {
    matches!(body.as_array().map(Vec::as_slice), Some([a, b]) if is_hash(a) && is_hash(b))
}

fn is_mergeable(body: &Value) -> bool {
    match body.as_array().map(Vec::as_slice) {
        Some([tables, values]) => is_stamp(tables, 3) && is_stamp(values, 1),
        Some([tables, values, one]) => {
            one.as_f64() == Some(1.0) && is_stamp(tables, 3) && is_stamp(values, 1)
        }
        _ => false,
    }
}

fn is_response(body: &Value) -> bool {
    is_content_hashes(body)
        || is_stamp(body, 3)
        || is_stamp(body, 1)
        || matches!(body.as_array().map(Vec::as_slice), Some([stamp, tree])
            if is_stamp(stamp, 3) && (is_hash_tree(tree, 0) || is_hash_tree(tree, 1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_basic_messages() {
        assert_eq!(validate(r#"[null,1,""]"#), Some(1));
        assert_eq!(validate(r#"["r",2,[1,2]]"#), Some(2));
        assert_eq!(validate(r#"["r",4,{"t":5}]"#), Some(4));
        assert_eq!(validate(r#"["r",3,[[{},""],[{},""]]]"#), Some(3));
        assert_eq!(validate(r#"["r",8,""]"#), None);
        assert_eq!(validate(r#"["r",1,"x"]"#), None);
    }
}
