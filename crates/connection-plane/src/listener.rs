//! A listening socket the plane accepts on itself: upgrade requests it can answer never reach
//! Node, and every other connection is handed to Node as it arrived, nothing read from it.

use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::AbortHandle;

use crate::handshake::{read_head, Head, Upgrade, UpgradeRules};
use crate::plane::PlaneState;

/// Largest request head the plane reads; a larger one (many cookies, say) is handed over.
const MAX_HEAD: usize = 8 * 1024;
/// How long an accepted connection may stay silent before it is handed over, for Node's own
/// timeouts to deal with.
const FIRST_BYTES_WAIT: Duration = Duration::from_secs(10);
/// Connections waiting to be accepted, as Node's default for `listen`.
pub const DEFAULT_BACKLOG: u32 = 511;
/// How long accepting pauses after an error that is not one connection's (out of file
/// descriptors, say), so the loop does not spin while it lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Where the connections a listening socket accepts go. Called on the plane's threads, so an
/// implementation hands work on quickly.
pub trait Intake: Send + Sync + 'static {
    /// An upgrade the plane answers: its request head has been read from `socket`, and the
    /// intake adopts it ([`crate::Plane::adopt_accepted`]) with `upgrade.response` to write.
    fn upgrade(&self, socket: std::net::TcpStream, upgrade: Upgrade);
    /// Any other connection, for Node's HTTP server: nothing has been read from it.
    fn hand_over(&self, socket: std::net::TcpStream);
}

/// A socket the plane listens on. Dropping it stops accepting and closes the socket; connections
/// already accepted carry on.
pub struct Listening {
    local_addr: SocketAddr,
    accepting: AbortHandle,
    answering: Arc<AtomicBool>,
}

impl Listening {
    /// Listens on the first of `addresses` that can be bound, with room for `backlog`
    /// connections waiting to be accepted.
    pub(crate) fn start(
        addresses: &[SocketAddr],
        backlog: u32,
        rules: UpgradeRules,
        intake: Arc<dyn Intake>,
        plane: Arc<PlaneState>,
        runtime: &tokio::runtime::Handle,
    ) -> io::Result<Listening> {
        let listener = {
            let _entered = runtime.enter();
            bind_first(addresses, backlog)?
        };
        let local_addr = listener.local_addr()?;
        let answering = Arc::new(AtomicBool::new(true));
        let judge = Arc::new(Judge {
            rules,
            answering: answering.clone(),
        });
        let accepting = runtime
            .spawn(accept(listener, judge, intake, plane))
            .abort_handle();
        Ok(Listening {
            local_addr,
            accepting,
            answering,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// From now on every connection is handed over, as when a check only the owner can make
    /// applies to every request, or the owner is closing and lets Node answer (or refuse) what
    /// still arrives meanwhile.
    pub fn stop_answering(&self) {
        self.answering.store(false, Ordering::Release);
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

fn bind_first(addresses: &[SocketAddr], backlog: u32) -> io::Result<TcpListener> {
    let mut failure = io::Error::new(io::ErrorKind::InvalidInput, "no address to listen on");
    for address in addresses {
        match bind(*address, backlog) {
            Ok(listener) => return Ok(listener),
            Err(error) => failure = error,
        }
    }
    Err(failure)
}

/// As Node binds: the address may be reused at once after an earlier server on it stopped.
fn bind(address: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    let socket = match address {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(backlog)
}

/// The rules a request is answered by, while the owner lets the plane answer any.
struct Judge {
    rules: UpgradeRules,
    answering: Arc<AtomicBool>,
}

impl Judge {
    /// The upgrade a request head calls for, if the plane answers it.
    fn read_head(&self, bytes: &[u8]) -> Option<Upgrade> {
        if !self.answering.load(Ordering::Acquire) {
            return None;
        }
        match read_head(bytes, &self.rules) {
            Head::Upgrade(upgrade) => Some(upgrade),
            Head::Partial | Head::HandOver => None,
        }
    }
}

async fn accept(
    listener: TcpListener,
    judge: Arc<Judge>,
    intake: Arc<dyn Intake>,
    plane: Arc<PlaneState>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = plane.shutting_down() => return,
        };
        match accepted {
            Ok((stream, _)) => {
                tokio::spawn(serve_request(stream, judge.clone(), intake.clone()));
            }
            Err(error) if is_one_connections(&error) => {}
            Err(_) => tokio::time::sleep(ACCEPT_BACKOFF).await,
        }
    }
}

/// An error that ended one connection before it was accepted, not the listening socket's.
fn is_one_connections(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}

/// Answers the connection's upgrade request or hands the connection over.
async fn serve_request(mut stream: TcpStream, judge: Arc<Judge>, intake: Arc<dyn Intake>) {
    // As ws sets it on every socket it upgrades, and Node's HTTP server on every connection.
    let _ = stream.set_nodelay(true);
    let upgrade = match tokio::time::timeout(FIRST_BYTES_WAIT, peek_head(&stream, &judge)).await {
        Ok(Ok(Some(upgrade))) => upgrade,
        // The peer left before it said anything.
        Ok(Ok(None)) | Ok(Err(_)) => return,
        Err(_) => None,
    };
    if let Some(upgrade) = &upgrade {
        if consume(&mut stream, upgrade.head_len).await.is_err() {
            return;
        }
    }
    let Ok(socket) = stream.into_std() else {
        return;
    };
    match upgrade {
        Some(upgrade) => intake.upgrade(socket, upgrade),
        None => intake.hand_over(socket),
    }
}

/// Waits for the connection's first bytes and judges them, leaving them on the socket: the
/// upgrade they ask for, if the plane answers it; `None` if the peer left without a word.
///
/// Only what has arrived is judged: a head still on its way is left to Node rather than waited
/// for, which is rare for a request that fits one packet. The bytes are looked at in a buffer on
/// the stack, never kept across a wait: a storm's thousands of heads waiting on the heap leave
/// it in pieces, which every idle connection then seems to cost (8 KiB heads on the heap made
/// each of 4,000 idle connections cost 11.3 KiB of resident memory rather than 6.6).
async fn peek_head(stream: &TcpStream, judge: &Judge) -> io::Result<Option<Option<Upgrade>>> {
    poll_fn(|cx| {
        let mut bytes = [0; MAX_HEAD];
        let mut head = ReadBuf::new(&mut bytes);
        let peeked = ready!(stream.poll_peek(cx, &mut head))?;
        Poll::Ready(Ok((peeked > 0).then(|| judge.read_head(head.filled()))))
    })
    .await
}

/// Takes the `len` bytes of an answered request's head off the socket.
async fn consume(stream: &mut TcpStream, mut len: usize) -> io::Result<()> {
    poll_fn(|cx| {
        while len > 0 {
            let mut bytes = [0; MAX_HEAD];
            let mut taken = ReadBuf::new(&mut bytes[..len.min(MAX_HEAD)]);
            ready!(Pin::new(&mut *stream).poll_read(cx, &mut taken))?;
            if taken.filled().is_empty() {
                return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
            }
            len -= taken.filled().len();
        }
        Poll::Ready(Ok(()))
    })
    .await
}
