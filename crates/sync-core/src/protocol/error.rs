//! The errors TinyBase's server reports, with the close code each one sends to the offender.

use std::fmt;

/// What overflowed, as TinyBase names it in `tinybase:15:<details>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// A payload, or a socket's outbound backlog, is over the byte limit.
    Socket,
    /// Fragment count, pending groups or fragment bytes are over their limits.
    Fragments,
    /// Too many channels, or a channel id that is too long.
    Channels,
    /// Messages held for a starting path overflowed or expired.
    Server,
}

/// Why the server turned a client away, beyond anything TinyBase does: access control and the
/// limits a server may set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The host's `authorize` denied the connection its path.
    Denied,
    /// The path already has as many clients as the server allows.
    PathFull,
    /// The connection sent more messages than the server allows per second.
    RateLimited,
}

/// An error TinyBase's server passes to `onIgnoredError`, or one of this server's refusals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncError {
    /// `tinybase:14`: a payload that is not a valid sync message.
    Message,
    /// `tinybase:15:<details>`: a limit was exceeded.
    Overflow(Overflow),
    Refused(Refusal),
}

impl SyncError {
    /// The WebSocket close code sent to the client that caused this error.
    pub fn close_code(self) -> u16 {
        match self {
            SyncError::Message => 1007,
            SyncError::Overflow(_) => 1013,
            // 1008 is the policy violation a client cannot cure by retrying; a full path may
            // have room later, which 1013 (try again later) says.
            SyncError::Refused(Refusal::Denied | Refusal::RateLimited) => 1008,
            SyncError::Refused(Refusal::PathFull) => 1013,
        }
    }
}

impl Overflow {
    fn details(self) -> &'static str {
        match self {
            Overflow::Socket => "socket",
            Overflow::Fragments => "fragments",
            Overflow::Channels => "channels",
            Overflow::Server => "server",
        }
    }
}

impl fmt::Display for SyncError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SyncError::Message => f.write_str("tinybase:14"),
            SyncError::Overflow(overflow) => write!(f, "tinybase:15:{}", overflow.details()),
            SyncError::Refused(Refusal::Denied) => f.write_str("access denied"),
            SyncError::Refused(Refusal::PathFull) => f.write_str("too many clients on this path"),
            SyncError::Refused(Refusal::RateLimited) => f.write_str("too many messages per second"),
        }
    }
}

impl std::error::Error for SyncError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_close_codes_match_tinybase() {
        assert_eq!(SyncError::Message.to_string(), "tinybase:14");
        assert_eq!(SyncError::Message.close_code(), 1007);
        let overflow = SyncError::Overflow(Overflow::Fragments);
        assert_eq!(overflow.to_string(), "tinybase:15:fragments");
        assert_eq!(overflow.close_code(), 1013);
        assert_eq!(
            SyncError::Overflow(Overflow::Server).to_string(),
            "tinybase:15:server"
        );
    }
}
