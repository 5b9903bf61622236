//! One connection's task: it reads messages for the hub, writes what the hub queued, keeps the
//! heartbeat and carries out whichever ending comes first.
//!
//! Reading and writing share one tungstenite stream, so instead of splitting it (a lock on every
//! poll) a single hand-written poll serves the queue, the write, the read and the timers in turn.
//! The queue is always drained into the [`Wire`] before the socket is read: tungstenite writes its
//! reply to the peer's Close into the wire as it reads that Close, so what was due before must be
//! there by then.

use std::future::{poll_fn, Future};
use std::panic::AssertUnwindSafe;
use std::pin::{pin, Pin};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::{FutureExt, Sink, SinkExt, Stream};
use sync_core::router::ConnId;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::futures::Notified;
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Bytes, Error as WsError, Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

use crate::connection::{Command, Shared};
use crate::frame_error::FrameError;
use crate::plane::{Lifeline, PlaneState};
use crate::wire::Wire;
use crate::{
    Heartbeat, Inbound, ABNORMAL_CLOSURE, GOING_AWAY, NO_STATUS, OVERSIZED_CODE, OVERSIZED_REASON,
};

/// A close frame's payload is at most 125 bytes, two of them the code.
const MAX_CLOSE_REASON: usize = 123;

/// Everything a connection's task is started with.
pub(crate) struct Link {
    pub(crate) lifeline: Lifeline,
    pub(crate) shared: Arc<Shared>,
    pub(crate) plane: Arc<PlaneState>,
}

/// Serves one connection to its end and reports that end, also when serving it panicked. `open`
/// makes the connection's stream when the task first runs, on the runtime; an error there ends
/// the connection as closed with 1006. `response` is what the upgrade still has to answer (nothing
/// when it was answered already); it is copied to the wire and let go of before anything is read.
///
/// Every byte of the returned future is in every connection's task, for the connection's life:
/// it holds its inputs once (arguments of an `async fn` would be held again beside the block's
/// own copies), the session is served by reference rather than moved into a future of its own
/// (which would hold it twice), and nothing but the serving is awaited.
pub(crate) fn run<S, O>(
    open: O,
    response: Vec<u8>,
    head: Vec<u8>,
    link: Link,
) -> impl Future<Output = ()> + Send
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
    O: FnOnce() -> std::io::Result<S> + Send,
{
    let Link {
        mut lifeline,
        shared,
        plane,
    } = link;
    async move {
        let _queue = CloseQueue(shared.clone());
        // On an error the lifeline reports the close as it is dropped.
        let Ok(stream) = open() else {
            return;
        };
        let conn = lifeline.conn();
        let inbound = lifeline.inbound().clone();
        let mut session = Session::start(stream, response, head, conn, inbound, shared, plane);
        let served = AssertUnwindSafe(session.serve()).catch_unwind().await;
        // The socket is let go of before its end is reported, as when serving returns.
        drop(session);
        let (code, reason) = served.unwrap_or_else(|_| lost());
        lifeline.closed(code, &reason);
    }
}

/// How a connection that ended without a closing handshake is reported.
fn lost() -> (u16, String) {
    (ABNORMAL_CLOSURE, String::new())
}

/// Closes a connection's command queue when its task ends, however it ends (a runtime shutting
/// down drops it unfinished): a waker left in the queue would keep the task, and the runtime's
/// driver with its descriptors, alive for as long as the hub holds the connection.
struct CloseQueue(Arc<Shared>);

impl Drop for CloseQueue {
    fn drop(&mut self) {
        self.0.commands.close();
    }
}

/// Why a connection left its open state.
enum Exit {
    /// Gone without a handshake worth waiting for: reported 1006.
    Lost,
    /// The hub (or the plane's shutdown) closes it, or the session answers a Close tungstenite
    /// would swap for 1002 (see [`crate::close_code`]): the peer's Close then reads as the reply.
    Close(u16, String),
    /// The peer sent Close with this status.
    PeerClosed(u16, String),
    /// A message too large to read at all. Like a rejected frame, it leaves tungstenite unable
    /// to read on: the peer is told why, and whatever it still sends is discarded.
    TooLarge,
    /// A frame ws would have rejected too.
    Rejected(FrameError),
}

impl Exit {
    fn from_read_error(error: WsError) -> Exit {
        if let WsError::Capacity(_) = error {
            return Exit::TooLarge;
        }
        // Anything else (a lost connection, a reset) leaves no one to tell.
        FrameError::from_read(&error).map_or(Exit::Lost, Exit::Rejected)
    }
}

/// What woke an open connection.
enum Wake {
    Terminate,
    Shutdown,
    Close(u16, String),
    WriteFailed,
    Read(Option<Result<Message, WsError>>),
    Beat,
}

/// The session's tungstenite stream. tungstenite keeps its read buffer as large as the largest
/// frame it has read, for the connection's life: a client that once synced a large store would
/// keep that much. The stream is therefore renewed, with a buffer of the configured size, once it
/// has outgrown that and holds nothing it still needs (see [`Wire::reader_outgrew`]).
struct Renewable<S>(Option<WebSocketStream<Wire<S>>>);

impl<S: AsyncRead + AsyncWrite + Unpin> Renewable<S> {
    fn new(ws: WebSocketStream<Wire<S>>) -> Self {
        Renewable(Some(ws))
    }

    /// Renews tungstenite's state if its reader outgrew `config`'s buffer and may be let go of.
    fn renew_if_outgrown(&mut self, config: WebSocketConfig) -> bool {
        if !self.get_mut().reader_outgrew(config.read_buffer_size) {
            return false;
        }
        let Some(ws) = self.0.take() else {
            return false;
        };
        let renewed = WebSocketStream::from_raw_socket(ws.into_inner(), Role::Server, Some(config));
        self.0 = Some(
            renewed
                .now_or_never()
                .expect("a stream that skips the handshake is ready at once"),
        );
        true
    }
}

impl<S> std::ops::Deref for Renewable<S> {
    type Target = WebSocketStream<Wire<S>>;

    fn deref(&self) -> &Self::Target {
        self.0
            .as_ref()
            .expect("the stream is away only while it is renewed")
    }
}

impl<S> std::ops::DerefMut for Renewable<S> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.0
            .as_mut()
            .expect("the stream is away only while it is renewed")
    }
}

struct Session<S> {
    conn: ConnId,
    inbound: Arc<dyn Inbound>,
    ws: Renewable<S>,
    shared: Arc<Shared>,
    plane: Arc<PlaneState>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    fn start(
        stream: S,
        response: Vec<u8>,
        head: Vec<u8>,
        conn: ConnId,
        inbound: Arc<dyn Inbound>,
        shared: Arc<Shared>,
        plane: Arc<PlaneState>,
    ) -> Self {
        let mut wire = Wire::new(stream);
        wire.queue_raw(&response);
        drop(response);
        let head = wire.check_head(head);
        // With no handshake to make it is ready at its first poll: awaiting it would keep room for
        // the whole builder in the task.
        let ws = WebSocketStream::from_partially_read(wire, head, Role::Server, Some(plane.config))
            .now_or_never()
            .expect("a stream that skips the handshake is ready at once");
        Session {
            conn,
            inbound,
            ws: Renewable::new(ws),
            shared,
            plane,
        }
    }

    async fn serve(&mut self) -> (u16, String) {
        let shared = self.shared.clone();
        let plane = self.plane.clone();
        let mut terminate = pin!(shared.terminate.notified());
        let shutdown = pin!(plane.shutting_down());
        let exit = self.open(terminate.as_mut(), shutdown).await;
        self.ws.get_mut().pass_closes();
        // The closing steps are boxed: each connection runs one of them once, at its end, and held
        // inline they would make every open connection's task as large as the largest of them.
        match exit {
            Exit::Lost => lost(),
            Exit::Close(code, reason) => {
                self.stop_queue();
                if self.start_close(code, &reason).is_err() {
                    return lost();
                }
                Box::pin(self.finish(terminate)).await.unwrap_or_else(lost)
            }
            Exit::PeerClosed(code, reason) => {
                self.stop_queue();
                Box::pin(self.finish(terminate)).await;
                (code, reason)
            }
            Exit::TooLarge => {
                self.stop_queue();
                self.inbound.oversized(self.conn);
                Box::pin(self.abandon(OVERSIZED_CODE, OVERSIZED_REASON, terminate)).await;
                lost()
            }
            Exit::Rejected(error) => {
                self.stop_queue();
                let status = error.status;
                self.inbound.frame_error(self.conn, error);
                // ws closes with the bare status, and reports 1006 as the peer's Close is never
                // read.
                Box::pin(self.abandon(status, "", terminate)).await;
                lost()
            }
        }
    }

    async fn open(
        &mut self,
        mut terminate: Pin<&mut Notified<'_>>,
        mut shutdown: Pin<&mut impl Future<Output = ()>>,
    ) -> Exit {
        let mut beat = self.plane.heartbeat.map(Beat::new);
        loop {
            let wake = poll_fn(|cx| {
                self.poll_open(cx, terminate.as_mut(), shutdown.as_mut(), beat.as_mut())
            })
            .await;
            match wake {
                Wake::Terminate | Wake::WriteFailed | Wake::Read(None) => return Exit::Lost,
                Wake::Shutdown => return Exit::Close(GOING_AWAY, String::new()),
                Wake::Close(code, reason) => return Exit::Close(code, reason),
                Wake::Read(Some(Err(error))) => return Exit::from_read_error(error),
                Wake::Read(Some(Ok(message))) => {
                    if let Some(beat) = beat.as_mut() {
                        beat.heard();
                    }
                    if let Some(exit) = self.receive(message) {
                        return exit;
                    }
                }
                Wake::Beat => match beat.as_mut().map(Beat::pulse) {
                    Some(Pulse::GiveUp) => {
                        self.inbound.heartbeat_lost(self.conn);
                        return Exit::Lost;
                    }
                    Some(Pulse::Ping) => {
                        // tungstenite writes it into the wire at once, behind what is queued.
                        let ping = Message::Ping(Bytes::new());
                        if Pin::new(&mut *self.ws).start_send(ping).is_err() {
                            return Exit::Lost;
                        }
                    }
                    Some(Pulse::Quiet) | None => {}
                },
            }
        }
    }

    fn poll_open(
        &mut self,
        cx: &mut Context<'_>,
        terminate: Pin<&mut Notified<'_>>,
        shutdown: Pin<&mut impl Future<Output = ()>>,
        beat: Option<&mut Beat>,
    ) -> Poll<Wake> {
        if terminate.poll(cx).is_ready() {
            return Poll::Ready(Wake::Terminate);
        }
        if let Some(wake) = self.feed_queue(cx) {
            return Poll::Ready(wake);
        }
        // After the queue, so what was sent before the shutdown still goes out ahead of the Close.
        if shutdown.poll(cx).is_ready() {
            return Poll::Ready(Wake::Shutdown);
        }
        if self.poll_write(cx).is_err() {
            return Poll::Ready(Wake::WriteFailed);
        }
        // A paused connection is woken by the Resume command its queue receives.
        if !self.shared.paused.load(Ordering::Acquire) {
            if let Poll::Ready(read) = Pin::new(&mut *self.ws).poll_next(cx) {
                return Poll::Ready(Wake::Read(read));
            }
            if let Some((code, reason)) = self.ws.get_mut().take_close_to_answer() {
                return Poll::Ready(Wake::Close(code, reason));
            }
            // Read again at once: the renewed stream must be the one that wakes this task.
            if self.ws.renew_if_outgrown(self.plane.config) {
                if let Poll::Ready(read) = Pin::new(&mut *self.ws).poll_next(cx) {
                    return Poll::Ready(Wake::Read(read));
                }
            }
        }
        if let Some(beat) = beat {
            if beat.poll_due(cx).is_ready() {
                return Poll::Ready(Wake::Beat);
            }
        }
        Poll::Pending
    }

    /// Queues every frame due on the wire, stopping at a close request.
    fn feed_queue(&mut self, cx: &mut Context<'_>) -> Option<Wake> {
        while let Poll::Ready(Some(command)) = self.shared.commands.poll_next(cx) {
            match command {
                Command::Frame(payload) => self.ws.get_mut().queue_text(&payload),
                Command::Binary(data) => self.ws.get_mut().queue_binary(&data),
                Command::Close(code, reason) => return Some(Wake::Close(code, reason)),
                Command::Resume => {}
                Command::Ping(data) => {
                    let ping = Message::Ping(Bytes::from(data));
                    if Pin::new(&mut *self.ws).start_send(ping).is_err() {
                        return Some(Wake::WriteFailed);
                    }
                }
            }
        }
        None
    }

    /// Writes what the wire holds, if anything.
    fn poll_write(&mut self, cx: &mut Context<'_>) -> Result<(), ()> {
        if !self.ws.get_ref().is_pending() {
            return Ok(());
        }
        match self.poll_flush(cx) {
            Poll::Ready(Err(())) => Err(()),
            Poll::Ready(Ok(())) | Poll::Pending => Ok(()),
        }
    }

    /// Writes the wire out, releasing backlog as the kernel takes it. The wire is flushed
    /// directly: once tungstenite has ended the connection it no longer flushes its stream, though
    /// its last frame may still be in the wire.
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ()>> {
        let wire = self.ws.get_mut();
        let flushed = Pin::new(&mut *wire).poll_flush(cx);
        self.shared.release(wire.take_released());
        flushed.map_err(drop)
    }

    fn receive(&mut self, message: Message) -> Option<Exit> {
        match message {
            Message::Close(frame) => {
                let (code, reason) = close_status(frame);
                Some(Exit::PeerClosed(code, reason))
            }
            message => {
                self.deliver(message);
                None
            }
        }
    }

    /// Hands a data message to the hub, whatever its size: TinyBase's size rules depend on what
    /// the message is, so they are the router's to apply.
    fn deliver(&self, message: Message) {
        match message {
            Message::Text(text) => self.inbound.message(self.conn, &text),
            Message::Binary(data) => self.inbound.binary_message(self.conn, &data),
            Message::Pong(data) => self.inbound.pong(self.conn, &data),
            Message::Close(_) | Message::Ping(_) | Message::Frame(_) => {}
        }
    }

    /// Refuses further sends and drops what is still queued: nothing more can follow a Close.
    fn stop_queue(&mut self) {
        for command in self.shared.commands.close() {
            match command {
                Command::Frame(payload) => self.shared.release(payload.len()),
                Command::Binary(data) => self.shared.release(data.len()),
                Command::Close(..) | Command::Resume | Command::Ping(_) => {}
            }
        }
    }

    fn start_close(&mut self, code: u16, reason: &str) -> Result<(), ()> {
        Pin::new(&mut *self.ws)
            .start_send(close_message(code, reason))
            .map_err(drop)
    }

    /// Drives a close handshake to its end: our Close or our reply goes out after everything fed
    /// before it, and the peer's reply (if we closed) is awaited, up to the close timeout. Returns
    /// the status of the Close received during this phase, if the handshake completed. Messages
    /// that arrive before the peer's Close are still delivered and a frame ws would reject is
    /// still reported, as ws still emits both; after it tungstenite reads nothing more.
    async fn finish(&mut self, mut terminate: Pin<&mut Notified<'_>>) -> Option<(u16, String)> {
        let mut deadline = pin!(tokio::time::sleep(self.plane.close_timeout));
        let mut reply = None;
        let mut rejected = false;
        loop {
            let read = poll_fn(|cx| {
                if terminate.as_mut().poll(cx).is_ready() || deadline.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(None);
                }
                if let Poll::Ready(Err(())) = self.poll_flush(cx) {
                    return Poll::Ready(None);
                }
                Pin::new(&mut *self.ws).poll_next(cx).map(Some)
            })
            .await?;
            match read {
                Some(Ok(Message::Close(frame))) => reply = Some(close_status(frame)),
                Some(Ok(message)) => self.deliver(message),
                Some(Err(error)) => {
                    if let Some(error) = FrameError::from_read(&error) {
                        // Our Close is on its way already: ws has nothing more to send either.
                        self.inbound.frame_error(self.conn, error);
                    }
                    rejected = true;
                    break;
                }
                None => break,
            }
        }
        // tungstenite is done once its last frame is on the wire, which may not have written it
        // yet: ws too ends a closing socket only once its writes are out.
        poll_fn(|cx| {
            if terminate.as_mut().poll(cx).is_ready() || deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(());
            }
            self.poll_flush(cx).map(drop)
        })
        .await;
        if rejected {
            // What the peer sent after the bad frame is still unread: dropping the socket now
            // would reset it, and the peer could lose our Close with it.
            tokio::select! {
                () = discard_until_hangup(self.ws.get_mut()) => {}
                () = deadline => {}
                () = terminate => {}
            }
        }
        reply
    }

    /// Sends Close when tungstenite can no longer read, then discards what the peer still sends
    /// until it hangs up. Closing with unread data would reset the connection, and the peer
    /// could lose the Close along with it.
    async fn abandon(&mut self, code: u16, reason: &str, terminate: Pin<&mut Notified<'_>>) {
        let ws = &mut *self.ws;
        let drain = async move {
            if ws.send(close_message(code, reason)).await.is_ok() {
                discard_until_hangup(ws.get_mut()).await;
            }
        };
        tokio::select! {
            () = drain => {}
            () = tokio::time::sleep(self.plane.close_timeout) => {}
            () = terminate => {}
        }
    }
}

/// Ends our side and reads until the peer hangs up: closing with unread data would reset the
/// connection, and the peer could lose our Close along with it.
async fn discard_until_hangup(socket: &mut (impl AsyncRead + AsyncWrite + Unpin)) {
    if socket.shutdown().await.is_ok() {
        let mut scrap = vec![0; 16 * 1024];
        while let Ok(1..) = socket.read(&mut scrap).await {}
    }
}

fn close_status(frame: Option<CloseFrame>) -> (u16, String) {
    match frame {
        Some(frame) => (frame.code.into(), frame.reason.as_str().to_owned()),
        None => (NO_STATUS, String::new()),
    }
}

/// A Close with `code` and `reason`; with [`NO_STATUS`] an empty one, as a status that only
/// stands for its own absence must not be sent.
fn close_message(code: u16, reason: &str) -> Message {
    Message::Close((code != NO_STATUS).then(|| CloseFrame {
        code: code.into(),
        reason: Utf8Bytes::from(close_reason(reason)),
    }))
}

/// The longest prefix of `reason` that fits a close frame, cut at a character boundary.
fn close_reason(reason: &str) -> String {
    let mut end = reason.len().min(MAX_CLOSE_REASON);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason[..end].to_owned()
}

/// The heartbeat of one connection.
struct Beat {
    interval: Interval,
    heard: bool,
    silent: u32,
    allowed_misses: u32,
}

enum Pulse {
    /// The peer spoke during the last interval.
    Quiet,
    Ping,
    GiveUp,
}

impl Beat {
    fn new(heartbeat: Heartbeat) -> Self {
        let mut interval =
            tokio::time::interval_at(Instant::now() + heartbeat.interval, heartbeat.interval);
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Beat {
            interval,
            heard: false,
            silent: 0,
            allowed_misses: heartbeat.allowed_misses,
        }
    }

    fn heard(&mut self) {
        self.heard = true;
    }

    fn poll_due(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.interval.poll_tick(cx).map(drop)
    }

    fn pulse(&mut self) -> Pulse {
        if std::mem::take(&mut self.heard) {
            self.silent = 0;
            return Pulse::Quiet;
        }
        // The first silent interval sends the first ping; each one after it is a missed pong.
        self.silent += 1;
        if self.silent > self.allowed_misses {
            Pulse::GiveUp
        } else {
            Pulse::Ping
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::Mutex;

    use super::*;
    use crate::connection::Connection;
    use crate::{Payload, Settings};
    use tokio::sync::mpsc;

    /// A peer that never sends and takes every write whole, noting the size of each.
    struct Recording(Arc<Mutex<Vec<usize>>>);

    impl AsyncRead for Recording {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &mut tokio::io::ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Poll::Pending
        }
    }

    impl AsyncWrite for Recording {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.0.lock().unwrap().push(buf.len());
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    struct Closes(mpsc::UnboundedSender<u16>);

    impl Inbound for Closes {
        fn message(&self, _: ConnId, _: &str) {}

        fn oversized(&self, _: ConnId) {}

        fn frame_error(&self, _: ConnId, _: FrameError) {}

        fn closed(&self, _: ConnId, code: u16, _: &str) {
            let _ = self.0.send(code);
        }
    }

    async fn flushed(conn: &Connection) {
        for _ in 0..1_000 {
            if conn.buffered_amount() == 0 {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("the queue was never written");
    }

    #[test]
    fn a_connections_task_stays_small() {
        let plane = Arc::new(PlaneState::new(&Settings::default()));
        let (closes, _closed) = mpsc::unbounded_channel();
        let link = Link {
            lifeline: Lifeline::new(ConnId(1), Arc::new(Closes(closes)), plane.clone()),
            shared: Arc::default(),
            plane,
        };
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let socket = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        // The same future a taken-over socket's task runs, never polled.
        let open = move || tokio::net::TcpStream::from_std(socket);
        let task = run(open, Vec::new(), Vec::new(), link);
        // Every idle connection keeps this much, so growing it is a choice to make knowingly: it
        // was 2,448 bytes before the session was served by reference and its inputs held once,
        // and 1,424 before the closing steps were boxed.
        let size = std::mem::size_of_val(&task);
        assert!(size <= 1_216, "a connection's future takes {size} bytes");
    }

    #[tokio::test]
    async fn every_frame_due_goes_out_in_one_write() {
        let plane = Arc::new(PlaneState::new(&Settings::default()));
        let shared = Arc::new(Shared::default());
        let conn = Connection::new(shared.clone());
        let (closes, mut closed) = mpsc::unbounded_channel();
        let link = Link {
            lifeline: Lifeline::new(ConnId(1), Arc::new(Closes(closes)), plane.clone()),
            shared,
            plane,
        };
        let writes = Arc::new(Mutex::new(Vec::new()));

        // Queued before the task first runs: one batch.
        for i in 0..100 {
            conn.send(Payload::from(format!("frame-{i:03}"))).unwrap();
        }
        let recording = Recording(writes.clone());
        let task = tokio::spawn(run(move || Ok(recording), Vec::new(), Vec::new(), link));
        flushed(&conn).await;
        // Each frame: a two-byte header and nine bytes of text.
        assert_eq!(*writes.lock().unwrap(), [100 * 11]);

        for i in 0..10 {
            conn.send(Payload::from(format!("later-{i:03}"))).unwrap();
        }
        flushed(&conn).await;
        assert_eq!(*writes.lock().unwrap(), [100 * 11, 10 * 11]);

        conn.terminate();
        task.await.unwrap();
        assert_eq!(closed.recv().await, Some(ABNORMAL_CLOSURE));
    }

    #[tokio::test]
    async fn a_silent_peer_is_pinged_then_given_up_on() {
        let mut beat = Beat::new(Heartbeat {
            interval: std::time::Duration::from_secs(1),
            allowed_misses: 2,
        });
        assert!(matches!(beat.pulse(), Pulse::Ping));
        assert!(matches!(beat.pulse(), Pulse::Ping));
        beat.heard();
        assert!(matches!(beat.pulse(), Pulse::Quiet));
        assert!(matches!(beat.pulse(), Pulse::Ping));
        assert!(matches!(beat.pulse(), Pulse::Ping));
        assert!(matches!(beat.pulse(), Pulse::GiveUp));

        let mut impatient = Beat::new(Heartbeat {
            interval: std::time::Duration::from_secs(1),
            allowed_misses: 0,
        });
        assert!(matches!(impatient.pulse(), Pulse::GiveUp));
    }

    #[test]
    fn close_reasons_are_cut_to_fit_a_close_frame() {
        assert_eq!(close_reason("bye"), "bye");
        assert_eq!(close_reason(&"a".repeat(200)), "a".repeat(123));
        // 'é' is two bytes: 61 of them fit, the 62nd would straddle the limit.
        assert_eq!(close_reason(&"é".repeat(70)), "é".repeat(61));
    }
}
