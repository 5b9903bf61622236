//! A connection's outbound bytes, in the order they must reach the socket. The session queues its
//! text frames here directly; tungstenite, writing through it, queues its own frames (pongs, the
//! Close and the reply to one) behind whatever was queued before them.
//!
//! Why not tungstenite's write buffer: it is one `Vec` that every partial write drains from the
//! front, moving all that is left. A 16 MiB backlog written to a slow reader a few tens of KiB at
//! a time moved gigabytes, and each connection copied every payload into a buffer of its own. Here
//! a large payload is queued by reference (one broadcast is shared by all its recipients, never
//! copied), small frames are gathered so a burst of them still goes out in one write, and what the
//! kernel takes is only ever skipped over, never moved.
//!
//! The peer's bytes pass through it too, on their way to tungstenite, to be checked for a Close
//! whose status ws refuses or tungstenite would swap (see [`crate::close_code`]).

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use sync_core::router::Payload;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::Bytes;

use crate::close_code::{CloseCheck, Held, HeldClose, RefusedCloseCode};

/// Payloads up to this size are copied into the gather buffer: cheaper than a chunk, and an
/// iovec, of their own.
const GATHER_PAYLOAD: usize = 16 * 1024;
/// The gather buffer becomes a chunk of its own once it holds this much, so a backlog of small
/// frames is released in steps no coarser than this as the kernel takes it.
const GATHER_CHUNK: usize = 64 * 1024;
/// Room for a full chunk of gathered frames: the one that fills it may begin just short of the
/// limit.
const GATHER_CAPACITY: usize = GATHER_CHUNK + GATHER_PAYLOAD + 16;
/// Slices handed to one vectored write.
const MAX_SLICES: usize = 64;
/// How much is read from the socket at once while a message larger than tungstenite's read
/// buffer arrives: tungstenite reads at most its buffer's size a time (512 bytes), which would
/// make a 256 KiB message cost 512 reads of the socket.
const READ_AHEAD: usize = 64 * 1024;
/// First header byte of a whole text or binary message: FIN and the opcode.
const TEXT: u8 = 0x81;
const BINARY: u8 = 0x82;

/// Bytes queued whole, and the payload bytes of the frames that end in them.
struct Chunk {
    bytes: ChunkBytes,
    payload: usize,
}

enum ChunkBytes {
    /// Frames copied together; the buffer is reused once they are written.
    Gathered(Vec<u8>),
    /// A payload shared with the hub and every other recipient.
    Shared(Bytes),
}

impl std::ops::Deref for ChunkBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            ChunkBytes::Gathered(bytes) => bytes,
            ChunkBytes::Shared(bytes) => bytes,
        }
    }
}

pub(crate) struct Wire<S> {
    inner: S,
    /// Queued ahead of `gather`, oldest first.
    chunks: VecDeque<Chunk>,
    /// Bytes of the oldest chunk the kernel has taken already.
    offset: usize,
    /// The newest bytes, copied together: small frames and tungstenite's. Written from where they
    /// are, and let go once all are written.
    gather: Vec<u8>,
    /// Payload bytes of the frames that end in `gather`.
    gathered: usize,
    /// Payload bytes of frames wholly taken by the kernel since [`Wire::take_released`].
    released: usize,
    /// A written chunk's buffer, kept for the next one while a backlog lasts: a slow reader's
    /// backlog then cycles through the same few buffers instead of fresh memory for each.
    spare: Vec<u8>,
    check: CloseCheck,
    /// A Close ws refuses was held back: the next read fails with it.
    refused: Option<RefusedCloseCode>,
    /// The last byte of a Close the session answers itself, handed on once it has.
    held: Option<u8>,
    /// That Close's status and reason, until the session takes them.
    to_answer: Option<(u16, String)>,
    /// The session is past the open state: tungstenite reads every Close as it comes.
    passing: bool,
    /// Bytes read from the socket ahead of tungstenite; kept only while a large read lasts.
    ahead: Vec<u8>,
    /// The part of `ahead` read from the socket and not yet handed to tungstenite.
    ahead_unread: std::ops::Range<usize>,
    /// The last read from the socket filled all the room it had: more is likely waiting.
    streaming: bool,
}

impl<S> Wire<S> {
    pub(crate) fn new(inner: S) -> Self {
        Wire {
            inner,
            chunks: VecDeque::new(),
            offset: 0,
            gather: Vec::new(),
            gathered: 0,
            released: 0,
            spare: Vec::new(),
            check: CloseCheck::default(),
            refused: None,
            held: None,
            to_answer: None,
            passing: false,
            ahead: Vec::new(),
            ahead_unread: 0..0,
            streaming: false,
        }
    }

    /// Checks the bytes read before the socket came here, and returns those tungstenite may read.
    pub(crate) fn check_head(&mut self, mut head: Vec<u8>) -> Vec<u8> {
        if let Some(Held { readable, close }) = self.check.scan(&head) {
            self.hold(head[readable], close);
            head.truncate(readable);
        }
        head
    }

    /// Keeps the last byte of the peer's Close from tungstenite. Nothing after a Close is read,
    /// so the bytes that follow it are dropped.
    fn hold(&mut self, last: u8, close: HeldClose) {
        self.ahead_unread = 0..0;
        match close {
            HeldClose::Refused(code) => self.refused = Some(code),
            HeldClose::Answer(code, reason) => {
                self.held = Some(last);
                self.to_answer = Some((code, reason));
            }
        }
    }

    /// The status and reason of a Close held back for the session to answer, once. Until the
    /// session calls [`Wire::pass_closes`], reads wait without end: the session takes this as
    /// soon as a read has waited, so nothing needs to wake it.
    pub(crate) fn take_close_to_answer(&mut self) -> Option<(u16, String)> {
        self.to_answer.take()
    }

    /// Whether tungstenite's reader may have grown past `room` for a frame since this last said
    /// so, and now holds nothing it still needs: what it was handed ends whole messages, no Close
    /// is held back, and the session asks when a read of it has waited, so it has read them all.
    /// Its buffer stays as large as the largest frame it ever read; a frame of more than half its
    /// room can grow it, as the frame may begin after part of the room is taken.
    pub(crate) fn reader_outgrew(&mut self, room: usize) -> bool {
        let at_rest = self.check.between_messages()
            && self.held.is_none()
            && self.refused.is_none()
            && self.to_answer.is_none()
            && !self.passing;
        at_rest && self.check.take_longest() > room as u64 / 2
    }

    /// Lets tungstenite read every Close whole from now on, a held one first: it reads no more
    /// after the peer's Close, and takes any status in the reply to its own.
    pub(crate) fn pass_closes(&mut self) {
        self.passing = true;
    }

    /// Queues bytes that are not a frame: the response that completes the upgrade.
    pub(crate) fn queue_raw(&mut self, bytes: &[u8]) {
        self.gather.extend_from_slice(bytes);
    }

    /// Queues an unmasked, final text frame carrying `payload`.
    pub(crate) fn queue_text(&mut self, payload: &Payload) {
        self.queue_message(TEXT, payload.bytes());
    }

    pub(crate) fn queue_binary(&mut self, data: &Bytes) {
        self.queue_message(BINARY, data);
    }

    /// Queues one unfragmented data frame: FIN and the opcode, then the length in the fewest
    /// bytes that hold it, then the payload.
    fn queue_message(&mut self, fin_and_opcode: u8, payload: &Bytes) {
        let len = payload.len();
        self.gather.push(fin_and_opcode);
        match len {
            0..=125 => self.gather.push(len as u8),
            126..=0xFFFF => {
                self.gather.push(126);
                self.gather.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                self.gather.push(127);
                self.gather.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        if len <= GATHER_PAYLOAD {
            self.gather.extend_from_slice(payload);
            self.gathered += len;
            if self.gather.len() >= GATHER_CHUNK {
                self.close_gather();
            }
        } else {
            self.close_gather();
            self.chunks.push_back(Chunk {
                bytes: ChunkBytes::Shared(payload.clone()),
                payload: len,
            });
        }
    }

    /// Whether anything queued is still to be written.
    pub(crate) fn is_pending(&self) -> bool {
        !self.chunks.is_empty() || !self.gather.is_empty()
    }

    /// Payload bytes of the frames whose last byte the kernel has taken since the last call.
    pub(crate) fn take_released(&mut self) -> usize {
        std::mem::take(&mut self.released)
    }

    /// Turns the gathered bytes into a chunk, behind which the next ones gather.
    fn close_gather(&mut self) {
        if self.gather.is_empty() {
            return;
        }
        // Behind a backlog more is likely to follow: the next buffer is made ready for a full
        // chunk, not grown to it step by step.
        let next = match self.spare.capacity() {
            0 if self.chunks.is_empty() => Vec::new(),
            0 => Vec::with_capacity(GATHER_CAPACITY),
            _ => std::mem::take(&mut self.spare),
        };
        self.chunks.push_back(Chunk {
            bytes: ChunkBytes::Gathered(std::mem::replace(&mut self.gather, next)),
            payload: std::mem::take(&mut self.gathered),
        });
    }

    /// Skips what the kernel took, releasing each frame it finished.
    fn advance(&mut self, mut written: usize) {
        while let Some(chunk) = self.chunks.front() {
            let left = chunk.bytes.len() - self.offset;
            if written < left {
                self.offset += written;
                return;
            }
            written -= left;
            self.offset = 0;
            self.released += chunk.payload;
            if let Some(Chunk {
                bytes: ChunkBytes::Gathered(mut bytes),
                ..
            }) = self.chunks.pop_front()
            {
                bytes.clear();
                self.spare = bytes;
            }
        }
        if written == self.gather.len() {
            self.released += std::mem::take(&mut self.gathered);
            // Nothing is left to write, and most connections are idle most of the time: with
            // thousands of them, a buffer each kept for the next batch would cost more than
            // allocating one for it.
            self.gather = Vec::new();
            self.spare = Vec::new();
        } else if written > 0 {
            // Part of it taken: the rest waits as a chunk, so what is gathered next queues behind.
            self.close_gather();
            self.offset = written;
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Wire<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(code) = self.refused.take() {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, code)));
        }
        if let Some(last) = self.held {
            if !self.passing {
                // Not woken: the session answers the Close first (see `take_close_to_answer`).
                return Poll::Pending;
            }
            self.held = None;
            buf.put_slice(&[last]);
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        ready!(self.poll_read_socket(cx, buf))?;
        let Some(Held { readable, close }) = self.check.scan(&buf.filled()[before..]) else {
            return Poll::Ready(Ok(()));
        };
        if self.passing && matches!(close, HeldClose::Answer(..)) {
            return Poll::Ready(Ok(()));
        }
        self.hold(buf.filled()[before + readable], close);
        buf.set_filled(before + readable);
        if readable > 0 {
            return Poll::Ready(Ok(()));
        }
        // Nothing to hand on: an empty read would be taken for the end of the stream.
        match self.refused.take() {
            Some(code) => Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, code))),
            None => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> Wire<S> {
    /// Reads the peer's bytes into `buf`: straight from the socket, or, while a large message
    /// streams in, through `ahead`, a read of [`READ_AHEAD`] at a time.
    fn poll_read_socket(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.ahead_unread.is_empty() && self.streaming && buf.remaining() < READ_AHEAD {
            self.ahead.resize(READ_AHEAD, 0);
            let mut ahead = ReadBuf::new(&mut self.ahead);
            ready!(Pin::new(&mut self.inner).poll_read(cx, &mut ahead))?;
            let read = ahead.filled().len();
            self.streaming = read == READ_AHEAD;
            self.ahead_unread = 0..read;
        }
        if !self.ahead_unread.is_empty() {
            let start = self.ahead_unread.start;
            let end = self.ahead_unread.end.min(start + buf.remaining());
            buf.put_slice(&self.ahead[start..end]);
            self.ahead_unread.start = end;
            if self.ahead_unread.is_empty() && !self.streaming {
                // The large read is over: an idle connection keeps no room for the next one.
                self.ahead = Vec::new();
            }
            return Poll::Ready(Ok(()));
        }
        let room = buf.remaining();
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        self.streaming = room > 0 && buf.filled().len() - before == room;
        if !self.streaming {
            self.ahead = Vec::new();
        }
        Poll::Ready(Ok(()))
    }
}

/// tungstenite's writes: taken whole, to go out in turn on the next flush.
impl<S: AsyncWrite + Unpin> AsyncWrite for Wire<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.gather.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    /// Writes everything queued, as much at a time as one vectored write takes.
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        while this.is_pending() {
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let mut count = 0;
            for chunk in this.chunks.iter().take(MAX_SLICES) {
                slices[count] = IoSlice::new(&chunk.bytes);
                count += 1;
            }
            if count < MAX_SLICES && !this.gather.is_empty() {
                slices[count] = IoSlice::new(&this.gather);
                count += 1;
            }
            if let Some(front) = this.chunks.front() {
                slices[0] = IoSlice::new(&front.bytes[this.offset..]);
            }
            let written =
                ready!(Pin::new(&mut this.inner).poll_write_vectored(cx, &slices[..count]))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            this.advance(written);
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.as_mut().poll_flush(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::task::Waker;

    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;

    use super::*;

    /// A socket that takes at most `limit` bytes per write, vectored or not, for as many writes
    /// as it is allowed; it keeps all it took.
    #[derive(Clone)]
    struct Trickle {
        limit: usize,
        allowed: Arc<Mutex<usize>>,
        taken: Arc<Mutex<Vec<u8>>>,
    }

    impl Trickle {
        fn new(limit: usize, allowed: usize) -> Self {
            Trickle {
                limit,
                allowed: Arc::new(Mutex::new(allowed)),
                taken: Arc::default(),
            }
        }

        fn allow(&self, writes: usize) {
            *self.allowed.lock().unwrap() = writes;
        }
    }

    impl AsyncWrite for Trickle {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.poll_write_vectored(cx, &[IoSlice::new(buf)])
        }

        fn poll_write_vectored(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let mut allowed = self.allowed.lock().unwrap();
            if *allowed == 0 {
                return Poll::Pending;
            }
            *allowed -= 1;
            let mut taken = self.taken.lock().unwrap();
            let mut room = self.limit;
            for buf in bufs {
                let n = buf.len().min(room);
                taken.extend_from_slice(&buf[..n]);
                room -= n;
            }
            Poll::Ready(Ok(self.limit - room))
        }

        fn is_write_vectored(&self) -> bool {
            true
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// A peer whose bytes arrive in the given pieces, then end.
    struct Pieces(VecDeque<Vec<u8>>);

    impl AsyncRead for Pieces {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            if let Some(piece) = self.0.pop_front() {
                buf.put_slice(&piece);
            }
            Poll::Ready(Ok(()))
        }
    }

    /// A peer with all its bytes waiting, each read handed as many as it has room for.
    struct Waiting {
        bytes: Vec<u8>,
        at: usize,
        reads: usize,
    }

    impl AsyncRead for Waiting {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            self.reads += 1;
            let end = self.bytes.len().min(self.at + buf.remaining());
            buf.put_slice(&self.bytes[self.at..end]);
            self.at = end;
            Poll::Ready(Ok(()))
        }
    }

    #[test]
    fn a_large_message_is_read_from_the_socket_a_large_piece_at_a_time() {
        let message: Vec<u8> = (0..256 * 1024).map(|i| (i % 251) as u8).collect();
        let mut wire = Wire::new(Waiting {
            bytes: message.clone(),
            at: 0,
            reads: 0,
        });
        let mut cx = Context::from_waker(Waker::noop());
        let mut received = Vec::new();
        loop {
            // As tungstenite reads: no more than its 1 KiB buffer at a time.
            let mut bytes = [0; 1024];
            let mut buf = ReadBuf::new(&mut bytes);
            let Poll::Ready(result) = Pin::new(&mut wire).poll_read(&mut cx, &mut buf) else {
                panic!("a peer with bytes waiting made the read wait");
            };
            result.unwrap();
            if buf.filled().is_empty() {
                break;
            }
            received.extend_from_slice(buf.filled());
        }
        assert_eq!(received, message);
        // One read of 1 KiB, four of up to 64 KiB, and the one that finds the end.
        assert_eq!(wire.inner.reads, 6);
        assert_eq!(wire.ahead.capacity(), 0);
    }

    /// One read from `wire`: the bytes it gave, or `None` while it waits.
    fn read(wire: &mut Wire<Pieces>) -> Option<Vec<u8>> {
        let mut cx = Context::from_waker(Waker::noop());
        let mut bytes = [0; 64];
        let mut buf = ReadBuf::new(&mut bytes);
        match Pin::new(wire).poll_read(&mut cx, &mut buf) {
            Poll::Ready(result) => {
                result.unwrap();
                Some(buf.filled().to_vec())
            }
            Poll::Pending => None,
        }
    }

    #[test]
    fn the_last_byte_of_a_close_to_answer_waits_until_closes_pass() {
        // A masked Close with 1014 and "gw", the mask all zero.
        let close = b"\x88\x84\0\0\0\0\x03\xf6gw".to_vec();
        let (head, last) = close.split_at(close.len() - 1);
        // The last byte comes alone, so the read that brings it has nothing to give.
        let mut wire = Wire::new(Pieces(VecDeque::from([head.to_vec(), last.to_vec()])));
        assert_eq!(read(&mut wire).as_deref(), Some(head));
        assert_eq!(read(&mut wire), None);
        assert_eq!(wire.take_close_to_answer(), Some((1014, "gw".to_owned())));
        assert_eq!(wire.take_close_to_answer(), None);
        assert_eq!(read(&mut wire), None);
        wire.pass_closes();
        assert_eq!(read(&mut wire).as_deref(), Some(last));
        assert_eq!(read(&mut wire), Some(Vec::new()));

        // In one piece, with bytes after it that are never read.
        let mut piece = close.clone();
        piece.extend_from_slice(b"more");
        let mut wire = Wire::new(Pieces(VecDeque::from([piece])));
        assert_eq!(read(&mut wire).as_deref(), Some(head));
        assert_eq!(wire.take_close_to_answer(), Some((1014, "gw".to_owned())));
        assert_eq!(read(&mut wire), None);
        wire.pass_closes();
        assert_eq!(read(&mut wire).as_deref(), Some(last));
        assert_eq!(read(&mut wire), Some(Vec::new()));

        // Once closes pass, one is read as it comes.
        let mut wire = Wire::new(Pieces(VecDeque::from([close.clone()])));
        wire.pass_closes();
        assert_eq!(read(&mut wire), Some(close));
        assert_eq!(wire.take_close_to_answer(), None);
    }

    fn flushed(wire: &mut Wire<Trickle>) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        match Pin::new(wire).poll_flush(&mut cx) {
            Poll::Ready(result) => {
                result.unwrap();
                true
            }
            Poll::Pending => false,
        }
    }

    /// What tungstenite itself sends for a text frame of `payload`.
    fn encoded(payload: &str) -> Vec<u8> {
        let mut bytes = Vec::new();
        Frame::message(payload.to_owned(), OpCode::Data(Data::Text), true)
            .format(&mut bytes)
            .unwrap();
        bytes
    }

    #[test]
    fn frames_of_every_length_go_out_in_order_as_tungstenite_encodes_them() {
        let socket = Trickle::new(1000, usize::MAX);
        let mut wire = Wire::new(socket.clone());
        let lengths = [0, 1, 125, 126, 65_535, 65_536, 100_000, 3];
        let mut expected = Vec::new();
        for (i, len) in lengths.into_iter().enumerate() {
            let payload = "p".repeat(len);
            wire.queue_text(&Payload::from(payload.clone()));
            expected.extend(encoded(&payload));
            // tungstenite's own frames keep their place among them.
            if i == 3 {
                let pong = [0x8A, 0x00];
                let mut cx = Context::from_waker(Waker::noop());
                let written = Pin::new(&mut wire).poll_write(&mut cx, &pong);
                assert!(matches!(written, Poll::Ready(Ok(2))));
                expected.extend_from_slice(&pong);
            }
        }
        assert!(wire.is_pending());
        assert!(flushed(&mut wire));
        // Compared as a whole, not printed: it is over 200 KB.
        assert!(*socket.taken.lock().unwrap() == expected);
        assert!(!wire.is_pending());
        assert_eq!(wire.take_released(), lengths.iter().sum::<usize>());
        assert_eq!(wire.take_released(), 0);
    }

    #[test]
    fn a_flushed_wire_keeps_no_buffer() {
        let mut wire = Wire::new(Trickle::new(usize::MAX, usize::MAX));
        wire.queue_text(&Payload::from("s".repeat(100)));
        assert!(wire.gather.capacity() >= 102);
        assert!(flushed(&mut wire));
        assert_eq!(wire.gather.capacity(), 0);

        // A burst of 1 MB, gathered into chunks of about 64 KiB.
        for _ in 0..100 {
            wire.queue_text(&Payload::from("m".repeat(10_000)));
        }
        assert!(wire.chunks.len() > 10);
        assert!(flushed(&mut wire));
        assert_eq!(wire.gather.capacity(), 0);
        assert_eq!(wire.spare.capacity(), 0);
    }

    #[test]
    fn a_frame_is_released_once_its_last_byte_is_taken() {
        let socket = Trickle::new(40_000, 0);
        let mut wire = Wire::new(socket.clone());
        wire.queue_text(&Payload::from("a".repeat(100_000)));
        wire.queue_text(&Payload::from("b".repeat(10)));
        assert!(!flushed(&mut wire));

        // 10 header bytes and 100 012 more: three writes, the big frame done within the third.
        let mut released = Vec::new();
        for _ in 0..3 {
            socket.allow(1);
            let done = flushed(&mut wire);
            released.push((done, wire.take_released()));
        }
        assert_eq!(released, [(false, 0), (false, 0), (true, 100_010)]);

        // Small frames are gathered into one chunk, and released as it is taken.
        for _ in 0..4 {
            wire.queue_text(&Payload::from("c".repeat(15_000)));
        }
        socket.allow(1);
        assert!(!flushed(&mut wire));
        assert_eq!(wire.take_released(), 0);
        socket.allow(1);
        assert!(flushed(&mut wire));
        assert_eq!(wire.take_released(), 60_000);
    }
}
