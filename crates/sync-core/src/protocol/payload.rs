//! The `clientId\nremainder` envelope every TinyBase payload travels in.

/// Separates the client id from the rest of a payload, and the parts of a fragment.
pub const SEPARATOR: char = '\n';

/// Splits a payload at its first newline into the addressed client id and the remainder.
/// `None` means the payload has no envelope and is invalid.
pub fn split(payload: &str) -> Option<(&str, &str)> {
    payload.split_once(SEPARATOR)
}

/// Builds `clientId\nremainder`, the form a payload is forwarded in.
pub fn join(client_id: &str, remainder: &str) -> String {
    let mut payload = String::with_capacity(client_id.len() + 1 + remainder.len());
    payload.push_str(client_id);
    payload.push(SEPARATOR);
    payload.push_str(remainder);
    payload
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_the_first_newline_only() {
        assert_eq!(split("abc\n[1]\nx"), Some(("abc", "[1]\nx")));
        assert_eq!(split("\n[]"), Some(("", "[]")));
        assert_eq!(split("no envelope"), None);
    }

    #[test]
    fn join_is_the_inverse_of_split() {
        let payload = join("S", "[null,1,\"\"]");
        assert_eq!(payload, "S\n[null,1,\"\"]");
        assert_eq!(split(&payload), Some(("S", "[null,1,\"\"]")));
    }
}
