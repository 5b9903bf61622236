//! The node's link to Redis: one task that owns a publishing connection and a subscribing one,
//! takes the hub's commands in order, and hands what other nodes publish to the host. When Redis
//! goes away it reports that once, keeps absorbing commands (dropping what it cannot publish),
//! reconnects with backoff, listens again to every path the node has clients on, and asks every
//! node to resync those paths.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{MultiplexedConnection, PubSubSink, PubSubStream};
use redis::{AsyncConnectionConfig, Msg, RedisError};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::{interval, sleep, timeout, MissedTickBehavior};

use crate::envelope::{self, Envelope};
use crate::node::NodeId;
use crate::{Channels, Host};

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
    pub(crate) channels: Channels,
    pub(crate) node: NodeId,
    pub(crate) host: Arc<dyn Host>,
    pub(crate) commands: UnboundedReceiver<Command>,
    pub(crate) shared: Arc<Shared>,
    /// Paths this node has clients on.
    pub(crate) wanted: HashSet<String>,
    /// An outage was reported and Redis has not answered since.
    pub(crate) reported: bool,
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
                    Some(message) => self.receive(&message),
                    None => return End::Lost(closed()),
                },
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
                .map(|path_id| self.channels.path(path_id))
                .collect();
            session.subscriber.subscribe(channels).await?;
        }
        self.reported = false;
        self.shared.gap.store(false, Ordering::Release);
        if resync {
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
                .arg(self.channels.path(path_id))
                .arg(&resync)
                .ignore();
        }
        pipeline.query_async::<()>(&mut session.publisher).await
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
            Ok(()) => flush(&mut pipeline, session).await,
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
                    .arg(self.channels.path(&path_id))
                    .arg(bytes)
                    .ignore();
            }
            Command::Listen(path_id) => {
                flush(pipeline, session).await?;
                let channel = self.channels.path(&path_id);
                if self.wanted.insert(path_id) {
                    session.subscriber.subscribe(channel).await?;
                }
            }
            Command::Unlisten(path_id) => {
                flush(pipeline, session).await?;
                if self.wanted.remove(&path_id) {
                    session
                        .subscriber
                        .unsubscribe(self.channels.path(&path_id))
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// Takes a command while Redis is away: what is wanted is kept, publishes are dropped.
    fn absorb(&mut self, command: Command) {
        match command {
            Command::Listen(path_id) => {
                self.wanted.insert(path_id);
            }
            Command::Unlisten(path_id) => {
                self.wanted.remove(&path_id);
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

    fn receive(&self, message: &Msg) {
        let channel = message.get_channel_name();
        let Some(path_id) = self.channels.path_id(channel) else {
            return self.host.report(format!(
                "cluster: dropped a message on unknown channel {channel:?}"
            ));
        };
        match envelope::decode(message.get_payload_bytes()) {
            Ok(envelope) if envelope.origin() == self.node => {}
            Ok(Envelope::Relay {
                to, payload, from, ..
            }) => self.host.deliver(path_id, from, to, payload),
            Ok(Envelope::Resync { .. }) => self.host.resync(&[path_id.to_owned()]),
            Err(malformed) => self.host.report(format!(
                "cluster: dropped {malformed} on Redis channel {channel:?}"
            )),
        }
    }
}

async fn flush(pipeline: &mut redis::Pipeline, session: &mut Session) -> Result<(), RedisError> {
    if pipeline.is_empty() {
        return Ok(());
    }
    let result = pipeline.query_async::<()>(&mut session.publisher).await;
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
