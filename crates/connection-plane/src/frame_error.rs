//! The frames ws would reject, described as ws describes them. tungstenite rejects the same frames
//! but reports them in its own terms; the hub needs ws's, to raise the very error a `ws` WebSocket
//! emits (and TinyBase passes to `onIgnoredError`).

use std::fmt::Display;

use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::OpCode;
use tokio_tungstenite::tungstenite::Error as WsError;

use crate::close_code::RefusedCloseCode;

const PROTOCOL_ERROR: u16 = 1002;
const INVALID_PAYLOAD: u16 = 1007;

/// A frame the peer should not have sent. The plane closes the connection with `status` and an
/// empty reason, as ws does, and reports this through [`crate::Inbound::frame_error`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameError {
    /// ws's error code, e.g. `WS_ERR_INVALID_UTF8`.
    pub code: &'static str,
    /// ws's message, e.g. `Invalid WebSocket frame: invalid UTF-8 sequence`.
    pub message: String,
    /// The close status: 1007 for invalid UTF-8, 1002 for the rest.
    pub status: u16,
    /// ws raises a `RangeError` for every frame error but invalid UTF-8, an `Error`.
    pub range_error: bool,
}

impl FrameError {
    fn new(code: &'static str, detail: impl Display, status: u16, range_error: bool) -> Self {
        FrameError {
            code,
            message: format!("Invalid WebSocket frame: {detail}"),
            status,
            range_error,
        }
    }

    fn protocol(code: &'static str, detail: impl Display) -> Self {
        FrameError::new(code, detail, PROTOCOL_ERROR, true)
    }

    fn invalid_opcode(opcode: u8) -> Self {
        FrameError::protocol("WS_ERR_INVALID_OPCODE", format!("invalid opcode {opcode}"))
    }

    /// ws's error for what tungstenite failed a read with, if ws fails that frame too. Lost
    /// connections, messages too large to read and errors that only a client or a connection
    /// past its close can meet are not frame errors.
    ///
    /// Where tungstenite says less than ws, the likelier case is named: a reserved bit is taken
    /// for RSV1 (a client compressing without having negotiated it), and an overlong control
    /// frame for one whose length needed 16 bits (ws quotes the 7-bit length field, 126 or 127).
    pub(crate) fn from_read(error: &WsError) -> Option<FrameError> {
        let error = match error {
            // Invalid UTF-8 in a text message or in a close reason alike.
            WsError::Utf8(_) => FrameError::new(
                "WS_ERR_INVALID_UTF8",
                "invalid UTF-8 sequence",
                INVALID_PAYLOAD,
                false,
            ),
            WsError::Protocol(error) => match error {
                ProtocolError::NonZeroReservedBits => {
                    FrameError::protocol("WS_ERR_UNEXPECTED_RSV_1", "RSV1 must be clear")
                }
                ProtocolError::UnmaskedFrameFromClient => {
                    FrameError::protocol("WS_ERR_EXPECTED_MASK", "MASK must be set")
                }
                ProtocolError::FragmentedControlFrame => {
                    FrameError::protocol("WS_ERR_EXPECTED_FIN", "FIN must be set")
                }
                ProtocolError::ControlFrameTooBig => FrameError::protocol(
                    "WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH",
                    "invalid payload length 126",
                ),
                // A close frame whose payload is a single byte.
                ProtocolError::InvalidCloseSequence => FrameError::protocol(
                    "WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH",
                    "invalid payload length 1",
                ),
                ProtocolError::InvalidOpcode(opcode)
                | ProtocolError::UnknownControlFrameType(opcode)
                | ProtocolError::UnknownDataFrameType(opcode) => {
                    FrameError::invalid_opcode(*opcode)
                }
                // A continuation with no message to continue.
                ProtocolError::UnexpectedContinueFrame => FrameError::invalid_opcode(0),
                // A new text or binary message while a fragmented one is unfinished.
                ProtocolError::ExpectedFragment(data) => {
                    FrameError::invalid_opcode(OpCode::Data(*data).into())
                }
                _ => return None,
            },
            // The read side failed the read in tungstenite's place (see `close_code`).
            WsError::Io(error) => {
                let code = error.get_ref()?.downcast_ref::<RefusedCloseCode>()?;
                FrameError::protocol("WS_ERR_INVALID_CLOSE_CODE", code)
            }
            _ => return None,
        };
        Some(error)
    }
}

#[cfg(test)]
mod tests {
    use std::io::{self, Cursor, Read, Write};

    use tokio_tungstenite::tungstenite::protocol::{Role, WebSocket};

    use super::*;

    /// A client's bytes to read, and a sink for the server's replies.
    struct Wire(Cursor<Vec<u8>>);

    impl Read for Wire {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.0.read(buf)
        }
    }

    impl Write for Wire {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A masked client frame (with a zero mask, so the payload reads as it is).
    fn masked(first: u8, payload: &[u8]) -> Vec<u8> {
        let mut frame = vec![first];
        if payload.len() < 126 {
            frame.push(0x80 | payload.len() as u8);
        } else {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        }
        frame.extend_from_slice(&[0; 4]);
        frame.extend_from_slice(payload);
        frame
    }

    /// What a server reading `bytes` reports, in ws's terms.
    fn rejected(bytes: Vec<u8>) -> Option<FrameError> {
        let mut ws = WebSocket::from_raw_socket(Wire(Cursor::new(bytes)), Role::Server, None);
        loop {
            match ws.read() {
                Ok(_) => continue,
                Err(error) => return FrameError::from_read(&error),
            }
        }
    }

    fn expect(bytes: Vec<u8>, code: &str, detail: &str, status: u16) {
        let error = rejected(bytes).expect("a frame error");
        assert_eq!(
            (error.code, error.message.as_str(), error.status),
            (
                code,
                format!("Invalid WebSocket frame: {detail}").as_str(),
                status
            )
        );
        assert_eq!(error.range_error, code != "WS_ERR_INVALID_UTF8");
    }

    #[test]
    fn invalid_utf8_is_1007_and_a_plain_error() {
        let utf8 = "WS_ERR_INVALID_UTF8";
        let detail = "invalid UTF-8 sequence";
        expect(masked(0x81, b"\xff\xfe"), utf8, detail, 1007);
        // Split over two fragments, the second one invalid.
        let mut fragmented = masked(0x01, b"ok");
        fragmented.extend(masked(0x80, b"\xc3"));
        expect(fragmented, utf8, detail, 1007);
        // In a close reason.
        expect(masked(0x88, b"\x03\xe8\xff"), utf8, detail, 1007);
    }

    #[test]
    fn protocol_errors_are_1002_with_ws_codes() {
        expect(
            vec![0x81, 0x02, b'h', b'i'],
            "WS_ERR_EXPECTED_MASK",
            "MASK must be set",
            1002,
        );
        expect(
            masked(0xC1, b"hi"),
            "WS_ERR_UNEXPECTED_RSV_1",
            "RSV1 must be clear",
            1002,
        );
        expect(
            masked(0x83, b"hi"),
            "WS_ERR_INVALID_OPCODE",
            "invalid opcode 3",
            1002,
        );
        expect(
            masked(0x8B, b""),
            "WS_ERR_INVALID_OPCODE",
            "invalid opcode 11",
            1002,
        );
        expect(
            masked(0x80, b"hi"),
            "WS_ERR_INVALID_OPCODE",
            "invalid opcode 0",
            1002,
        );
        let mut interrupted = masked(0x01, b"part");
        interrupted.extend(masked(0x82, b"new"));
        expect(
            interrupted,
            "WS_ERR_INVALID_OPCODE",
            "invalid opcode 2",
            1002,
        );
        expect(
            masked(0x09, b""),
            "WS_ERR_EXPECTED_FIN",
            "FIN must be set",
            1002,
        );
        expect(
            masked(0x89, &[0; 126]),
            "WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH",
            "invalid payload length 126",
            1002,
        );
        expect(
            masked(0x88, b"\x03"),
            "WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH",
            "invalid payload length 1",
            1002,
        );
    }

    #[test]
    fn a_close_status_ws_refuses_is_1002_with_ws_code() {
        let refused = io::Error::new(io::ErrorKind::InvalidData, RefusedCloseCode(1005));
        let error = FrameError::from_read(&WsError::Io(refused)).expect("a frame error");
        assert_eq!(
            error,
            FrameError {
                code: "WS_ERR_INVALID_CLOSE_CODE",
                message: "Invalid WebSocket frame: invalid status code 1005".to_owned(),
                status: 1002,
                range_error: true,
            }
        );
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        assert_eq!(FrameError::from_read(&WsError::Io(reset)), None);
    }

    #[test]
    fn a_lost_connection_or_an_oversized_message_is_no_frame_error() {
        // The stream ends in the middle of a frame.
        assert_eq!(rejected(masked(0x81, b"cut")[..4].to_vec()), None);
        assert_eq!(
            FrameError::from_read(&WsError::Capacity(
                tokio_tungstenite::tungstenite::error::CapacityError::MessageTooLong {
                    size: 2,
                    max_size: 1
                }
            )),
            None
        );
        assert_eq!(
            FrameError::from_read(&WsError::Protocol(ProtocolError::ReceivedAfterClosing)),
            None
        );
    }
}
