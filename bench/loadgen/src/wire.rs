//! TinyBase sync payloads: `toClientId\n[requestId, messageType, body]` going
//! out, `fromClientId\n[...]` coming back.
//!
//! Everything sent here passes the servers' validation. The bookkeeping a
//! benchmark needs (who sent it, sequence number, send time) rides in the
//! request id, which the protocol only requires to be a string.

/// `ContentHashes`: a small message the server relays without looking inside
/// the body beyond validating it.
const CONTENT_HASHES: u8 = 2;
/// `ContentDiff`: carries real cell content, used for the large-message load.
const CONTENT_DIFF: u8 = 3;
const RESPONSE: u8 = 0;
const GET_CONTENT_HASHES: u8 = 1;

/// The hashes of an empty mergeable store. Announcing exactly these keeps a
/// server-side client (present when the server persists paths) doing its
/// full compare-and-merge work on every message without opening diff round
/// trips that would multiply the traffic.
const EMPTY_HASHES: &str = "[0,0]";

pub const SERVER_CLIENT_ID: &str = "S";

/// What a request id says about the message that carries it.
#[derive(Debug, PartialEq, Eq)]
pub enum Tag {
    /// A measured message: sender index, sequence number, send time in µs.
    Load {
        sender: usize,
        seq: u64,
        sent_us: u64,
    },
    /// A readiness ping every client sends before measuring, naming itself.
    Ready { sender: usize },
    /// A connection-storm greeting from a newly connected client.
    Hello,
    /// A connection-storm reply to a greeting.
    Ack,
}

pub fn load_hashes(sender: usize, seq: u64, sent_us: u64) -> String {
    format!("\n[\"l.{sender}.{seq}.{sent_us}\",{CONTENT_HASHES},{EMPTY_HASHES}]")
}

pub fn load_diff(sender: usize, seq: u64, sent_us: u64, body: &str) -> String {
    format!("\n[\"l.{sender}.{seq}.{sent_us}\",{CONTENT_DIFF},{body}]")
}

/// What a TinyBase client sends for one `setCell`: its own row of one table, the cell set to
/// `seq` under an HLC later than the sender's previous one (one ms a message, from a fixed past
/// time), the row and table unstamped as TinyBase's clients leave them.
pub fn load_cell_write(sender: usize, seq: u64, sent_us: u64) -> String {
    let stamp = sender_hlc(sender, seq);
    format!(
        "\n[\"l.{sender}.{seq}.{sent_us}\",{CONTENT_DIFF},[[{{\"t\":[{{\"r{sender}\":[{{\"c\":[{seq},\"{stamp}\"]}}]}}]}}],[{{}}],1]]"
    )
}

pub fn ready(index: usize) -> String {
    format!("\n[\"r.{index}\",{CONTENT_HASHES},{EMPTY_HASHES}]")
}

pub fn hello(index: usize) -> String {
    format!("\n[\"h.{index}\",{CONTENT_HASHES},{EMPTY_HASHES}]")
}

/// Addressed to one client only, so the reply is routed rather than broadcast.
pub fn ack(to: &str, index: usize) -> String {
    format!("{to}\n[\"a.{index}\",{CONTENT_HASHES},{EMPTY_HASHES}]")
}

/// What a well-behaved peer answers when a persisting server's own client
/// asks for the content hashes while it starts up a path.
pub fn hashes_response(to: &str, request_id: &str) -> String {
    format!("{to}\n[\"{request_id}\",{RESPONSE},{EMPTY_HASHES}]")
}

/// A `ContentDiff` body of at least `min_bytes`: one table of rows, each with
/// one string cell, every level stamped with a valid 16-character HLC.
pub fn content_diff_body(min_bytes: usize) -> String {
    const FILLER_LEN: usize = 1000;
    let mut rows = String::with_capacity(min_bytes + 2 * FILLER_LEN);
    let mut row = 0u64;
    while rows.len() < min_bytes {
        if row > 0 {
            rows.push(',');
        }
        let filler: String = (0..FILLER_LEN)
            .map(|i| ALPHABET[(row as usize * 7 + i) % 62 + 1] as char)
            .collect();
        let cell_hlc = hlc(row * 2);
        let row_hlc = hlc(row * 2 + 1);
        rows.push_str(&format!(
            "\"r{row}\":[{{\"c\":[\"{filler}\",\"{cell_hlc}\"]}},\"{row_hlc}\"]"
        ));
        row += 1;
    }
    let table_hlc = hlc(row * 2);
    format!("[[{{\"t\":[{{{rows}}},\"{table_hlc}\"]}},\"{table_hlc}\"],[{{}},\"\"]]")
}

/// TinyBase's HLC alphabet: each character encodes six bits.
const ALPHABET: &[u8; 64] = b"-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";

fn hlc(counter: u64) -> String {
    // A fixed wall-clock part, a counter, and a fixed client part: the shape
    // TinyBase produces, so a validating server sees nothing unusual.
    const TIME: u64 = 0x19_6A_5B_3C_2D;
    let mut out = String::with_capacity(16);
    for shift in (0..7).rev() {
        out.push(ALPHABET[((TIME >> (shift * 6)) & 63) as usize] as char);
    }
    for shift in (0..3).rev() {
        out.push(ALPHABET[((counter >> (shift * 6)) & 63) as usize] as char);
    }
    out.push_str("bench0");
    out
}

/// An HLC of `sender`'s own: `ms` after the fixed time, counter 0, the sender in the client part.
fn sender_hlc(sender: usize, ms: u64) -> String {
    let time = 0x19_6A_5B_3C_2D + ms;
    let mut out = String::with_capacity(16);
    for shift in (0..7).rev() {
        out.push(ALPHABET[((time >> (shift * 6)) & 63) as usize] as char);
    }
    out.push_str("---");
    for shift in (0..6).rev() {
        out.push(ALPHABET[((sender >> (shift * 6)) & 63) as usize] as char);
    }
    out
}

/// The parts of an incoming payload the load generator acts on. Parsing stops
/// after the message type, so a 256 KiB body costs no more than a small one.
pub struct Incoming<'a> {
    pub from: &'a str,
    pub request_id: Option<&'a str>,
    pub message: Option<u8>,
}

impl Incoming<'_> {
    pub fn tag(&self) -> Option<Tag> {
        let request_id = self.request_id?;
        let (kind, rest) = request_id.split_once('.')?;
        match kind {
            "l" => {
                let mut parts = rest.splitn(3, '.');
                let sender = parts.next()?.parse().ok()?;
                let seq = parts.next()?.parse().ok()?;
                let sent_us = parts.next()?.parse().ok()?;
                Some(Tag::Load {
                    sender,
                    seq,
                    sent_us,
                })
            }
            "r" => Some(Tag::Ready {
                sender: rest.parse().ok()?,
            }),
            "h" => Some(Tag::Hello),
            "a" => Some(Tag::Ack),
            _ => None,
        }
    }

    pub fn asks_for_hashes(&self) -> bool {
        self.message == Some(GET_CONTENT_HASHES)
    }
}

pub fn parse(payload: &str) -> Option<Incoming<'_>> {
    let (from, remainder) = payload.split_once('\n')?;
    let rest = remainder.trim_start().strip_prefix('[')?.trim_start();
    let (request_id, rest) = if let Some(quoted) = rest.strip_prefix('"') {
        let end = quoted.find(['"', '\\'])?;
        if quoted.as_bytes()[end] == b'\\' {
            // Escaped ids are never ours; the message still counts as received.
            return Some(Incoming {
                from,
                request_id: None,
                message: None,
            });
        }
        (Some(&quoted[..end]), &quoted[end + 1..])
    } else {
        (None, rest.strip_prefix("null")?)
    };
    let rest = rest.trim_start().strip_prefix(',')?.trim_start();
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    Some(Incoming {
        from,
        request_id,
        message: rest[..digits].parse().ok(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_messages_round_trip_their_tag() {
        let sent = format!("abc{}", load_hashes(7, 42, 123_456));
        let incoming = parse(&sent).unwrap();
        assert_eq!(incoming.from, "abc");
        assert_eq!(incoming.message, Some(CONTENT_HASHES));
        assert_eq!(
            incoming.tag(),
            Some(Tag::Load {
                sender: 7,
                seq: 42,
                sent_us: 123_456
            })
        );
    }

    #[test]
    fn readiness_pings_name_their_sender() {
        let sent = format!("peer{}", ready(5));
        assert_eq!(parse(&sent).unwrap().tag(), Some(Tag::Ready { sender: 5 }));
    }

    #[test]
    fn server_requests_are_recognised() {
        let incoming = parse("S\n[\"tx.ab12\",1,\"\"]").unwrap();
        assert!(incoming.asks_for_hashes());
        assert_eq!(incoming.tag(), None);
        assert_eq!(
            hashes_response("S", incoming.request_id.unwrap()),
            "S\n[\"tx.ab12\",0,[0,0]]"
        );
    }

    #[test]
    fn cell_writes_are_changes_with_ever_later_hlcs() {
        let write = |seq| {
            let sent = load_cell_write(3, seq, 0);
            let value: serde_json::Value = serde_json::from_str(&sent[1..]).unwrap();
            assert_eq!(value[1], 3);
            let body = &value[2];
            assert_eq!(body[2], 1);
            let cell = &body[0][0]["t"][0]["r3"][0]["c"];
            assert_eq!(cell[0], seq);
            cell[1].as_str().unwrap().to_owned()
        };
        let (first, second) = (write(7), write(8));
        assert_eq!(first.len(), 16);
        assert!(second > first);
        assert_eq!(&first[10..], &sender_hlc(3, 0)[10..]);
    }

    #[test]
    fn diff_body_is_large_json_with_valid_hlcs() {
        let body = content_diff_body(256 * 1024);
        assert!(body.len() >= 256 * 1024);
        let value: serde_json::Value = serde_json::from_str(&body).unwrap();
        let tables = &value[0];
        assert_eq!(tables[1].as_str().unwrap().len(), 16);
        let rows = tables[0]["t"][0].as_object().unwrap();
        assert!(rows.len() > 200);
        for row in rows.values() {
            assert_eq!(row[1].as_str().unwrap().len(), 16);
            assert_eq!(row[0]["c"][1].as_str().unwrap().len(), 16);
        }
        assert_eq!(value[1], serde_json::json!([{}, ""]));
    }
}
