//! Healing a gap without any state on the server. TinyBase clients compare content only when
//! they start or change, so a message lost while Redis was away can leave stores apart until
//! something else changes. To close every such gap, a node-local pseudo client asks each of the
//! node's clients on a path for its content hashes (`GetContentHashes`); each answer is handed
//! to the path's other clients, on every node, and to its server client, wherever it runs, as a
//! `ContentHashes` message from the client that answered. A syncing TinyBase client that gets
//! one compares and asks that client for the diffs it lacks, which the relay routes like any
//! other message. Done on every node, every store ends up with what any client's store of the
//! path has, whatever Redis kept.

use serde_json::value::RawValue;

use crate::node::NodeId;

const RESPONSE: i64 = 0;
const GET_CONTENT_HASHES: i64 = 1;
const CONTENT_HASHES: i64 = 2;

/// The node's pseudo client: its id and its one request.
#[derive(Debug, Clone)]
pub struct Resync {
    client_id: String,
    request_id: String,
}

impl Resync {
    pub fn new(node: NodeId) -> Resync {
        // No sec-websocket-key (24 base64 characters) can look like this.
        Resync {
            client_id: format!("cluster:{node}"),
            request_id: format!("cluster-resync:{node}"),
        }
    }

    /// The pseudo client's id: answers addressed to it never leave the node.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The payload that asks a client for its content hashes, as the relay forwards it.
    pub fn request(&self) -> String {
        format!(
            "{}\n[{},{GET_CONTENT_HASHES},\"\"]",
            self.client_id,
            serde_json::Value::from(self.request_id.as_str())
        )
    }

    /// Turns a client's answer to [`Resync::request`] (`payload`, from `from`) into the
    /// `ContentHashes` message to hand to the path's other clients, as the relay forwards it.
    /// `None` for anything else.
    pub fn offer(&self, from: &str, payload: &str) -> Option<String> {
        let (_, remainder) = payload.split_once('\n')?;
        let (request_id, kind, hashes): (Option<String>, i64, &RawValue) =
            serde_json::from_str(remainder).ok()?;
        (kind == RESPONSE && request_id.as_deref() == Some(&self.request_id))
            .then(|| format!("{from}\n[null,{CONTENT_HASHES},{}]", hashes.get()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resync() -> Resync {
        Resync::new(NodeId::from_bytes([1; NodeId::BYTES]))
    }

    #[test]
    fn the_request_is_a_get_content_hashes_from_the_pseudo_client() {
        let resync = resync();
        let request = resync.request();
        let (from, remainder) = request.split_once('\n').unwrap();
        assert_eq!(from, resync.client_id());
        let (id, kind, body): (String, i64, String) = serde_json::from_str(remainder).unwrap();
        assert!(id.starts_with("cluster-resync:"));
        assert_eq!((kind, body.as_str()), (GET_CONTENT_HASHES, ""));
    }

    #[test]
    fn an_answer_becomes_content_hashes_from_the_client_that_answered() {
        let resync = resync();
        let answer = format!(
            "{}\n[\"{}\",0,[123,456]]",
            resync.client_id(),
            resync.request_id
        );
        assert_eq!(
            resync.offer("alice", &answer).as_deref(),
            Some("alice\n[null,2,[123,456]]")
        );
    }

    #[test]
    fn anything_but_an_answer_to_its_request_is_left_alone() {
        let resync = resync();
        let to = resync.client_id().to_owned();
        for payload in [
            format!("{to}\n[\"other\",0,[1,2]]"),
            format!("{to}\n[\"{}\",3,[1,2]]", resync.request_id),
            format!("{to}\n[null,0,[1,2]]"),
            format!("{to}\nnot json"),
            "no newline".to_owned(),
        ] {
            assert_eq!(resync.offer("alice", &payload), None, "{payload}");
        }
    }
}
