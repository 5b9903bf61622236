//! The hub's handle on one connection: a queue into the connection's task and the backlog it keeps.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use sync_core::protocol::limits::MAX_PAYLOAD_BYTES;
use sync_core::router::{Backpressure, Payload};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Bytes;

use crate::commands::Commands;
use crate::NO_STATUS;

/// What the hub asks of a connection's task, in the order it must happen.
pub(crate) enum Command {
    Frame(Payload),
    Binary(Bytes),
    Close(u16, String),
    /// Wakes the task to read again after [`Connection::resume_reading`].
    Resume,
    Ping(Vec<u8>),
}

/// State the handle and the task share.
#[derive(Default)]
pub(crate) struct Shared {
    /// What the task is asked to do, in order.
    pub(crate) commands: Commands,
    /// Payload bytes queued or on the connection's wire but not yet accepted by the kernel: what ws
    /// calls `bufferedAmount`, and what TinyBase's backpressure rule is checked against.
    pub(crate) backlog: AtomicUsize,
    /// Terminating must not wait behind queued frames, so it bypasses the queue.
    pub(crate) terminate: Notify,
    /// While set, the task reads nothing more from the peer: its data waits in the kernel, and
    /// TCP flow control pushes back on the peer.
    pub(crate) paused: AtomicBool,
}

impl Shared {
    pub(crate) fn release(&self, bytes: usize) {
        if bytes > 0 {
            self.backlog.fetch_sub(bytes, Ordering::AcqRel);
        }
    }
}

/// A handle on one adopted connection. Cheap to clone; every clone feeds the same queue.
#[derive(Clone)]
pub struct Connection {
    shared: Arc<Shared>,
}

impl Connection {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Connection { shared }
    }

    /// Queues a text frame. Err(Backpressure) when the payload is over 16 MiB or the backlog
    /// (queued + unflushed bytes) would exceed 16 MiB (TinyBase's MAX_WEBSOCKET_BUFFER_SIZE);
    /// the router then closes it with 1013. A send to a connection that has ended is dropped.
    pub fn send(&self, payload: Payload) -> Result<(), Backpressure> {
        self.queue(payload.len(), Command::Frame(payload))
    }

    /// Queues a binary frame, under the same limits as [`Connection::send`].
    pub fn send_binary(&self, data: Bytes) -> Result<(), Backpressure> {
        self.queue(data.len(), Command::Binary(data))
    }

    fn queue(&self, len: usize, frame: Command) -> Result<(), Backpressure> {
        if len > MAX_PAYLOAD_BYTES {
            return Err(Backpressure);
        }
        self.shared
            .backlog
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |backlog| {
                let total = backlog + len;
                (total <= MAX_PAYLOAD_BYTES).then_some(total)
            })
            .map_err(|_| Backpressure)?;
        if self.shared.commands.send(frame).is_err() {
            self.shared.release(len);
        }
        Ok(())
    }

    /// Starts the close handshake once every frame queued before it is written. The first close
    /// wins; anything queued after it is dropped. [`NO_STATUS`] sends a Close without a status (and
    /// so without a reason), as ws's `close()` does when given no code. Any other code that may
    /// not appear on the wire is refused, as ws's `close()` throws for it.
    pub fn close(&self, code: u16, reason: &str) -> Result<(), InvalidCloseCode> {
        if code != NO_STATUS && !is_sendable(code) {
            return Err(InvalidCloseCode(code));
        }
        // An ended connection has nothing left to close.
        let _ = self
            .shared
            .commands
            .send(Command::Close(code, reason.to_owned()));
        Ok(())
    }

    /// Drops the connection at once, without a close handshake or the frames still queued; it is
    /// reported `closed` with 1006.
    pub fn terminate(&self) {
        self.shared.terminate.notify_one();
    }

    /// Sends a ping after the frames queued before it; the peer's pong reaches
    /// [`crate::Inbound::pong`].
    pub fn ping(&self, data: Vec<u8>) {
        // An ended connection has no one left to answer.
        let _ = self.shared.commands.send(Command::Ping(data));
    }

    /// Stops reading from the peer until [`Connection::resume_reading`]; what is already read is
    /// still delivered, and writing goes on.
    pub fn pause_reading(&self) {
        self.shared.paused.store(true, Ordering::Release);
    }

    /// Reads from the peer again after [`Connection::pause_reading`].
    pub fn resume_reading(&self) {
        if self.shared.paused.swap(false, Ordering::AcqRel) {
            // An ended connection has nothing left to read.
            let _ = self.shared.commands.send(Command::Resume);
        }
    }

    /// Bytes queued or on the connection's wire but not yet taken by the kernel.
    pub fn buffered_amount(&self) -> usize {
        self.shared.backlog.load(Ordering::Acquire)
    }
}

/// A close code [`Connection::close`] refused: one a peer would reject on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidCloseCode(pub u16);

impl fmt::Display for InvalidCloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is not a close code that may be sent", self.0)
    }
}

impl std::error::Error for InvalidCloseCode {}

/// The codes ws accepts in a Close frame (its `isValidStatusCode`): the defined ones but 1004
/// (reserved), 1005 and 1006 (which only stand for an absent status), 1015 (TLS failure, never
/// sent), and the registered and private ranges. Anything else makes ws fail the connection with
/// `WS_ERR_INVALID_CLOSE_CODE`.
pub(crate) fn is_sendable(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_codes_ws_accepts_on_the_wire_may_be_sent() {
        let sendable: Vec<u16> = (0..=u16::MAX).filter(|&code| is_sendable(code)).collect();
        let expected: Vec<u16> = [1000, 1001, 1002, 1003]
            .into_iter()
            .chain(1007..=1014)
            .chain(3000..=4999)
            .collect();
        assert_eq!(sendable, expected);
    }

    #[test]
    fn close_refuses_a_code_that_may_not_be_sent_and_queues_nothing() {
        let shared = Arc::new(Shared::default());
        let conn = Connection::new(shared.clone());
        for code in [0, 999, 1004, 1006, 1015, 1016, 2999, 5000, u16::MAX] {
            assert_eq!(conn.close(code, "no"), Err(InvalidCloseCode(code)));
        }
        assert!(shared.commands.close().is_empty());

        let shared = Arc::new(Shared::default());
        let conn = Connection::new(shared.clone());
        assert_eq!(conn.close(NO_STATUS, ""), Ok(()));
        assert_eq!(conn.close(4999, "ok"), Ok(()));
        let queued = shared.commands.close();
        assert!(matches!(queued[0], Command::Close(NO_STATUS, _)));
        assert!(matches!(queued[1], Command::Close(4999, _)));
        assert_eq!(queued.len(), 2);
    }
}
