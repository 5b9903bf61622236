//! The hub joins the router to both connection planes. Native sockets reach it from the plane's
//! tokio threads; JS-plane sockets, the server clients and connection intake reach it from the JS
//! thread. One lock guards the router, so every path sees its messages in one order. What waits
//! for the JS thread sits in a queue under a lock of its own, so JS takes it without waiting for
//! a plane thread that holds the router (and may be descheduled while it does); messages for a
//! server client still busy with earlier ones wait beside it, in the server inbox.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Instant;

use cluster::Cluster;
use connection_plane::{Connection, FrameError, Inbound, Listening, Plane, UpgradeRules};
use relay_metrics::{DropReason, Metrics, Plane as PlaneLabel, Sent};
use sync_core::protocol::error::{Overflow, SyncError};
use sync_core::protocol::limits::MAX_PAYLOAD_BYTES;
use sync_core::protocol::message::Verdict;
use sync_core::router::{
    AuthRequest, Backpressure, ConnId, Decision, Dropped, Outbox, PathKey, Payload, Router,
};
use tokio::sync::Notify;

use crate::cluster_host::{ClusterHost, ClusterState, Clustered};
use crate::event::{Event, MessageData};
use crate::intake::HubIntake;
use crate::server_inbox::{Backlog, ServerInbox};

/// Where a connection's frames go.
enum Conn {
    /// Taken over: the native plane writes to it.
    Native(Connection),
    /// Still a `ws` socket in JS: its frames travel as events.
    Js,
}

struct State {
    router: Router,
    conns: HashMap<ConnId, Conn>,
    /// Native sockets whose facade has `'message'` listeners.
    mirrored: HashSet<ConnId>,
    /// Events made under this lock, moved to the JS queue before it is released, in order.
    events: Vec<Event>,
    /// The deadline the expiry timer is sleeping towards.
    armed: Option<Instant>,
    /// Connections `ws` has answered with a 101 that JS has not registered yet. A client whose
    /// handshake completed must be on its path before any message processed after that, as on
    /// TinyBase's single thread, so plane input waits in `deferred` meanwhile.
    joining: HashMap<String, usize>,
    /// Each with the path it waits for: `None` waits until no connection is joining.
    deferred: VecDeque<(Option<String>, PlaneInput<'static>)>,
    /// Native sockets not read while the JS backlog is full; read again once JS catches up.
    held_back: HashSet<ConnId>,
    /// Native sockets whose facade was paused by user code; only its resume reads them again.
    user_paused: HashSet<ConnId>,
    /// Pings facades sent that no pong has answered yet: only those pongs reach JS, not the
    /// heartbeat's.
    pings: HashMap<ConnId, usize>,
    /// What the cluster keeps under this lock.
    cluster: ClusterState,
}

/// The most server-client messages waiting for JS before the sockets feeding them stop being
/// read (TCP then pushes back on their clients) instead of the queue growing without bound: a few
/// turns of JS work, enough to keep it busy, little enough to bound memory and latency. What waits
/// in the server inbox has a bound of its own, per path.
const MAX_BACKLOG: Backlog = Backlog {
    messages: 256,
    bytes: MAX_PAYLOAD_BYTES,
};

/// The server-client messages among `events`.
fn backlog_of(events: &[Event]) -> Backlog {
    let mut backlog = Backlog::default();
    for event in events {
        if let Event::ToServer { payload, .. } = event {
            backlog.messages += 1;
            backlog.bytes += payload.len();
        }
    }
    backlog
}

/// Events waiting for the JS thread, oldest first.
#[derive(Default)]
struct JsQueue {
    events: Vec<Event>,
    /// Server-client messages among them.
    backlog: Backlog,
    /// Server-client messages held while their server client is busy.
    inbox: ServerInbox,
    /// Sockets were held back since JS last took events: taking enough must read them again.
    held_back: bool,
}

impl JsQueue {
    /// Appends the events staged under the router's lock; true if they were the first waiting.
    fn publish(&mut self, staged: &mut Vec<Event>, metrics: &Metrics) -> bool {
        let was_empty = self.events.is_empty();
        let start = self.events.len();
        for event in staged.drain(..) {
            self.inbox.route(event, &mut self.events);
        }
        self.backlog.add(backlog_of(&self.events[start..]));
        self.measure(metrics);
        was_empty && !self.events.is_empty()
    }

    fn measure(&self, metrics: &Metrics) {
        metrics.js_queue_events.set(gauge(self.events.len()));
        metrics
            .js_queue_server_messages
            .set(gauge(self.server_backlog().messages));
    }

    /// The server client of `path` settled its messages: what waited for it is queued.
    fn settled(&mut self, path: PathKey) {
        let start = self.events.len();
        self.inbox.settled(path, &mut self.events);
        self.backlog.add(backlog_of(&self.events[start..]));
    }

    /// Server-client messages queued or held for a busy server client.
    fn server_backlog(&self) -> Backlog {
        let mut total = self.backlog;
        total.add(self.inbox.backlog());
        total
    }

    fn is_full(&self) -> bool {
        self.backlog.reaches(MAX_BACKLOG)
    }
}

impl State {
    /// Whether input from `conn` must wait for a joining connection, and for which path.
    fn must_wait(&self, conn: ConnId) -> Option<Option<String>> {
        if self.joining.is_empty() {
            return None;
        }
        match self.router.legacy_path_id(conn) {
            Some(path_id) => self
                .joining
                .contains_key(path_id)
                .then(|| Some(path_id.to_owned())),
            None => Some(None),
        }
    }

    fn still_waits(&self, path_id: &Option<String>) -> bool {
        match path_id {
            Some(path_id) => self.joining.contains_key(path_id),
            None => !self.joining.is_empty(),
        }
    }
}

/// What a native socket brings to the router.
enum PlaneInput<'a> {
    Message {
        conn: ConnId,
        text: Cow<'a, str>,
        /// Its message, validated before the lock was taken.
        verdict: Option<Verdict<'a>>,
        /// A binary message's own bytes (`text` decodes them), kept for a mirroring facade.
        binary: Option<Cow<'a, [u8]>>,
    },
    Closed {
        conn: ConnId,
        code: u16,
        reason: Cow<'a, str>,
    },
    /// Reported in order with the socket's messages, as ws emits its `'error'` after them.
    SocketError { conn: ConnId, error: FrameError },
}

impl PlaneInput<'_> {
    fn conn(&self) -> ConnId {
        match self {
            PlaneInput::Message { conn, .. }
            | PlaneInput::Closed { conn, .. }
            | PlaneInput::SocketError { conn, .. } => *conn,
        }
    }

    fn into_owned(self) -> PlaneInput<'static> {
        match self {
            // The copy is judged again when it is applied.
            PlaneInput::Message {
                conn, text, binary, ..
            } => PlaneInput::Message {
                conn,
                text: Cow::Owned(text.into_owned()),
                verdict: None,
                binary: binary.map(|bytes| Cow::Owned(bytes.into_owned())),
            },
            PlaneInput::Closed { conn, code, reason } => PlaneInput::Closed {
                conn,
                code,
                reason: Cow::Owned(reason.into_owned()),
            },
            PlaneInput::SocketError { conn, error } => PlaneInput::SocketError { conn, error },
        }
    }

    fn apply(self, router: &mut Router, effects: &mut Effects) {
        match self {
            PlaneInput::Message {
                conn,
                text,
                verdict,
                binary,
            } => {
                router.receive_judged(conn, &text, verdict, Instant::now(), effects);
                if effects.mirrored.contains(&conn) {
                    let data = match binary {
                        Some(bytes) => MessageData::Binary(bytes.into_owned()),
                        None => MessageData::Text(text.into_owned()),
                    };
                    effects.events.push(Event::Message { conn, data });
                }
            }
            PlaneInput::Closed { conn, code, reason } => {
                router.close(conn, Instant::now(), effects);
                effects.conns.remove(&conn);
                effects.mirrored.remove(&conn);
                effects.events.push(Event::Closed {
                    conn,
                    code,
                    reason: reason.into_owned(),
                });
            }
            PlaneInput::SocketError { conn, error } => {
                effects.events.push(Event::SocketError { conn, error });
            }
        }
    }
}

/// The router's effects, carried out while the hub's lock is held.
struct Effects<'a> {
    conns: &'a mut HashMap<ConnId, Conn>,
    mirrored: &'a mut HashSet<ConnId>,
    events: &'a mut Vec<Event>,
    cluster: Option<Clustered<'a>>,
    metrics: &'a Metrics,
    sent: Sent,
}

impl Outbox for Effects<'_> {
    fn send(&mut self, conn: ConnId, payload: &Payload) -> Result<(), Backpressure> {
        match self.conns.get(&conn) {
            Some(Conn::Native(connection)) => match connection.send(payload.clone()) {
                Ok(()) => {
                    self.sent.count(PlaneLabel::Native, payload.len());
                    Ok(())
                }
                Err(backpressure) => {
                    self.metrics.slow_consumer_closes_total[PlaneLabel::Native].inc();
                    Err(backpressure)
                }
            },
            Some(Conn::Js) => {
                // JS knows the socket's bufferedAmount, so it applies the backlog limit itself.
                self.sent.count(PlaneLabel::Js, payload.len());
                self.events.push(Event::Send {
                    conn,
                    payload: payload.clone(),
                });
                Ok(())
            }
            None => Ok(()),
        }
    }

    fn close(&mut self, conn: ConnId, code: u16, reason: &str) {
        match self.conns.get(&conn) {
            Some(Conn::Native(connection)) => {
                // The router closes only with codes valid on the wire (1007, 1013), which the
                // plane never refuses.
                let _ = connection.close(code, reason);
            }
            Some(Conn::Js) => self.events.push(Event::Close {
                conn,
                code,
                reason: reason.to_owned(),
            }),
            None => {}
        }
    }

    fn report(&mut self, error: SyncError) {
        let reason = match error {
            SyncError::Message => Some(DropReason::Invalid),
            SyncError::Overflow(_) => Some(DropReason::Overflow),
            // A refusal drops a connection, counted with its close code, not a message.
            SyncError::Refused(_) => None,
        };
        if let Some(reason) = reason {
            self.metrics.messages_dropped_total[reason].inc();
        }
        self.events.push(Event::Error {
            message: error.to_string(),
        });
    }

    fn client_ids(&mut self, path_id: &str, client_id: &str, change: i8) {
        self.events.push(Event::ClientIds {
            path_id: path_id.to_owned(),
            client_id: client_id.to_owned(),
            change,
        });
    }

    fn path_ids(&mut self, path_id: &str, change: i8) {
        self.metrics.path_ids(change);
        if let Some(cluster) = &self.cluster {
            cluster.path_ids(path_id, change);
        }
        self.events.push(Event::PathIds {
            path_id: path_id.to_owned(),
            change,
        });
    }

    fn start_path(&mut self, path: PathKey, path_id: &str) {
        match &mut self.cluster {
            Some(cluster) => cluster.start_path(path, path_id),
            None => self.events.push(Event::StartPath {
                path,
                path_id: path_id.to_owned(),
            }),
        }
    }

    fn stop_path(&mut self, path: PathKey) {
        if self
            .cluster
            .as_mut()
            .is_none_or(|cluster| cluster.stop_path(path))
        {
            self.events.push(Event::StopPath { path });
        }
    }

    fn keeps(&mut self, path: PathKey) -> bool {
        self.cluster
            .as_mut()
            .is_some_and(|cluster| cluster.keeps(path))
    }

    fn stop_paths(&mut self, paths: Vec<PathKey>) {
        let paths: Vec<PathKey> = match self.cluster.as_mut() {
            // Only those whose server client JS runs: as for one path.
            Some(cluster) => paths
                .into_iter()
                .filter(|path| cluster.stop_path(*path))
                .collect(),
            None => paths,
        };
        if !paths.is_empty() {
            self.events.push(Event::StopPaths { paths });
        }
    }

    fn to_server(&mut self, path: PathKey, payload: &str) {
        if !self
            .cluster
            .as_ref()
            .is_some_and(|cluster| cluster.to_server(path, payload))
        {
            self.events.push(Event::ToServer {
                path,
                payload: payload.to_owned(),
            });
        }
    }

    fn publish(&mut self, path_id: &str, to: &str, payload: &Payload) {
        if let Some(cluster) = &mut self.cluster {
            cluster.publish(path_id, to, payload);
        }
    }

    fn dropped(&mut self, reason: Dropped, count: usize) {
        let reason = match reason {
            Dropped::Denied => DropReason::Denied,
            Dropped::ReadOnly => DropReason::ReadOnly,
        };
        self.metrics.messages_dropped_total[reason].add(count as u64);
    }

    fn authorize(&mut self, request: AuthRequest) {
        self.events.push(Event::Authorize {
            conn: request.conn,
            ticket: request.ticket,
            path_id: request.path_id.to_owned(),
            client_id: request.client_id.to_owned(),
            channel_id: request.channel_id.map(str::to_owned),
        });
    }
}

/// A socket `ws` upgraded (or was about to), handed to the plane.
#[cfg(unix)]
pub struct TakenSocket {
    /// Node's fd: the plane works on a duplicate.
    pub fd: i32,
    /// The bytes Node had already read from it.
    pub head: Vec<u8>,
    /// The HTTP response that completes the upgrade, when the plane is to write it.
    pub response: Option<Vec<u8>>,
}

/// One `createWsServer`'s native half.
pub struct Hub {
    state: Mutex<State>,
    /// Taken after `state` when both are held, never before it.
    queue: Mutex<JsQueue>,
    plane: Mutex<Option<Plane>>,
    /// Tells the JS thread that events are waiting; called only when the queue was empty.
    wake: Box<dyn Fn() + Send + Sync>,
    /// Re-arms the expiry timer when an earlier deadline appears.
    timer: Arc<Notify>,
    /// Native sockets whose close JS has not yet been handed: while there are any, Node must
    /// stay alive. Counted down only as JS takes each `Closed` event, so JS can never let go of
    /// Node while the event of the last close is still on its way.
    open_native: AtomicUsize,
    /// This node's link to the other nodes of a cluster, if it is in one.
    cluster: Option<Cluster>,
    metrics: Arc<Metrics>,
    /// The socket the plane accepts on with the `listen` option.
    listening: Mutex<Option<Listening>>,
    /// The id of the next connection whose upgrade the plane answered on its own listening
    /// socket: above the ids JS gives the connections it sees.
    next_upgraded: AtomicU64,
}

/// The first id of a connection upgraded on the plane's own listening socket. JS numbers the
/// others from 1, and its numbers are exact up to 2^53.
const FIRST_UPGRADED: u64 = 1 << 48;

impl Hub {
    pub fn new(
        router: Router,
        plane: Plane,
        cluster: Option<cluster::Config>,
        wake: Box<dyn Fn() + Send + Sync>,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Hub>, String> {
        let host = Arc::new(ClusterHost::default());
        let (cluster, link) = match cluster {
            Some(config) => {
                let (cluster, link) = Cluster::new(&config, host.clone(), metrics.clone())?;
                (Some(cluster), Some(link))
            }
            None => (None, None),
        };
        let timer = Arc::new(Notify::new());
        let hub = Arc::new(Hub {
            state: Mutex::new(State {
                router,
                conns: HashMap::new(),
                mirrored: HashSet::new(),
                events: Vec::new(),
                armed: None,
                joining: HashMap::new(),
                deferred: VecDeque::new(),
                held_back: HashSet::new(),
                user_paused: HashSet::new(),
                pings: HashMap::new(),
                cluster: ClusterState::default(),
            }),
            queue: Mutex::default(),
            plane: Mutex::new(None),
            wake,
            timer: timer.clone(),
            open_native: AtomicUsize::new(0),
            cluster,
            listening: Mutex::new(None),
            next_upgraded: AtomicU64::new(FIRST_UPGRADED),
            metrics,
        });
        plane.spawn(expire_when_due(Arc::downgrade(&hub), timer));
        if let Some(link) = link {
            host.attach(&hub);
            plane.spawn(link);
        }
        *lock(&hub.plane) = Some(plane);
        Ok(hub)
    }

    /// Runs `action` on the router, then re-arms the timer if an earlier deadline appeared.
    fn act(&self, state: &mut State, action: impl FnOnce(&mut Router, &mut Effects)) {
        let mut effects = Effects {
            conns: &mut state.conns,
            mirrored: &mut state.mirrored,
            events: &mut state.events,
            cluster: self.cluster.as_ref().map(|link| Clustered {
                link,
                state: &mut state.cluster,
            }),
            metrics: &self.metrics,
            sent: Sent::default(),
        };
        action(&mut state.router, &mut effects);
        while let Some(followup) = effects.cluster.as_mut().and_then(Clustered::next_followup) {
            followup.apply(&mut state.router, &mut effects);
        }
        effects.sent.add_to(&self.metrics);
        let next = state.router.next_deadline();
        if next.is_some_and(|next| state.armed.is_none_or(|armed| next < armed)) {
            state.armed = next;
            self.timer.notify_one();
        }
    }

    /// A call from the JS thread: its events, and any queued before it, are returned in order.
    fn on_js_thread(&self, action: impl FnOnce(&mut Router, &mut Effects)) -> Vec<Event> {
        let mut state = lock(&self.state);
        self.act(&mut state, action);
        self.take_events(&mut state)
    }

    /// A call from a plane thread: JS is woken if this queued the first event.
    fn off_js_thread(&self, action: impl FnOnce(&mut Router, &mut Effects)) {
        self.off_js_thread_with(|state| {
            self.act(state, action);
            None
        });
    }

    /// A plane-thread change to the hub's own state. What it made moves to the JS queue before
    /// the router is unlocked, so the queue keeps the router's order, and JS is woken if the
    /// queue was empty. While the server clients' backlog is full, the native socket `change`
    /// returns is no longer read; deciding that under the queue's lock keeps a drain from missing
    /// a socket it has to read again.
    fn off_js_thread_with(&self, change: impl FnOnce(&mut State) -> Option<ConnId>) {
        let mut state = lock(&self.state);
        let feeding = change(&mut state);
        let mut queue = lock(&self.queue);
        let wake = queue.publish(&mut state.events, &self.metrics);
        let hold_back = feeding.filter(|conn| {
            queue.is_full() && matches!(state.conns.get(conn), Some(Conn::Native(_)))
        });
        queue.held_back |= hold_back.is_some();
        drop(queue);
        if let Some(conn) = hold_back {
            if let Some(Conn::Native(connection)) = state.conns.get(&conn) {
                connection.pause_reading();
            }
            state.held_back.insert(conn);
            self.metrics
                .held_back_sockets
                .set(gauge(state.held_back.len()));
        }
        drop(state);
        if wake {
            (self.wake)();
        }
    }

    /// Input from a native socket, routed now or, while a connection is joining, once it has.
    fn plane_input(&self, input: PlaneInput) {
        self.off_js_thread_with(|state| {
            let conn = input.conn();
            if let Some(path_id) = state.must_wait(conn) {
                state.deferred.push_back((path_id, input.into_owned()));
                return None;
            }
            self.act(state, |router, effects| input.apply(router, effects));
            if !state.conns.contains_key(&conn) {
                state.user_paused.remove(&conn);
                state.pings.remove(&conn);
            }
            Some(conn)
        });
    }

    /// Hands JS, which works through them before it next asks, every queued event and those made
    /// under `state` since: the backlog they made is gone, and the sockets held back for it are
    /// read again.
    fn take_events(&self, state: &mut State) -> Vec<Event> {
        let mut queue = lock(&self.queue);
        queue.publish(&mut state.events, &self.metrics);
        let events = self.take_queue(queue);
        self.resume_held_back(state);
        events
    }

    /// Everything queued for JS. The caller reads held-back sockets again.
    fn take_queue(&self, mut queue: MutexGuard<JsQueue>) -> Vec<Event> {
        let events = std::mem::take(&mut queue.events);
        queue.backlog = Backlog::default();
        queue.held_back = false;
        queue.measure(&self.metrics);
        drop(queue);
        // JS lets go of Node only when it drains, so a drain must follow the last close.
        if self.hand_over(&events) {
            (self.wake)();
        }
        events
    }

    /// Counts the native closes among events handed to JS; true if there were any.
    fn hand_over(&self, events: &[Event]) -> bool {
        let closed = events
            .iter()
            .filter(|event| matches!(event, Event::Closed { .. }))
            .count();
        self.open_native.fetch_sub(closed, Ordering::AcqRel);
        closed > 0
    }

    /// Reads again the native sockets held back for the JS backlog, unless their facade paused
    /// them.
    fn resume_held_back(&self, state: &mut State) {
        for conn in std::mem::take(&mut state.held_back) {
            if let Some(Conn::Native(connection)) = state.conns.get(&conn) {
                if !state.user_paused.contains(&conn) {
                    connection.resume_reading();
                }
            }
        }
        self.metrics.held_back_sockets.set(0);
    }

    /// `ws` is about to write a 101 for `path_id`: plane input that could reach that path waits
    /// until [`Hub::joined`]; other paths keep relaying.
    pub fn joining(&self, path_id: &str) {
        *lock(&self.state)
            .joining
            .entry(path_id.to_owned())
            .or_default() += 1;
    }

    /// A connection announced by [`Hub::joining`] is registered (or will never be): route what
    /// no longer waits, in the order it came.
    pub fn joined(&self, path_id: &str) -> Vec<Event> {
        let mut state = lock(&self.state);
        if let Some(count) = state.joining.get_mut(path_id) {
            *count -= 1;
            if *count == 0 {
                state.joining.remove(path_id);
            }
        }
        let deferred = std::mem::take(&mut state.deferred);
        for (path_id, input) in deferred {
            if state.still_waits(&path_id) {
                state.deferred.push_back((path_id, input));
            } else {
                self.act(&mut state, |router, effects| input.apply(router, effects));
            }
        }
        self.take_events(&mut state)
    }

    /// Takes over a socket. Nothing is read from it before the router knows the connection: it is served only once
    /// registered.
    #[cfg(unix)]
    pub fn adopt(
        self: &Arc<Self>,
        conn: ConnId,
        socket: TakenSocket,
        path_id: &str,
        client_id: &str,
        multiplexed: bool,
    ) -> std::io::Result<Vec<Event>> {
        let plane = lock(&self.plane);
        let plane = plane
            .as_ref()
            .ok_or_else(|| std::io::Error::other("the server is destroyed"))?;
        let inbound: Arc<dyn Inbound> = self.clone();
        let TakenSocket { fd, head, response } = socket;
        let (connection, adopted) = plane.adopt(conn, fd, head, inbound)?;
        let events = self.on_js_thread(|router, effects| {
            self.register_native(effects, conn, connection);
            router.open(conn, path_id, client_id, multiplexed, effects);
        });
        // Served once registered and with the hub unlocked: its task then neither finds itself
        // unknown nor starts by waiting on the lock this thread holds.
        adopted.answering(response.unwrap_or_default()).serve();
        Ok(events)
    }

    /// Counts a native connection open and keeps its handle, under the lock, before the router
    /// hears of it and before its task is served: the task never finds itself unknown.
    fn register_native(&self, effects: &mut Effects, conn: ConnId, connection: Connection) {
        self.open_native.fetch_add(1, Ordering::AcqRel);
        self.metrics.opened(PlaneLabel::Native);
        effects.conns.insert(conn, Conn::Native(connection));
    }

    /// Listens on the first of `addresses` that can be bound (see [`Plane::listen`]); the
    /// address it listens on. With `answers` false every connection goes to Node.
    pub fn listen(
        self: &Arc<Self>,
        addresses: &[SocketAddr],
        backlog: u32,
        rules: UpgradeRules,
        answers: bool,
    ) -> std::io::Result<SocketAddr> {
        let plane = lock(&self.plane);
        let plane = plane
            .as_ref()
            .ok_or_else(|| std::io::Error::other("the server is destroyed"))?;
        let mut listening = lock(&self.listening);
        if listening.is_some() {
            return Err(std::io::Error::other("the server is listening already"));
        }
        let intake = Arc::new(HubIntake(Arc::downgrade(self)));
        let started = plane.listen(addresses, backlog, rules, intake)?;
        if !answers {
            started.stop_answering();
        }
        let address = started.local_addr();
        *listening = Some(started);
        Ok(address)
    }

    /// Hands every connection the listening socket accepts from now on to Node.
    pub fn stop_answering(&self) {
        if let Some(listening) = lock(&self.listening).as_ref() {
            listening.stop_answering();
        }
    }

    /// Stops accepting on the socket [`Hub::listen`] opened, and closes it.
    fn stop_listening(&self) {
        let listening = lock(&self.listening).take();
        drop(listening);
    }

    /// Serves a connection whose upgrade the plane answered on its own listening socket.
    pub(crate) fn upgraded(
        self: &Arc<Self>,
        socket: TcpStream,
        path_id: &str,
        client_id: &str,
        multiplexed: bool,
        response: Vec<u8>,
    ) {
        let conn = ConnId(self.next_upgraded.fetch_add(1, Ordering::Relaxed));
        let adopted = {
            let plane = lock(&self.plane);
            let Some(plane) = plane.as_ref() else {
                return;
            };
            let inbound: Arc<dyn Inbound> = self.clone();
            plane.adopt_accepted(conn, socket, inbound)
        };
        let (connection, adopted) = adopted;
        self.off_js_thread_with(|state| {
            // JS hears of the connection before anything it causes.
            state.events.push(Event::Upgraded { conn });
            self.act(state, |router, effects| {
                self.register_native(effects, conn, connection);
                router.open(conn, path_id, client_id, multiplexed, effects);
            });
            None
        });
        // As for an adopted socket: served once registered, with the hub unlocked.
        adopted.answering(response).serve();
    }

    /// A connection the plane's listening socket accepted but does not answer, for Node.
    pub(crate) fn for_node(&self, socket: TcpStream) {
        self.off_js_thread_with(|state| {
            state.events.push(Event::Connection { socket });
            None
        });
    }

    /// Registers a socket that stays in JS.
    pub fn open_js(
        &self,
        conn: ConnId,
        path_id: &str,
        client_id: &str,
        multiplexed: bool,
    ) -> Vec<Event> {
        self.metrics.opened(PlaneLabel::Js);
        self.on_js_thread(|router, effects| {
            effects.conns.insert(conn, Conn::Js);
            router.open(conn, path_id, client_id, multiplexed, effects);
        })
    }

    pub fn receive_js(&self, conn: ConnId, payload: &str) -> Vec<Event> {
        self.metrics.received(PlaneLabel::Js, payload.len());
        let verdict = Verdict::of_payload(payload);
        self.on_js_thread(|router, effects| {
            router.receive_judged(conn, payload, verdict, Instant::now(), effects)
        })
    }

    /// A JS-plane socket closed with `code` (1005 when its close frame had none).
    pub fn close_js(&self, conn: ConnId, code: u16) -> Vec<Event> {
        self.metrics.closed(PlaneLabel::Js, code);
        self.on_js_thread(|router, effects| {
            router.close(conn, Instant::now(), effects);
            effects.conns.remove(&conn);
        })
    }

    pub fn server_send(
        &self,
        path: PathKey,
        to_client_id: Option<&str>,
        remainder: &str,
    ) -> Vec<Event> {
        self.on_js_thread(|router, effects| {
            router.server_send(path, to_client_id, remainder, effects)
        })
    }

    /// The user's `authorize` decided about the connection or channel asked with `ticket`.
    pub fn authorized(
        &self,
        conn: ConnId,
        ticket: u64,
        channel_id: Option<&str>,
        decision: Decision,
    ) -> Vec<Event> {
        self.on_js_thread(|router, effects| {
            router.authorized(conn, ticket, channel_id, decision, Instant::now(), effects)
        })
    }

    pub fn path_ready(&self, path: PathKey, has_server_client: bool) -> Vec<Event> {
        self.on_js_thread(|router, effects| router.path_ready(path, has_server_client, effects))
    }

    pub fn path_failed(&self, path: PathKey) -> Vec<Event> {
        self.on_js_thread(|router, effects| router.path_failed(path, Instant::now(), effects))
    }

    pub fn factory_called(&self, path: PathKey) -> Vec<Event> {
        self.on_js_thread(|router, effects| router.factory_called(path, effects))
    }

    /// Every event waiting for JS, including any a plane thread is making now: once JS has
    /// applied them, it knows of everything a client can have seen.
    pub fn take_all(&self) -> Vec<Event> {
        self.on_js_thread(|_, _| {})
    }

    pub fn path_stopped(&self, path: PathKey) -> Vec<Event> {
        self.on_js_thread(|router, effects| {
            router.path_stopped(path, effects);
            if let Some(cluster) = &mut effects.cluster {
                cluster.server_stopped(path);
            }
        })
    }

    /// The server is being destroyed: every path stops now, without client events.
    pub fn stop_all(&self) -> Vec<Event> {
        self.on_js_thread(|router, effects| router.stop_all(effects))
    }

    /// Routes to this node's clients of `path_id` what a client elsewhere sent (see
    /// [`Router::deliver`]), from off the JS thread.
    pub(crate) fn deliver(&self, path_id: &str, from: &str, to: &str, payload: &Payload) {
        self.off_js_thread(|router, effects| router.deliver(path_id, from, to, payload, effects));
    }

    /// This node took the lease of `path`: its server client runs here from now on.
    pub(crate) fn server_held(&self, path_id: &str, path: PathKey, epoch: u64) {
        self.off_js_thread(|_, effects| {
            if let Some(cluster) = &mut effects.cluster {
                cluster.held(path_id, path, epoch, effects.events);
            }
        });
    }

    /// Another node runs the server client of `path`: relay its clients now.
    pub(crate) fn server_elsewhere(&self, path: PathKey) {
        self.off_js_thread(|router, effects| {
            if effects
                .cluster
                .as_mut()
                .is_some_and(|cluster| cluster.elsewhere(path))
            {
                router.path_ready(path, true, effects);
            }
        });
    }

    /// No other node has clients on `path_id`, which this node kept for them.
    pub(crate) fn vacated(&self, path_id: &str) {
        self.off_js_thread(|router, effects| router.vacated(path_id, Instant::now(), effects));
    }

    /// A message for the server client of `path_id`, run here, from another node's client.
    pub(crate) fn to_server_from_elsewhere(&self, path_id: &str, payload: &str) {
        self.off_js_thread(|router, effects| router.deliver_to_server(path_id, payload, effects));
    }

    /// An error for `onIgnoredError`, from off the JS thread.
    pub(crate) fn report(&self, message: String) {
        self.off_js_thread_with(|state| {
            state.events.push(Event::Error { message });
            None
        });
    }

    /// This node's link to the cluster, if it is in one.
    pub(crate) fn cluster(&self) -> Option<&Cluster> {
        self.cluster.as_ref()
    }

    /// The server client of `path` settled the messages it was handed: it is handed those that
    /// waited meanwhile.
    ///
    /// The router is not locked: nothing it does is needed here (what it stages reaches the
    /// queue before it is unlocked), and a JS thread that waited for it while the plane threads
    /// route would spend its time there rather than on the server clients.
    pub fn server_settled(&self, path: PathKey) -> Vec<Event> {
        let mut queue = lock(&self.queue);
        queue.settled(path);
        let resume = queue.held_back;
        let events = self.take_queue(queue);
        if resume {
            self.resume_held_back(&mut lock(&self.state));
        }
        events
    }

    /// Whether the plane still has anything Node must stay alive for: an open native socket,
    /// or a socket it listens on, as Node would for its own.
    pub fn keeps_node_alive(&self) -> bool {
        self.open_native.load(Ordering::Acquire) > 0 || lock(&self.listening).is_some()
    }

    /// Up to `max` of the events queued by the plane threads, oldest first: JS takes them in
    /// turns, so a burst never holds its event loop for long.
    pub fn drain(&self, max: usize) -> Vec<Event> {
        let mut queue = lock(&self.queue);
        let taken: Vec<Event> = if queue.events.len() <= max {
            std::mem::take(&mut queue.events)
        } else {
            queue.events.drain(..max).collect()
        };
        queue.backlog.remove(backlog_of(&taken));
        queue.measure(&self.metrics);
        self.hand_over(&taken);
        let resume = queue.held_back && !queue.is_full();
        if resume {
            queue.held_back = false;
        }
        drop(queue);
        if resume {
            self.resume_held_back(&mut lock(&self.state));
        }
        taken
    }

    /// Pings a native socket for its facade; the pong comes back as an event.
    pub fn ping(&self, conn: ConnId, data: Vec<u8>) {
        let mut state = lock(&self.state);
        if let Some(Conn::Native(connection)) = state.conns.get(&conn) {
            connection.ping(data);
            *state.pings.entry(conn).or_default() += 1;
        }
    }

    /// Pauses or resumes reading a native socket for its facade's `pause()` and `resume()`.
    pub fn set_user_paused(&self, conn: ConnId, paused: bool) {
        let mut state = lock(&self.state);
        let Some(Conn::Native(connection)) = state.conns.get(&conn) else {
            return;
        };
        if paused {
            connection.pause_reading();
            state.user_paused.insert(conn);
        } else {
            if !state.held_back.contains(&conn) {
                connection.resume_reading();
            }
            state.user_paused.remove(&conn);
        }
    }

    /// Runs `action` on a native connection, if it is still open.
    pub fn native<R>(&self, conn: ConnId, action: impl FnOnce(&Connection) -> R) -> Option<R> {
        match lock(&self.state).conns.get(&conn) {
            Some(Conn::Native(connection)) => Some(action(connection)),
            _ => None,
        }
    }

    /// Turns mirroring of a native socket's inbound messages to JS on or off.
    pub fn set_mirrored(&self, conn: ConnId, mirrored: bool) {
        let mut state = lock(&self.state);
        if mirrored {
            state.mirrored.insert(conn);
        } else {
            state.mirrored.remove(&conn);
        }
    }

    /// Stops the plane: its sockets are dropped and its threads end. Idempotent.
    pub fn shutdown(&self) {
        self.stop_listening();
        let plane = lock(&self.plane).take();
        if let Some(plane) = plane {
            plane.shutdown();
        }
    }

    /// As [`Hub::shutdown`], but without closing sockets or waiting for more than a few
    /// milliseconds: for a process or worker that is exiting.
    pub fn shutdown_now(&self) {
        self.stop_listening();
        let plane = lock(&self.plane).take();
        if let Some(plane) = plane {
            plane.shutdown_now();
        }
    }
}

impl Inbound for Hub {
    fn message(&self, conn: ConnId, text: &str) {
        self.metrics.received(PlaneLabel::Native, text.len());
        self.plane_input(PlaneInput::Message {
            conn,
            text: Cow::Borrowed(text),
            verdict: Verdict::of_payload(text),
            binary: None,
        });
    }

    fn binary_message(&self, conn: ConnId, data: &[u8]) {
        self.metrics.received(PlaneLabel::Native, data.len());
        let text = String::from_utf8_lossy(data);
        // Bytes that were not UTF-8 become text of the hub's own, judged under the lock.
        let verdict = match text {
            Cow::Borrowed(valid) => Verdict::of_payload(valid),
            Cow::Owned(_) => None,
        };
        self.plane_input(PlaneInput::Message {
            conn,
            text,
            verdict,
            binary: Some(Cow::Borrowed(data)),
        });
    }

    fn oversized(&self, _conn: ConnId) {
        self.off_js_thread(|_, effects| effects.report(SyncError::Overflow(Overflow::Socket)));
    }

    fn frame_error(&self, conn: ConnId, error: FrameError) {
        self.plane_input(PlaneInput::SocketError { conn, error });
    }

    fn pong(&self, conn: ConnId, data: &[u8]) {
        self.off_js_thread_with(|state| {
            let pending = state.pings.get_mut(&conn)?;
            *pending -= 1;
            if *pending == 0 {
                state.pings.remove(&conn);
            }
            state.events.push(Event::Pong {
                conn,
                data: String::from_utf8_lossy(data).into_owned(),
            });
            None
        });
    }

    fn heartbeat_lost(&self, _conn: ConnId) {
        self.metrics.heartbeat_drops_total.inc();
    }

    fn closed(&self, conn: ConnId, code: u16, reason: &str) {
        self.metrics.closed(PlaneLabel::Native, code);
        self.plane_input(PlaneInput::Closed {
            conn,
            code,
            reason: Cow::Borrowed(reason),
        });
    }
}

fn gauge(count: usize) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

/// Sleeps until the router's next deadline (fragment groups, startup holds) and expires what is
/// due, until the hub is gone.
async fn expire_when_due(hub: Weak<Hub>, timer: Arc<Notify>) {
    loop {
        let armed = match hub.upgrade() {
            Some(hub) => lock(&hub.state).armed,
            None => return,
        };
        match armed {
            Some(deadline) => {
                tokio::select! {
                    () = tokio::time::sleep_until(deadline.into()) => {}
                    () = timer.notified() => {}
                }
            }
            None => timer.notified().await,
        }
        let Some(hub) = hub.upgrade() else { return };
        hub.off_js_thread(|router, effects| router.expire(Instant::now(), effects));
        let mut state = lock(&hub.state);
        state.armed = state.router.next_deadline();
    }
}

/// Locks, recovering from a panic on another thread: the router's state is still the best there is,
/// and refusing every later call would take the whole server down.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
