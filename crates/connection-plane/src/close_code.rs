//! The status of the peer's Close, checked as ws checks it. ws fails a connection whose peer
//! closes with a status it may not send (1005, 1006, 1015, anything outside 1000–1014 and
//! 3000–4999): it answers 1002 and emits an error. tungstenite instead swaps such a status for
//! 1002 and takes the Close as given, so the status is gone before the session sees it. The read
//! side therefore follows the frames the peer sends, and holds back the last byte of such a Close
//! so that tungstenite never reads it whole; the read fails with [`RefusedCloseCode`] instead.
//!
//! tungstenite also swaps a status ws takes, 1014, for 1002, in its answer and in what it
//! reports. The last byte of such a Close is held back too, but kept: the session answers the
//! Close itself, with its status and reason as ws does, and only then is the byte handed on, so
//! tungstenite reads the Close as the reply to that answer and leaves it as it is.

use std::fmt;

use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::connection::is_sendable;

const CLOSE: u8 = 0x8;
/// Set in the opcode of every control frame (Close, Ping, Pong).
const CONTROL: u8 = 0x8;
const FIN: u8 = 0x80;
const RSV: u8 = 0x70;
const MASK: u8 = 0x80;
/// A control frame's payload is at most this long.
const MAX_CONTROL_PAYLOAD: u64 = 125;
/// The longest frame header: two bytes, a 64-bit length and the mask.
const MAX_HEADER: usize = 14;

/// The peer closed with a status ws refuses; carried as the error of the failed read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RefusedCloseCode(pub(crate) u16);

impl fmt::Display for RefusedCloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid status code {}", self.0)
    }
}

impl std::error::Error for RefusedCloseCode {}

/// A Close whose last byte tungstenite may not read yet, found in bytes just read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Held {
    /// How many of those bytes tungstenite may still read: all before the Close's last byte.
    pub(crate) readable: usize,
    pub(crate) close: HeldClose,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HeldClose {
    /// ws refuses the status: the read fails in the Close's place.
    Refused(RefusedCloseCode),
    /// ws takes the Close, tungstenite would answer and report it as 1002: the session answers
    /// it with this status and reason before tungstenite reads it.
    Answer(u16, String),
}

/// Where the peer's byte stream stands, frame by frame.
#[derive(Debug)]
enum State {
    Header {
        bytes: [u8; MAX_HEADER],
        len: usize,
    },
    /// Within the payload of a frame other than a Close.
    Skip {
        left: u64,
    },
    /// Within a Close's payload: its status, then its reason.
    Close {
        mask: [u8; 4],
        read: usize,
        len: usize,
        payload: [u8; MAX_CONTROL_PAYLOAD as usize],
    },
    /// Past the peer's first Close, or a frame tungstenite rejects by its header alone: nothing
    /// after it is ever taken as a frame.
    Done,
}

impl State {
    fn header() -> Self {
        State::Header {
            bytes: [0; MAX_HEADER],
            len: 0,
        }
    }
}

#[derive(Debug)]
pub(crate) struct CloseCheck {
    state: State,
    /// Within a message sent in fragments: its first frame came, its last has not.
    fragmented: bool,
    /// The longest frame begun since [`CloseCheck::take_longest`], header included.
    longest: u64,
}

impl Default for CloseCheck {
    fn default() -> Self {
        CloseCheck {
            state: State::header(),
            fragmented: false,
            longest: 0,
        }
    }
}

impl CloseCheck {
    /// Follows `bytes`, the next ones the peer sent.
    pub(crate) fn scan(&mut self, bytes: &[u8]) -> Option<Held> {
        let mut at = 0;
        while at < bytes.len() {
            match &mut self.state {
                State::Done => return None,
                State::Skip { left } => {
                    let skipped = (*left).min((bytes.len() - at) as u64);
                    *left -= skipped;
                    // No more than what is left of `bytes`, so it fits a usize.
                    at += skipped as usize;
                    if *left == 0 {
                        self.state = State::header();
                    }
                }
                State::Header { bytes: header, len } => {
                    header[*len] = bytes[at];
                    *len += 1;
                    at += 1;
                    if header_len(&header[..*len]) == Some(*len) {
                        let (header, len) = (*header, *len);
                        self.follow(&header[..len]);
                        self.state = after_header(&header[..len]);
                    }
                }
                State::Close {
                    mask,
                    read,
                    len,
                    payload,
                } => {
                    payload[*read] = bytes[at] ^ mask[*read % 4];
                    *read += 1;
                    at += 1;
                    if read == len {
                        let close = held_close(&payload[..*len]);
                        self.state = State::Done;
                        return close.map(|close| Held {
                            readable: at - 1,
                            close,
                        });
                    }
                }
            }
        }
        None
    }
}

impl CloseCheck {
    /// Notes where a frame with `header` leaves the message it belongs to, and its length.
    fn follow(&mut self, header: &[u8]) {
        let length = header.len() as u64 + payload_len(header);
        self.longest = self.longest.max(length);
        // Control frames may come between a message's fragments and end nothing.
        if header[0] & CONTROL == 0 {
            self.fragmented = header[0] & FIN == 0;
        }
    }

    /// Whether the bytes scanned so far end whole messages: no frame and no fragmented message
    /// is under way. A reader holding only what was scanned then holds nothing it still needs.
    pub(crate) fn between_messages(&self) -> bool {
        matches!(self.state, State::Header { len: 0, .. }) && !self.fragmented
    }

    /// The longest frame begun since the last call, header included.
    pub(crate) fn take_longest(&mut self) -> u64 {
        std::mem::take(&mut self.longest)
    }
}

/// What becomes of a Close with `payload`, two bytes or more, if tungstenite may not read it as
/// it comes.
fn held_close(payload: &[u8]) -> Option<HeldClose> {
    let code = u16::from_be_bytes([payload[0], payload[1]]);
    if !is_sendable(code) {
        return Some(HeldClose::Refused(RefusedCloseCode(code)));
    }
    if CloseCode::from(code).is_allowed() {
        return None;
    }
    // A reason that is not UTF-8 fails the read in tungstenite as in ws, whatever the status.
    let reason = std::str::from_utf8(&payload[2..]).ok()?;
    Some(HeldClose::Answer(code, reason.to_owned()))
}

/// The length of the header that begins with `header`, once its first two bytes tell.
fn header_len(header: &[u8]) -> Option<usize> {
    let second = *header.get(1)?;
    let length = match second & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask = if second & MASK != 0 { 4 } else { 0 };
    Some(2 + length + mask)
}

/// The payload length a whole `header` gives.
fn payload_len(header: &[u8]) -> u64 {
    match header[1] & 0x7f {
        126 => u64::from(u16::from_be_bytes([header[2], header[3]])),
        127 => {
            let mut length = [0; 8];
            length.copy_from_slice(&header[2..10]);
            u64::from_be_bytes(length)
        }
        length => u64::from(length),
    }
}

fn after_header(header: &[u8]) -> State {
    let (first, second) = (header[0], header[1]);
    let length = payload_len(header);
    if first & 0x0f != CLOSE {
        return match length {
            0 => State::header(),
            left => State::Skip { left },
        };
    }
    // A Close without a status carries none to check; one tungstenite rejects for its framing
    // (the same frames ws rejects first) or for a one-byte payload is reported from there.
    let framed = first & FIN != 0 && first & RSV == 0 && second & MASK != 0;
    if !framed || !(2..=MAX_CONTROL_PAYLOAD).contains(&length) {
        return State::Done;
    }
    // A masked frame's header ends with its mask.
    let mut mask = [0; 4];
    mask.copy_from_slice(&header[header.len() - 4..]);
    State::Close {
        mask,
        read: 0,
        // At most 125.
        len: length as usize,
        payload: [0; MAX_CONTROL_PAYLOAD as usize],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client frame masked with `mask`.
    fn frame(first: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
        let mut frame = vec![first];
        match payload.len() {
            len @ 0..=125 => frame.push(0x80 | len as u8),
            len @ 126..=0xffff => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(len as u16).to_be_bytes());
            }
            len => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&mask);
        frame.extend(
            payload
                .iter()
                .enumerate()
                .map(|(index, byte)| byte ^ mask[index % 4]),
        );
        frame
    }

    fn close(code: u16, reason: &str) -> Vec<u8> {
        let mut payload = code.to_be_bytes().to_vec();
        payload.extend_from_slice(reason.as_bytes());
        frame(0x88, &payload, [0x12, 0x34, 0x56, 0x78])
    }

    fn refusal(readable: usize, code: u16) -> Option<Held> {
        Some(Held {
            readable,
            close: HeldClose::Refused(RefusedCloseCode(code)),
        })
    }

    #[test]
    fn whole_messages_are_told_from_frames_and_fragments_under_way() {
        let mask = [1, 2, 3, 4];
        let mut check = CloseCheck::default();
        assert!(check.between_messages());

        let text = frame(0x81, &[b'a'; 300], mask);
        assert_eq!(check.scan(&text[..100]), None);
        assert!(!check.between_messages());
        assert_eq!(check.scan(&text[100..]), None);
        assert!(check.between_messages());
        // Two length bytes and the mask.
        assert_eq!(check.take_longest(), 2 + 2 + 4 + 300);
        assert_eq!(check.take_longest(), 0);

        // A first fragment, a Ping between fragments, then the last one.
        assert_eq!(check.scan(&frame(0x01, b"part", mask)), None);
        assert!(!check.between_messages());
        assert_eq!(check.scan(&frame(0x89, b"", mask)), None);
        assert!(!check.between_messages());
        assert_eq!(check.scan(&frame(0x80, b"end", mask)), None);
        assert!(check.between_messages());
        assert_eq!(check.take_longest(), 2 + 4 + 4);
    }

    #[test]
    fn the_codes_ws_refuses_are_found_at_the_closes_last_byte() {
        for code in [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, u16::MAX] {
            let bytes = close(code, "why");
            assert_eq!(
                CloseCheck::default().scan(&bytes),
                refusal(bytes.len() - 1, code),
                "{code}"
            );
        }
        for code in [1000, 1001, 1002, 1003, 1007, 1011, 1013, 3000, 4999] {
            assert_eq!(
                CloseCheck::default().scan(&close(code, "ok")),
                None,
                "{code}"
            );
        }
    }

    #[test]
    fn a_status_ws_takes_and_tungstenite_would_swap_is_held_for_an_answer() {
        // Of every status ws takes, 1014 is the only one tungstenite does not.
        let answered: Vec<u16> = (0..=u16::MAX)
            .filter(|&code| is_sendable(code) && !CloseCode::from(code).is_allowed())
            .collect();
        assert_eq!(answered, [1014]);

        // The reason is longer than the mask, and comes in pieces.
        let reason = "Bad Gateway: upstream é";
        let bytes = close(1014, reason);
        let answer = Some(Held {
            readable: bytes.len() - 1,
            close: HeldClose::Answer(1014, reason.to_owned()),
        });
        assert_eq!(CloseCheck::default().scan(&bytes), answer);
        let mut check = CloseCheck::default();
        assert_eq!(check.scan(&bytes[..9]), None);
        assert_eq!(
            check.scan(&bytes[9..]),
            Some(Held {
                readable: bytes.len() - 10,
                close: HeldClose::Answer(1014, reason.to_owned()),
            })
        );
        assert_eq!(
            CloseCheck::default().scan(&close(1014, "")),
            Some(Held {
                readable: 7,
                close: HeldClose::Answer(1014, String::new()),
            })
        );
    }

    #[test]
    fn a_reason_that_is_not_utf8_is_left_to_tungstenite() {
        let mut payload = 1014u16.to_be_bytes().to_vec();
        payload.extend_from_slice(b"\xff\xfe");
        let bytes = frame(0x88, &payload, [9, 8, 7, 6]);
        assert_eq!(CloseCheck::default().scan(&bytes), None);
    }

    #[test]
    fn frames_before_the_close_are_skipped_however_the_bytes_are_split() {
        let mut bytes = frame(0x81, b"hello", [1, 2, 3, 4]);
        bytes.extend(frame(0x89, b"", [0; 4]));
        bytes.extend(frame(0x82, &[7; 300], [5, 6, 7, 8]));
        bytes.extend(frame(0x01, &vec![b'x'; 70_000], [0; 4]));
        bytes.extend(frame(0x80, b"end", [0; 4]));
        let start = bytes.len();
        bytes.extend(close(5000, "no"));
        assert_eq!(
            CloseCheck::default().scan(&bytes),
            refusal(bytes.len() - 1, 5000)
        );

        // One byte at a time: only the Close's last byte is held back.
        let mut check = CloseCheck::default();
        for (index, byte) in bytes.iter().enumerate() {
            let found = check.scan(std::slice::from_ref(byte));
            if index == bytes.len() - 1 {
                assert_eq!(found, refusal(0, 5000));
            } else {
                assert_eq!(found, None, "at {index}");
            }
        }
        // Split inside the Close's header.
        let mut check = CloseCheck::default();
        assert_eq!(check.scan(&bytes[..start + 1]), None);
        assert_eq!(
            check.scan(&bytes[start + 1..]),
            refusal(bytes.len() - start - 2, 5000)
        );
    }

    #[test]
    fn nothing_after_the_first_close_is_checked() {
        let mut bytes = close(1000, "");
        bytes.extend(close(999, ""));
        assert_eq!(CloseCheck::default().scan(&bytes), None);
        // Without a status: nothing to refuse.
        let mut bytes = frame(0x88, b"", [0; 4]);
        bytes.extend(close(999, ""));
        assert_eq!(CloseCheck::default().scan(&bytes), None);
    }

    #[test]
    fn a_close_tungstenite_rejects_by_its_framing_is_left_to_it() {
        let code = 999u16.to_be_bytes();
        // Unmasked, fragmented, with a reserved bit, too long, one byte long.
        let unmasked = [0x88, 0x02, code[0], code[1]];
        assert_eq!(CloseCheck::default().scan(&unmasked), None);
        for first in [0x08, 0xC8] {
            assert_eq!(
                CloseCheck::default().scan(&frame(first, &code, [0; 4])),
                None
            );
        }
        let mut long = code.to_vec();
        long.resize(126, b'x');
        assert_eq!(
            CloseCheck::default().scan(&frame(0x88, &long, [0; 4])),
            None
        );
        assert_eq!(
            CloseCheck::default().scan(&frame(0x88, &code[..1], [0; 4])),
            None
        );
    }
}
