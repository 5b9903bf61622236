//! The plane: its runtime, the adoption of sockets and the orderly end of everything.

use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sync_core::router::ConnId;
use tokio::runtime::{Handle, Runtime};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::connection::{Connection, Shared};
use crate::handshake::UpgradeRules;
use crate::listener::{Intake, Listening};
use crate::session::{self, Link};
use crate::{Heartbeat, Inbound, Settings, ABNORMAL_CLOSURE};

/// How long [`Plane::shutdown_now`] waits for the runtime's threads: time enough to drop every
/// connection in the usual case, short enough not to hold up a process or worker that is exiting.
const ABORT_WAIT: Duration = Duration::from_millis(5);

/// What every connection's task needs to know of its plane.
pub(crate) struct PlaneState {
    pub(crate) config: WebSocketConfig,
    pub(crate) heartbeat: Option<Heartbeat>,
    pub(crate) close_timeout: Duration,
    shutting_down: AtomicBool,
    shutdown: Notify,
    live: Mutex<usize>,
    idle: Condvar,
}

impl PlaneState {
    pub(crate) fn new(settings: &Settings) -> Self {
        let config = WebSocketConfig::default()
            .read_buffer_size(settings.read_buffer_size)
            // tungstenite writes its own frames (pongs, closes) into the connection's wire at once,
            // so they keep their place among the frames the session queues there.
            .write_buffer_size(0)
            .max_message_size(Some(settings.max_message_size))
            .max_frame_size(Some(settings.max_message_size));
        PlaneState {
            config,
            heartbeat: settings.heartbeat,
            close_timeout: settings.close_timeout,
            shutting_down: AtomicBool::new(false),
            shutdown: Notify::new(),
            live: Mutex::new(0),
            idle: Condvar::new(),
        }
    }

    /// Resolves once the plane is shutting down, whenever the returned future was created.
    pub(crate) async fn shutting_down(&self) {
        // Creating the future registers it, so a shutdown between the check and the await is
        // still seen.
        let notified = self.shutdown.notified();
        if !self.shutting_down.load(Ordering::Acquire) {
            notified.await;
        }
    }

    fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Release);
        self.shutdown.notify_waiters();
    }

    fn live(&self) -> std::sync::MutexGuard<'_, usize> {
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until no connection is left or `deadline` passes.
    fn wait_idle(&self, deadline: Instant) {
        let mut live = self.live();
        while *live > 0 {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return;
            };
            live = self
                .idle
                .wait_timeout(live, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// Reports a connection's end exactly once and keeps the plane's count of live connections. It is
/// made before the task is spawned, so a task dropped unpolled (or dropped by a runtime shutting
/// down) still reports `closed` with 1006.
pub(crate) struct Lifeline {
    conn: ConnId,
    inbound: Arc<dyn Inbound>,
    reported: bool,
    // A field, so the count is released even if the `closed` call in `drop` panics.
    _live: Live,
}

impl Lifeline {
    pub(crate) fn new(conn: ConnId, inbound: Arc<dyn Inbound>, plane: Arc<PlaneState>) -> Self {
        Lifeline {
            conn,
            inbound,
            reported: false,
            _live: Live::new(plane),
        }
    }

    pub(crate) fn closed(&mut self, code: u16, reason: &str) {
        if !self.reported {
            self.reported = true;
            self.inbound.closed(self.conn, code, reason);
        }
    }

    pub(crate) fn conn(&self) -> ConnId {
        self.conn
    }

    pub(crate) fn inbound(&self) -> &Arc<dyn Inbound> {
        &self.inbound
    }
}

impl Drop for Lifeline {
    fn drop(&mut self) {
        self.closed(ABNORMAL_CLOSURE, "");
    }
}

struct Live(Arc<PlaneState>);

impl Live {
    fn new(plane: Arc<PlaneState>) -> Self {
        *plane.live() += 1;
        Live(plane)
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let mut live = self.0.live();
        *live -= 1;
        if *live == 0 {
            self.0.idle.notify_all();
        }
    }
}

/// A socket taken over by [`Plane::adopt`] or [`Plane::adopt_accepted`] and not yet served.
/// Dropping it instead of serving ends the connection as closed with 1006.
#[must_use = "nothing is read from an adopted socket until it is served"]
pub struct Adopted {
    socket: std::net::TcpStream,
    response: Vec<u8>,
    head: Vec<u8>,
    link: Link,
    runtime: Handle,
}

impl Adopted {
    /// For a socket whose upgrade request was read but not yet answered: `response`, the whole
    /// HTTP response that completes the upgrade, is written before any frame. Sparing the JS
    /// thread that write is most of what answering an upgrade there costs.
    pub fn answering(mut self, response: Vec<u8>) -> Self {
        self.response = response;
        self
    }

    /// `head` holds bytes already read from the socket past its upgrade request, replayed before
    /// anything read from now on.
    fn replaying(mut self, head: Vec<u8>) -> Self {
        self.head = head;
        self
    }

    /// Starts the connection's task. A socket the reactor refuses ends as closed with 1006.
    pub fn serve(self) {
        let Adopted {
            socket,
            response,
            head,
            link,
            runtime,
        } = self;
        let open = move || {
            socket.set_nonblocking(true)?;
            tokio::net::TcpStream::from_std(socket)
        };
        runtime.spawn(session::run(open, response, head, link));
    }
}

/// Runs adopted connections on a multi-thread tokio runtime it owns.
pub struct Plane {
    /// Taken when the plane stops, by [`Plane::shutdown`], [`Plane::shutdown_now`] or on drop.
    runtime: Option<Runtime>,
    state: Arc<PlaneState>,
    grace: Duration,
}

impl Plane {
    /// Fails when the runtime cannot be built, or the heartbeat interval is zero.
    pub fn new(settings: Settings) -> io::Result<Plane> {
        if settings
            .heartbeat
            .is_some_and(|heartbeat| heartbeat.interval.is_zero())
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "heartbeat interval must not be zero",
            ));
        }
        #[cfg(unix)]
        crate::fd_table::reserve(settings.reserved_fds);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(settings.worker_threads.max(1))
            .thread_name(settings.thread_name.clone())
            .enable_io()
            .enable_time()
            .build()?;
        Ok(Plane {
            runtime: Some(runtime),
            state: Arc::new(PlaneState::new(&settings)),
            grace: settings.shutdown_grace,
        })
    }

    /// Takes over an upgraded socket. The fd is duplicated (close-on-exec), so the caller keeps
    /// its own fd and closes it when it likes; `head` holds the bytes already read from the
    /// socket past the upgrade request, replayed before anything read from now on.
    ///
    /// Nothing is read until [`Adopted::serve`]: the caller first puts the [`Connection`] where
    /// the connection's first messages will look for it, and then starts serving outside any
    /// lock those messages take. Only the duplicate is made on the calling thread; registering
    /// the socket with the runtime's reactor happens in the connection's task.
    #[cfg(unix)]
    pub fn adopt(
        &self,
        conn: ConnId,
        fd: std::os::fd::RawFd,
        head: Vec<u8>,
        inbound: Arc<dyn Inbound>,
    ) -> io::Result<(Connection, Adopted)> {
        use std::os::fd::BorrowedFd;

        if fd < 0 {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        // SAFETY: the caller hands over an open fd it keeps open for the duration of this call;
        // it is only borrowed long enough to duplicate it (with F_DUPFD_CLOEXEC).
        let owned = unsafe { BorrowedFd::borrow_raw(fd) }.try_clone_to_owned()?;
        let (connection, adopted) =
            self.adopt_accepted(conn, std::net::TcpStream::from(owned), inbound);
        Ok((connection, adopted.replaying(head)))
    }

    /// Takes over a socket no one else holds, such as one a [`Listening`] socket accepted, as
    /// [`Plane::adopt`] takes over Node's.
    pub fn adopt_accepted(
        &self,
        conn: ConnId,
        socket: std::net::TcpStream,
        inbound: Arc<dyn Inbound>,
    ) -> (Connection, Adopted) {
        let shared = Arc::new(Shared::default());
        let link = Link {
            lifeline: Lifeline::new(conn, inbound, self.state.clone()),
            shared: shared.clone(),
            plane: self.state.clone(),
        };
        let adopted = Adopted {
            socket,
            response: Vec::new(),
            head: Vec::new(),
            link,
            runtime: self.runtime().handle().clone(),
        };
        (Connection::new(shared), adopted)
    }

    /// Listens on the first of `addresses` it can bind, with room for `backlog` connections
    /// waiting to be accepted, and accepts connections for `intake`: upgrade requests `rules`
    /// let the plane answer become connections of the plane, and the rest are handed over.
    pub fn listen(
        &self,
        addresses: &[std::net::SocketAddr],
        backlog: u32,
        rules: UpgradeRules,
        intake: Arc<dyn Intake>,
    ) -> io::Result<Listening> {
        Listening::start(
            addresses,
            backlog,
            rules,
            intake,
            self.state.clone(),
            self.runtime().handle(),
        )
    }

    /// Runs a future on the plane's runtime. It is dropped when the plane shuts down.
    pub fn spawn(&self, future: impl Future<Output = ()> + Send + 'static) {
        self.runtime().spawn(future);
    }

    fn runtime(&self) -> &Runtime {
        // Only `stop` takes the runtime, and nothing runs on a plane after it.
        self.runtime.as_ref().expect("the plane is running")
    }

    /// Closes every connection with 1001 after what is queued for it, waits up to the shutdown
    /// grace for their close handshakes, then stops the runtime, waiting up to the grace again
    /// for its threads. Connections still open by then are dropped and reported `closed` 1006.
    /// Dropping the plane does the same. Must not be called from one of the plane's own threads
    /// (an `Inbound` callback): that thread's connection could not finish, so the grace would
    /// run out twice.
    pub fn shutdown(mut self) {
        self.stop(true);
    }

    /// Stops at once, for a process or worker that is exiting: nothing more is sent, no close
    /// handshake is awaited, every connection's socket is dropped (reported `closed` 1006) and
    /// the runtime's threads are waited for a few milliseconds at most. Threads still busy by
    /// then finish on their own, detached.
    pub fn shutdown_now(mut self) {
        self.stop(false);
    }

    fn stop(&mut self, graceful: bool) {
        let Some(runtime) = self.runtime.take() else {
            return;
        };
        let state = &self.state;
        let grace = self.grace;
        let stop = move || {
            if graceful {
                state.begin_shutdown();
                state.wait_idle(Instant::now() + grace);
                runtime.shutdown_timeout(grace);
            } else {
                // Stopping the runtime drops every connection's task, and with it its socket.
                runtime.shutdown_timeout(ABORT_WAIT);
            }
        };
        // tokio refuses to drop a runtime on a thread that is inside another runtime.
        if tokio::runtime::Handle::try_current().is_ok() {
            std::thread::scope(|scope| {
                let _ = scope.spawn(stop).join();
            });
        } else {
            stop();
        }
    }
}

impl Drop for Plane {
    fn drop(&mut self) {
        self.stop(true);
    }
}
