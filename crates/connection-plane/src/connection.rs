//! The hub's handle on one connection: a queue into the connection's task and the backlog it keeps.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use sync_core::protocol::limits::MAX_PAYLOAD_BYTES;
use sync_core::router::{Backpressure, Payload};
use tokio::sync::{mpsc, Notify};

/// What the hub asks of a connection's task, in the order it must happen.
pub(crate) enum Command {
    Frame(Payload),
    Close(u16, String),
}

/// State the handle and the task share.
#[derive(Default)]
pub(crate) struct Shared {
    /// Payload bytes queued or handed to tungstenite but not yet accepted by the kernel: what ws
    /// calls `bufferedAmount`, and what TinyBase's backpressure rule is checked against.
    pub(crate) backlog: AtomicUsize,
    /// Terminating must not wait behind queued frames, so it bypasses the queue.
    pub(crate) terminate: Notify,
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
    commands: mpsc::UnboundedSender<Command>,
    shared: Arc<Shared>,
}

impl Connection {
    pub(crate) fn new(commands: mpsc::UnboundedSender<Command>, shared: Arc<Shared>) -> Self {
        Connection { commands, shared }
    }

    /// Queues a text frame. Err(Backpressure) when the payload is over 16 MiB or the backlog
    /// (queued + unflushed bytes) would exceed 16 MiB (TinyBase's MAX_WEBSOCKET_BUFFER_SIZE);
    /// the router then closes it with 1013. A send to a connection that has ended is dropped.
    pub fn send(&self, payload: Payload) -> Result<(), Backpressure> {
        let len = payload.len();
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
        if self.commands.send(Command::Frame(payload)).is_err() {
            self.shared.release(len);
        }
        Ok(())
    }

    /// Starts the close handshake once every frame queued before it is written. The first close
    /// wins; anything queued after it is dropped.
    pub fn close(&self, code: u16, reason: &str) {
        // An ended connection has nothing left to close.
        let _ = self.commands.send(Command::Close(code, reason.to_owned()));
    }

    /// Drops the connection at once, without a close handshake or the frames still queued; it is
    /// reported `closed` with 1006.
    pub fn terminate(&self) {
        self.shared.terminate.notify_one();
    }

    /// Bytes queued or written to tungstenite but not yet taken by the kernel.
    pub fn buffered_amount(&self) -> usize {
        self.shared.backlog.load(Ordering::Acquire)
    }
}
