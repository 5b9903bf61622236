//! The node's link to Redis: one task that owns a publishing connection and a subscribing one,
//! takes the hub's commands in order, and hands what other nodes publish to the host. When Redis
//! goes away it reports that once, keeps absorbing commands (dropping what it cannot publish),
//! reconnects with backoff, listens again to every path the node has clients on, and asks every
//! node to resync those paths. It also takes, renews and releases the leases of persisted paths
//! (see [`crate::lease`]), takes over a path whose holder's lease expired, and keeps this
//! node's presence on its paths fresh (see [`crate::presence`]).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use redis::aio::{MultiplexedConnection, PubSubSink, PubSubStream};
use redis::{AsyncConnectionConfig, Msg, RedisError};
use relay_metrics::Metrics;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::{interval, sleep, timeout, MissedTickBehavior};

use crate::envelope::{self, Envelope};
use crate::lease::{self, Leases};
use crate::node::NodeId;
use crate::presence::Presence;
use crate::{Host, Names};

/// Between attempts to reach Redis: short at first, so a restart heals quickly, and never so
/// long that a node stays apart for more than a couple of seconds after Redis is back.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// A Redis that accepts no connection or answers nothing in this long counts as away.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(3);
/// How often an idle link checks that Redis still answers: a Redis that hangs without closing
/// its sockets is otherwise never noticed.
const HEARTBEAT: Duration = Duration::from_secs(2);
/// Commands taken in one turn; the publishes among them go out as one pipeline.
const MAX_BATCH: usize = 512;

pub(crate) enum Command {
    Listen(String),
    Unlisten(String),
    Publish { path_id: String, bytes: Vec<u8> },
    Acquire { path_id: String, key: u64 },
    Release { path_id: String, key: u64 },
    VacantHere(String),
}

/// A persisted path whose server client this node runs.
pub(crate) struct Hold {
    /// The generation it runs for.
    key: u64,
    /// 0 while Redis was away when it was decided.
    epoch: u64,
    /// Another node was found holding it too: reported once.
    contested: bool,
}

/// What the handle and the link share.
#[derive(Default)]
pub(crate) struct Shared {
    /// Publishes queued and not yet taken by the link.
    pub(crate) queued: AtomicUsize,
    /// Publishes were dropped because the queue was full: paths need a resync.
    pub(crate) gap: AtomicBool,
}

struct Session {
    publisher: MultiplexedConnection,
    subscriber: PubSubSink,
    messages: PubSubStream,
}

/// Why a session ended.
enum End {
    /// The handle is gone: the server is shutting down.
    Dropped,
    Lost(RedisError),
}

impl From<RedisError> for End {
    fn from(error: RedisError) -> End {
        End::Lost(error)
    }
}

pub(crate) struct Link {
    pub(crate) client: redis::Client,
    pub(crate) names: Names,
    pub(crate) node: NodeId,
    pub(crate) host: Arc<dyn Host>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) commands: UnboundedReceiver<Command>,
    pub(crate) shared: Arc<Shared>,
    /// Paths this node has clients on.
    pub(crate) wanted: HashSet<String>,
    /// An outage was reported and Redis has not answered since.
    pub(crate) reported: bool,
    pub(crate) leases: Leases,
    pub(crate) presence: Presence,
    /// Held paths with no client here: the server client stops once no other node has any.
    pub(crate) vacant: HashSet<String>,
    /// Persisted paths whose server client this node runs.
    pub(crate) held: HashMap<String, Hold>,
    /// Persisted paths with clients here whose lease another node holds, by generation: taken
    /// over once that lease is gone.
    pub(crate) watched: HashMap<String, u64>,
    /// The latest server-client epoch heard of on each path.
    pub(crate) epochs: HashMap<String, u64>,
    /// Watched paths whose holder said it let go: tried at once.
    pub(crate) retry: Vec<String>,
    /// Expired leases of watched paths are not taken, nor vacant paths let go, before this:
    /// after Redis comes back (perhaps empty), their holders get a lease's time to take them
    /// again first, and other nodes to mark their presence again.
    pub(crate) watch_from: Instant,
}

impl Link {
    pub(crate) async fn run(mut self) {
        let mut backoff = MIN_BACKOFF;
        let mut connected_before = false;
        loop {
            let error = match self.connect().await {
                Ok(session) => {
                    backoff = MIN_BACKOFF;
                    let resync = connected_before;
                    if resync {
                        self.metrics.redis_reconnects_total.inc();
                    }
                    connected_before = true;
                    match self.serve(session, resync).await {
                        End::Dropped => return,
                        End::Lost(error) => error,
                    }
                }
                Err(error) => error,
            };
            self.outage(&error);
            if !self.wait(backoff).await {
                return;
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    async fn connect(&self) -> Result<Session, RedisError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT));
        let connecting = async {
            let publisher = self
                .client
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            let (subscriber, messages) = self.client.get_async_pubsub().await?.split();
            Ok(Session {
                publisher,
                subscriber,
                messages,
            })
        };
        timeout(CONNECT_TIMEOUT, connecting)
            .await
            .map_err(|_| timed_out("connecting"))?
    }

    /// Reports the start of an outage, once until Redis answers again.
    fn outage(&mut self, error: &RedisError) {
        if !self.reported {
            self.reported = true;
            self.host.report(format!(
                "cluster: Redis is unreachable ({error}); relaying to this server's clients only \
                 until it is back"
            ));
        }
    }

    async fn serve(&mut self, mut session: Session, resync: bool) -> End {
        if let Err(error) = self.start(&mut session, resync).await {
            return error.into();
        }
        let mut heartbeat = interval(HEARTBEAT);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut leases = interval(lease::TICK);
        leases.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                command = self.commands.recv() => {
                    let Some(command) = command else { return End::Dropped };
                    if let Err(error) = self.apply(command, &mut session).await {
                        return error.into();
                    }
                    if self.shared.gap.swap(false, Ordering::AcqRel) {
                        if let Err(error) = self.resync_all(&mut session).await {
                            return error.into();
                        }
                    }
                }
                message = session.messages.next() => match message {
                    Some(message) => {
                        self.receive(&message);
                        for path_id in std::mem::take(&mut self.retry) {
                            if let Err(error) = self.take_over(&path_id, &mut session).await {
                                return error.into();
                            }
                        }
                    }
                    None => return End::Lost(closed()),
                },
                _ = leases.tick() => {
                    if let Err(error) = self.tend_leases(&mut session).await {
                        return error.into();
                    }
                }
                _ = heartbeat.tick() => {
                    let ping = redis::cmd("PING");
                    if let Err(error) = ping.query_async::<()>(&mut session.publisher).await {
                        return error.into();
                    }
                }
            }
        }
    }

    /// Listens to every wanted path and, after an outage, has them resynced.
    async fn start(&mut self, session: &mut Session, resync: bool) -> Result<(), RedisError> {
        if !self.wanted.is_empty() {
            let channels: Vec<String> = self
                .wanted
                .iter()
                .map(|path_id| self.names.path(path_id))
                .collect();
            session.subscriber.subscribe(channels).await?;
        }
        self.reported = false;
        self.shared.gap.store(false, Ordering::Release);
        if resync {
            self.watch_from = Instant::now() + lease::TTL;
            self.tend_leases(session).await?;
            self.resync_all(session).await?;
        }
        Ok(())
    }

    /// Every node resyncs every path this node has clients on: this node's clients offer their
    /// content to all, and the resync envelope has the other nodes' clients offer theirs.
    async fn resync_all(&mut self, session: &mut Session) -> Result<(), RedisError> {
        if self.wanted.is_empty() {
            return Ok(());
        }
        let path_ids: Vec<String> = self.wanted.iter().cloned().collect();
        self.host.resync(&path_ids);
        let resync = envelope::resync(self.node);
        let mut pipeline = redis::pipe();
        for path_id in &path_ids {
            pipeline
                .cmd("PUBLISH")
                .arg(self.names.path(path_id))
                .arg(&resync)
                .ignore();
        }
        flush(&mut pipeline, session, &self.metrics).await
    }

    /// Runs `first` and the commands queued behind it, in order: consecutive publishes go out
    /// as one pipeline, and a path is listened to before anything published after it was
    /// wanted, so no answer to this node's clients is missed.
    async fn apply(&mut self, first: Command, session: &mut Session) -> Result<(), RedisError> {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match self.commands.try_recv() {
                Ok(command) => batch.push(command),
                Err(_) => break,
            }
        }
        let mut commands = batch.into_iter();
        let mut pipeline = redis::pipe();
        let mut result = Ok(());
        for command in commands.by_ref() {
            result = self.execute(command, &mut pipeline, session).await;
            if result.is_err() {
                break;
            }
        }
        let result = match result {
            Ok(()) => flush(&mut pipeline, session, &self.metrics).await,
            Err(error) => Err(error),
        };
        // What was taken but not run still changes which paths are wanted.
        for command in commands {
            self.absorb(command);
        }
        result
    }

    async fn execute(
        &mut self,
        command: Command,
        pipeline: &mut redis::Pipeline,
        session: &mut Session,
    ) -> Result<(), RedisError> {
        match command {
            Command::Publish { path_id, bytes } => {
                self.shared.queued.fetch_sub(1, Ordering::AcqRel);
                pipeline
                    .cmd("PUBLISH")
                    .arg(self.names.path(&path_id))
                    .arg(bytes)
                    .ignore();
            }
            Command::Listen(path_id) => {
                flush(pipeline, session, &self.metrics).await?;
                let channel = self.names.path(&path_id);
                let presence = self.names.presence(&path_id);
                if self.wanted.insert(path_id) {
                    session.subscriber.subscribe(channel).await?;
                }
                // Before this node asks for the lease, so a holder about to stop sees it.
                self.presence
                    .mark(&mut session.publisher, &[presence])
                    .await?;
            }
            Command::Acquire { path_id, key } => {
                flush(pipeline, session, &self.metrics).await?;
                if let Some(hold) = self.held.get_mut(&path_id) {
                    hold.key = key;
                    self.host.hold(&path_id, key, hold.epoch);
                    return Ok(());
                }
                match self.take(&path_id, key, session).await {
                    Ok(true) => {}
                    Ok(false) => {
                        self.watched.insert(path_id.clone(), key);
                        self.host.elsewhere(&path_id, key);
                    }
                    Err(error) => {
                        self.decide_alone(path_id, key);
                        return Err(error);
                    }
                }
            }
            Command::Release { path_id, key } => {
                if self.held.get(&path_id).is_some_and(|hold| hold.key == key) {
                    self.held.remove(&path_id);
                    flush(pipeline, session, &self.metrics).await?;
                    let keys = self.names.lease(&path_id);
                    self.leases.release(&mut session.publisher, &keys).await?;
                    pipeline
                        .cmd("PUBLISH")
                        .arg(self.names.path(&path_id))
                        .arg(envelope::released(self.node))
                        .ignore();
                }
            }
            Command::VacantHere(path_id) => {
                self.vacant.insert(path_id);
            }
            Command::Unlisten(path_id) => {
                flush(pipeline, session, &self.metrics).await?;
                self.watched.remove(&path_id);
                self.epochs.remove(&path_id);
                self.vacant.remove(&path_id);
                if self.wanted.remove(&path_id) {
                    session
                        .subscriber
                        .unsubscribe(self.names.path(&path_id))
                        .await?;
                    let presence = self.names.presence(&path_id);
                    self.presence
                        .leave(&mut session.publisher, &presence)
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// Takes the lease of `path_id` for generation `key` if it is free; true if this node now
    /// holds it, and the host was told.
    async fn take(
        &mut self,
        path_id: &str,
        key: u64,
        session: &mut Session,
    ) -> Result<bool, RedisError> {
        let keys = self.names.lease(path_id);
        let latest = self.epochs.get(path_id).copied().unwrap_or_default();
        let acquired = self.leases.acquire(&mut session.publisher, &keys, latest);
        let Some(epoch) = acquired.await? else {
            return Ok(false);
        };
        self.epochs.insert(path_id.to_owned(), epoch);
        self.held.insert(
            path_id.to_owned(),
            Hold {
                key,
                epoch,
                contested: false,
            },
        );
        self.host.hold(path_id, key, epoch);
        Ok(true)
    }

    /// Takes over a watched path whose lease is free.
    async fn take_over(&mut self, path_id: &str, session: &mut Session) -> Result<(), RedisError> {
        if let Some(&key) = self.watched.get(path_id) {
            if self.take(path_id, key, session).await? {
                self.watched.remove(path_id);
            }
        }
        Ok(())
    }

    /// With Redis away, a new persisted path is served here: its clients must not wait for
    /// Redis. Once Redis is back the lease is taken, or the clash reported.
    fn decide_alone(&mut self, path_id: String, key: u64) {
        self.host.hold(&path_id, key, 0);
        self.held.insert(
            path_id,
            Hold {
                key,
                epoch: 0,
                contested: false,
            },
        );
    }

    /// Renews this node's leases, takes those it decided alone, and takes over watched paths
    /// whose lease expired.
    async fn tend_leases(&mut self, session: &mut Session) -> Result<(), RedisError> {
        let held: Vec<String> = self.held.keys().cloned().collect();
        for path_id in held {
            let keys = self.names.lease(&path_id);
            let Some(hold) = self.held.get(&path_id) else {
                continue;
            };
            if hold.epoch > 0 && self.leases.renew(&mut session.publisher, &keys).await? {
                continue;
            }
            let latest = self.epochs.get(&path_id).copied().unwrap_or_default();
            let epoch = self
                .leases
                .acquire(&mut session.publisher, &keys, latest)
                .await?;
            let Some(hold) = self.held.get_mut(&path_id) else {
                continue;
            };
            match epoch {
                Some(epoch) if epoch != hold.epoch => {
                    hold.epoch = epoch;
                    self.epochs.insert(path_id.clone(), epoch);
                    self.host.hold(&path_id, hold.key, epoch);
                }
                Some(_) => {}
                None if !hold.contested => {
                    hold.contested = true;
                    self.host.report(format!(
                        "cluster: path {path_id:?} is held by another server too; its server \
                         client's messages from here are dropped by the others"
                    ));
                }
                None => {}
            }
        }
        if Instant::now() >= self.watch_from {
            let watched: Vec<String> = self.watched.keys().cloned().collect();
            for path_id in watched {
                self.take_over(&path_id, session).await?;
            }
        }
        self.tend_presence(session).await
    }

    /// Refreshes this node's presence on its paths, and lets go of the held paths that no node
    /// has clients on any more.
    async fn tend_presence(&mut self, session: &mut Session) -> Result<(), RedisError> {
        let keys: Vec<String> = self
            .wanted
            .iter()
            .map(|path_id| self.names.presence(path_id))
            .collect();
        self.presence.mark(&mut session.publisher, &keys).await?;
        // After Redis comes back (perhaps empty), the other nodes get an entry's time to mark
        // their presence again before it counts as gone.
        if Instant::now() < self.watch_from {
            return Ok(());
        }
        let vacant: Vec<String> = self.vacant.iter().cloned().collect();
        for path_id in vacant {
            let key = self.names.presence(&path_id);
            let held = self.held.contains_key(&path_id);
            if !held
                || !self
                    .presence
                    .elsewhere(&mut session.publisher, &key)
                    .await?
            {
                self.vacant.remove(&path_id);
                self.host.vacated(&path_id);
            }
        }
        Ok(())
    }

    /// Takes a command while Redis is away: what is wanted is kept, publishes are dropped,
    /// and a new persisted path is served here.
    fn absorb(&mut self, command: Command) {
        match command {
            Command::Listen(path_id) => {
                self.wanted.insert(path_id);
            }
            Command::Unlisten(path_id) => {
                self.watched.remove(&path_id);
                self.epochs.remove(&path_id);
                self.vacant.remove(&path_id);
                self.wanted.remove(&path_id);
            }
            Command::VacantHere(path_id) => {
                self.vacant.insert(path_id);
            }
            Command::Acquire { path_id, key } => match self.held.get_mut(&path_id) {
                Some(hold) => {
                    hold.key = key;
                    self.host.hold(&path_id, key, hold.epoch);
                }
                None => self.decide_alone(path_id, key),
            },
            Command::Release { path_id, key } => {
                // Its lease expires on its own.
                if self.held.get(&path_id).is_some_and(|hold| hold.key == key) {
                    self.held.remove(&path_id);
                }
            }
            Command::Publish { .. } => {
                self.shared.queued.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }

    /// Waits `duration`, absorbing commands meanwhile; false once the handle is gone.
    async fn wait(&mut self, duration: Duration) -> bool {
        let pause = sleep(duration);
        tokio::pin!(pause);
        loop {
            tokio::select! {
                () = &mut pause => return true,
                command = self.commands.recv() => match command {
                    Some(command) => self.absorb(command),
                    None => return false,
                },
            }
        }
    }

    /// Counts a message from another node, and how long it took to arrive.
    fn received(&self, sent_at_micros: u64) {
        self.metrics.redis_received_total.inc();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_micros() as u64);
        // Clocks of different machines may disagree: a message from the future took no time.
        let lag = Duration::from_micros(now.saturating_sub(sent_at_micros));
        self.metrics.redis_lag_seconds.observe(lag);
    }

    fn receive(&mut self, message: &Msg) {
        let channel = message.get_channel_name();
        let Some(path_id) = self.names.path_id(channel) else {
            return self.host.report(format!(
                "cluster: dropped a message on unknown channel {channel:?}"
            ));
        };
        let bytes = message.get_payload_bytes();
        let decoded = envelope::decode(bytes);
        if decoded
            .as_ref()
            .is_ok_and(|envelope| envelope.origin() != self.node)
        {
            self.received(envelope::sent_at_micros(bytes));
        }
        match decoded {
            Ok(envelope) if envelope.origin() == self.node => {}
            Ok(Envelope::Relay {
                to, payload, from, ..
            }) => self.host.deliver(path_id, from, to, payload),
            Ok(Envelope::Resync { .. }) => self.host.resync(&[path_id.to_owned()]),
            Ok(Envelope::Server {
                epoch, to, payload, ..
            }) => {
                let latest = self.epochs.entry(path_id.to_owned()).or_default();
                // A holder that lost its lease without knowing it is not heard over its successor.
                if epoch >= *latest {
                    *latest = epoch;
                    self.host.deliver(path_id, "S", to, payload);
                }
            }
            Ok(Envelope::ToServer { payload, .. }) => {
                if self.held.contains_key(path_id) {
                    self.host.to_server(path_id, payload);
                }
            }
            Ok(Envelope::Released { .. }) => {
                if self.watched.contains_key(path_id) {
                    self.retry.push(path_id.to_owned());
                }
            }
            Err(malformed) => self.host.report(format!(
                "cluster: dropped {malformed} on Redis channel {channel:?}"
            )),
        }
    }
}

async fn flush(
    pipeline: &mut redis::Pipeline,
    session: &mut Session,
    metrics: &Metrics,
) -> Result<(), RedisError> {
    if pipeline.is_empty() {
        return Ok(());
    }
    let result = pipeline.query_async::<()>(&mut session.publisher).await;
    if result.is_ok() {
        metrics.redis_published_total.add(pipeline.len() as u64);
    }
    pipeline.clear();
    result
}

fn timed_out(what: &'static str) -> RedisError {
    RedisError::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("timed out {what}"),
    ))
}

fn closed() -> RedisError {
    RedisError::from(std::io::Error::new(
        std::io::ErrorKind::ConnectionReset,
        "the subscription connection closed",
    ))
}
