//! The whole N-API surface: `NativeServer`, which the JS wrapper drives. It converts arguments and
//! events and forwards to the hub; it decides nothing.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use connection_plane::{Heartbeat, Plane, Settings, UpgradeRules, DEFAULT_BACKLOG, NO_STATUS};
use napi::bindgen_prelude::{Buffer, Function};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{CleanupEnvHook, Env, Error, Result, Status};
use napi_derive::napi;
use relay_metrics::{DropReason, Family, Metrics, Plane as PlaneLabel};
use sync_core::protocol::fragment::unique_id;
use sync_core::router::{Access, Config, ConnId, Decision, Limits, PathKey, Router};

use crate::event::{Event, MessageData};
use crate::hub::Hub;
#[cfg(unix)]
use crate::hub::TakenSocket;
use crate::intake;

/// How `createWsServer` was called, as far as the native side needs to know.
#[napi(object)]
pub struct ServerOptions {
    /// `requestTimeoutSeconds`: fragment groups expire after it, startup holds after ten times it.
    pub request_timeout_seconds: f64,
    /// `fragmentSize` for the server clients' outbound messages.
    pub fragment_size: Option<f64>,
    /// Whether `createPersisterForPath` was given.
    pub has_factory: bool,
    /// Milliseconds between pings to an idle native socket; 0 turns the heartbeat off.
    pub heartbeat_interval_ms: f64,
    /// Pongs a native socket may miss in a row before it is dropped.
    pub heartbeat_misses: u32,
    /// Joins a cluster of servers relaying through this Redis (`redis://` or `rediss://`).
    pub cluster_redis: Option<String>,
    /// Names the cluster's channels and keys in Redis (default `tinybase`).
    pub cluster_prefix: Option<String>,
    /// Whether each legacy connection and each channel waits for an `authorized` decision.
    pub authorizing: bool,
    pub max_clients_per_path: Option<u32>,
    pub max_messages_per_second: Option<f64>,
    /// How long a persisted path stays loaded after its last client leaves; 0 stops it at once.
    pub keep_path_seconds: f64,
}

/// One event for the JS side; `kind` says which fields are set.
#[napi(object)]
pub struct HubEvent {
    pub kind: String,
    pub conn: Option<i64>,
    pub path: Option<i64>,
    pub path_id: Option<String>,
    pub client_id: Option<String>,
    pub change: Option<i32>,
    pub code: Option<u32>,
    /// The path generations of a `stopPaths` event.
    pub paths: Option<Vec<i64>>,
    /// The payload, reason, error message or message data.
    pub text: Option<String>,
    /// A socket error's ws code, e.g. `WS_ERR_INVALID_UTF8`.
    pub error_code: Option<String>,
    /// Whether ws raises that socket error as a `RangeError` (else as an `Error`).
    pub range_error: Option<bool>,
    /// A binary message's bytes (a text message comes as `text`).
    pub binary: Option<Buffer>,
    /// What an `authorize` event's answer quotes.
    pub ticket: Option<i64>,
    pub channel_id: Option<String>,
    /// A `connection` event's socket, now JS's to own.
    pub fd: Option<i32>,
}

/// Where and what the plane is to answer with the `listen` option.
#[napi(object)]
pub struct ListenOptions {
    pub port: u32,
    /// As Node's `listen`: every address when absent.
    pub host: Option<String>,
    /// As Node's `listen`: connections waiting to be accepted, 511 by default.
    pub backlog: Option<u32>,
    /// False when the WebSocketServer's options leave every upgrade to ws.
    pub answers: bool,
    /// The WebSocketServer's `path` option.
    pub path: Option<String>,
    /// Whether the WebSocketServer negotiates permessage-deflate.
    pub deflate: bool,
    /// Whether the WebSocketServer has `handleProtocols`.
    pub handles_protocols: bool,
}

/// The address listened on, as Node's `server.address()` gives it, or, for a listen that
/// failed with an OS error, its errno, for JS to raise as Node raises its own.
#[napi(object)]
pub struct Listened {
    pub address: Option<String>,
    pub family: Option<String>,
    pub port: Option<u32>,
    pub errno: Option<i32>,
}

/// A connection `ws` accepted: the path it asked for and its client id (`sec-websocket-key`).
#[napi(object)]
pub struct Accepted {
    pub path_id: String,
    pub client_id: String,
    /// Whether it negotiated the `tinybase` subprotocol (multiplexed channels).
    pub multiplexed: bool,
    /// The HTTP response that completes the upgrade, when the plane is to write it: the upgrade
    /// was taken from `ws` before it answered.
    pub response: Option<String>,
}

/// One metric as read now: its name without a prefix, and every series it has.
#[napi(object)]
pub struct MetricFamily {
    pub name: String,
    pub help: String,
    /// `counter`, `gauge` or `histogram`.
    pub kind: String,
    pub series: Vec<MetricSeries>,
}

#[napi(object)]
pub struct MetricSeries {
    /// `_bucket`, `_sum` or `_count` for a histogram's series, else empty.
    pub suffix: String,
    pub labels: Vec<MetricLabel>,
    pub value: f64,
}

#[napi(object)]
pub struct MetricLabel {
    pub name: String,
    pub value: String,
}

type Wake = ThreadsafeFunction<(), (), (), Status, false, true>;

/// The native half of one `createWsServer`.
#[napi]
pub struct NativeServer {
    hub: Arc<Hub>,
    metrics: Arc<Metrics>,
    /// Referenced (keeping Node alive) exactly while native sockets are open, as open `ws`
    /// sockets would.
    wake: Arc<Mutex<Wake>>,
    cleanup: Option<CleanupEnvHook<Arc<Hub>>>,
}

#[napi]
impl NativeServer {
    /// `wake` is called, with no arguments, whenever events are waiting for `drain()`.
    #[napi(constructor, catch_unwind)]
    pub fn new(env: Env, options: ServerOptions, wake: Function<(), ()>) -> Result<Self> {
        let wake: Wake = wake
            .build_threadsafe_function()
            .callee_handled::<false>()
            .weak::<true>()
            .build()?;
        let wake = Arc::new(Mutex::new(wake));
        let request_timeout = Duration::try_from_secs_f64(options.request_timeout_seconds.max(0.0))
            .map_err(|error| Error::new(Status::InvalidArg, error.to_string()))?;
        let keep_warm = Duration::try_from_secs_f64(options.keep_path_seconds).map_err(|_| {
            Error::new(
                Status::InvalidArg,
                format!(
                    "keepPathSeconds must be a finite number of seconds, 0 or more, not {}",
                    options.keep_path_seconds
                ),
            )
        })?;
        let router = Router::new(Config {
            request_timeout,
            fragment_size: options.fragment_size,
            has_factory: options.has_factory,
            message_id: Box::new(|| unique_id(rand::random())),
            limits: Limits {
                authorizing: options.authorizing,
                max_clients_per_path: options.max_clients_per_path.map(|max| max as usize),
                max_messages_per_second: options.max_messages_per_second,
            },
            keep_warm,
        });
        let heartbeat = (options.heartbeat_interval_ms > 0.0).then(|| Heartbeat {
            interval: Duration::from_secs_f64(options.heartbeat_interval_ms / 1000.0),
            allowed_misses: options.heartbeat_misses,
        });
        let plane = Plane::new(Settings {
            heartbeat,
            ..Settings::default()
        })
        .map_err(|error| Error::from_reason(format!("cannot start the native plane: {error}")))?;
        let cluster = options.cluster_redis.map(|url| cluster::Config {
            url,
            prefix: options
                .cluster_prefix
                .unwrap_or_else(|| cluster::DEFAULT_PREFIX.to_owned()),
        });
        let waker = wake.clone();
        let metrics = Arc::new(Metrics::default());
        let hub = Hub::new(
            router,
            plane,
            cluster,
            Box::new(move || {
                if let Ok(wake) = waker.lock() {
                    wake.call((), ThreadsafeFunctionCallMode::NonBlocking);
                }
            }),
            metrics.clone(),
        )
        .map_err(|error| Error::new(Status::InvalidArg, error))?;
        // A worker thread or process that ends without destroy() must still stop the plane, and
        // at once: the JS thread is exiting and its sockets are going anyway.
        let cleanup = env.add_env_cleanup_hook(hub.clone(), |hub| hub.shutdown_now())?;
        Ok(NativeServer {
            hub,
            metrics,
            wake,
            cleanup: Some(cleanup),
        })
    }

    /// Takes over an upgraded plain TCP socket: `fd` is Node's (the plane works on a duplicate),
    /// `head` the bytes Node had already read from it.
    #[napi(catch_unwind)]
    pub fn adopt(
        &mut self,
        env: Env,
        conn: i64,
        fd: i32,
        head: Buffer,
        accepted: Accepted,
    ) -> Result<Vec<HubEvent>> {
        #[cfg(unix)]
        {
            let events = self
                .hub
                .adopt(
                    conn_id(conn),
                    TakenSocket {
                        fd,
                        head: head.to_vec(),
                        response: accepted.response.map(String::into_bytes),
                    },
                    &accepted.path_id,
                    &accepted.client_id,
                    accepted.multiplexed,
                )
                .map_err(|error| {
                    Error::from_reason(format!("cannot take the socket over: {error}"))
                })?;
            self.native_opened(&env)?;
            Ok(to_js(events))
        }
        #[cfg(not(unix))]
        {
            let _ = (env, conn, fd, head, accepted);
            Err(Error::from_reason(
                "socket takeover needs a Unix file descriptor",
            ))
        }
    }

    /// `ws` is about to answer an upgrade for `path_id` with a 101: native input for that path
    /// waits until `joined`, so the new client is on it before anything processed after its
    /// handshake completed.
    #[napi(catch_unwind)]
    pub fn joining(&self, path_id: String) {
        self.hub.joining(&path_id);
    }

    /// The connection announced by `joining` is registered, or will not come.
    #[napi(catch_unwind)]
    pub fn joined(&self, path_id: String) -> Vec<HubEvent> {
        to_js(self.hub.joined(&path_id))
    }

    /// Registers a socket that stays in JS.
    #[napi(catch_unwind)]
    pub fn open_js(&self, conn: i64, accepted: Accepted) -> Vec<HubEvent> {
        to_js(self.hub.open_js(
            conn_id(conn),
            &accepted.path_id,
            &accepted.client_id,
            accepted.multiplexed,
        ))
    }

    /// A payload arrived on a JS-plane socket.
    #[napi(catch_unwind)]
    pub fn receive_js(&self, conn: i64, payload: String) -> Vec<HubEvent> {
        to_js(self.hub.receive_js(conn_id(conn), &payload))
    }

    /// A JS-plane socket closed with `code`, as ws reported it.
    #[napi(catch_unwind)]
    pub fn close_js(&self, conn: i64, code: u32) -> Vec<HubEvent> {
        let code = u16::try_from(code).unwrap_or(u16::MAX);
        to_js(self.hub.close_js(conn_id(conn), code))
    }

    /// A JS-plane socket's backlog went over the limit (JS applies it, knowing `bufferedAmount`):
    /// the message is dropped and the socket closed.
    #[napi(catch_unwind)]
    pub fn js_slow_consumer(&self) {
        self.metrics.slow_consumer_closes_total[PlaneLabel::Js].inc();
        self.metrics.messages_dropped_total[DropReason::Overflow].inc();
    }

    /// A path's persister and server client took `seconds` to start.
    #[napi(catch_unwind)]
    pub fn persister_started(&self, seconds: f64) {
        self.metrics.persister_started(duration(seconds));
    }

    /// A path's persister and server client took `seconds` to stop.
    #[napi(catch_unwind)]
    pub fn persister_stopped(&self, seconds: f64) {
        self.metrics.persister_stopped(duration(seconds));
    }

    /// Every metric as it stands, read without pausing the relay.
    #[napi(catch_unwind)]
    pub fn metrics(&self) -> Vec<MetricFamily> {
        self.metrics
            .read()
            .into_iter()
            .map(MetricFamily::from)
            .collect()
    }

    /// The server client of `path` sends `remainder` to `to_client_id` (null: everyone).
    #[napi(catch_unwind)]
    pub fn server_send(
        &self,
        path: i64,
        to_client_id: Option<String>,
        remainder: String,
    ) -> Vec<HubEvent> {
        to_js(
            self.hub
                .server_send(path_key(path), to_client_id.as_deref(), &remainder),
        )
    }

    /// The user's `authorize` decided, for the connection or channel of an `authorize` event:
    /// `"write"`, `"read"`, or anything else to deny.
    #[napi(catch_unwind)]
    pub fn authorized(
        &self,
        conn: i64,
        ticket: i64,
        channel_id: Option<String>,
        decision: String,
    ) -> Vec<HubEvent> {
        let decision = match decision.as_str() {
            "write" => Decision::Grant(Access::Write),
            "read" => Decision::Grant(Access::Read),
            _ => Decision::Deny,
        };
        to_js(self.hub.authorized(
            conn_id(conn),
            ticket as u64,
            channel_id.as_deref(),
            decision,
        ))
    }

    /// The server client of `path` has settled what it was handed (its persister has caught
    /// up): it may be handed more.
    #[napi(catch_unwind)]
    pub fn server_settled(&self, path: i64) -> Vec<HubEvent> {
        to_js(self.hub.server_settled(path_key(path)))
    }

    #[napi(catch_unwind)]
    pub fn path_ready(&self, path: i64, has_server_client: bool) -> Vec<HubEvent> {
        to_js(self.hub.path_ready(path_key(path), has_server_client))
    }

    #[napi(catch_unwind)]
    pub fn path_failed(&self, path: i64) -> Vec<HubEvent> {
        to_js(self.hub.path_failed(path_key(path)))
    }

    /// The persister factory was called for `path`: subscriptions to it are acknowledged.
    #[napi(catch_unwind)]
    pub fn factory_called(&self, path: i64) -> Vec<HubEvent> {
        to_js(self.hub.factory_called(path_key(path)))
    }

    /// Every event waiting for JS, for an API read to see all a client may have seen.
    #[napi(catch_unwind)]
    pub fn take_all(&self) -> Vec<HubEvent> {
        to_js(self.hub.take_all())
    }

    #[napi(catch_unwind)]
    pub fn path_stopped(&self, path: i64) -> Vec<HubEvent> {
        to_js(self.hub.path_stopped(path_key(path)))
    }

    /// `destroy()` began: every path stops now, as TinyBase stops them, not as clients leave.
    #[napi(catch_unwind)]
    pub fn stop_all(&self) -> Vec<HubEvent> {
        to_js(self.hub.stop_all())
    }

    /// Up to `max` of the events queued by the native plane since the last call, oldest first.
    #[napi(catch_unwind)]
    pub fn drain(&self, env: Env, max: u32) -> Result<Vec<HubEvent>> {
        let events = self.hub.drain(max as usize);
        // The count falls only as JS is handed closes, and every handing is followed by a call
        // here: the last close is seen before Node is let go.
        if !self.hub.keeps_node_alive() {
            #[allow(deprecated)] // napi 3 has no other way to unref a live function
            lock_wake(&self.wake).unref(&env)?;
        }
        Ok(to_js(events))
    }

    /// Listens as the `listen` option asks: the plane answers the upgrades it can, and hands
    /// every other connection over as a `connection` event. Node stays alive while it listens.
    #[napi(catch_unwind)]
    pub fn listen(&self, env: Env, options: ListenOptions) -> Result<Listened> {
        let port = u16::try_from(options.port).map_err(|_| {
            Error::new(
                Status::InvalidArg,
                format!("listen.port must be 0 to 65535, not {}", options.port),
            )
        })?;
        let rules = UpgradeRules {
            path: options.path,
            deflate: options.deflate,
            handles_protocols: options.handles_protocols,
        };
        let listened = intake::addresses(options.host.as_deref(), port).and_then(|addresses| {
            let backlog = options.backlog.unwrap_or(DEFAULT_BACKLOG);
            self.hub.listen(&addresses, backlog, rules, options.answers)
        });
        let address = match listened {
            Ok(address) => address,
            Err(error) => {
                return match error.raw_os_error() {
                    Some(errno) => Ok(Listened {
                        address: None,
                        family: None,
                        port: None,
                        errno: Some(errno),
                    }),
                    None => Err(Error::from_reason(format!("cannot listen: {error}"))),
                }
            }
        };
        self.native_opened(&env)?;
        Ok(Listened {
            address: Some(address.ip().to_string()),
            family: Some(if address.is_ipv6() { "IPv6" } else { "IPv4" }.to_owned()),
            port: Some(address.port().into()),
            errno: None,
        })
    }

    /// Hands every connection accepted from now on to Node, as the server is being destroyed.
    #[napi(catch_unwind)]
    pub fn stop_answering(&self) {
        self.hub.stop_answering();
    }

    /// Sends a text frame on a native socket (its facade's `send`). False if it is gone.
    #[napi(catch_unwind)]
    pub fn send_native(&self, conn: i64, data: String) -> bool {
        self.hub
            .native(conn_id(conn), |connection| {
                // Over the backlog limit a facade send is dropped, as ws would buffer without end.
                connection.send(data.into()).is_ok()
            })
            .unwrap_or(false)
    }

    /// Sends a binary frame on a native socket (its facade's `send` of binary data). False if it
    /// is gone or over the backlog limit.
    #[napi(catch_unwind)]
    pub fn send_native_binary(&self, conn: i64, data: Buffer) -> bool {
        self.hub
            .native(conn_id(conn), |connection| {
                connection.send_binary(data.to_vec().into()).is_ok()
            })
            .unwrap_or(false)
    }

    /// Starts the close handshake on a native socket; without a `code`, with a Close that has no
    /// status. False when `code` may not be sent, for the facade to throw as ws's `close()` does.
    #[napi(catch_unwind)]
    pub fn close_native(&self, conn: i64, code: Option<f64>, reason: String) -> bool {
        let code = match code {
            None => NO_STATUS,
            // 1005 only stands for an absent status: given as a code, ws refuses it.
            Some(code) if code != f64::from(NO_STATUS) && (0.0..=65535.0).contains(&code) => {
                code as u16
            }
            Some(_) => return false,
        };
        // A connection that has ended is closed already, whatever the code.
        self.hub
            .native(conn_id(conn), |connection| {
                connection.close(code, &reason).is_ok()
            })
            .unwrap_or(true)
    }

    /// Pings a native socket (its facade's `ping()`); a `pong` event answers.
    #[napi(catch_unwind)]
    pub fn ping_native(&self, conn: i64, data: Buffer) {
        self.hub.ping(conn_id(conn), data.to_vec());
    }

    /// Stops or restarts reading a native socket (its facade's `pause()` and `resume()`).
    #[napi(catch_unwind)]
    pub fn set_paused(&self, conn: i64, paused: bool) {
        self.hub.set_user_paused(conn_id(conn), paused);
    }

    /// Drops a native socket at once.
    #[napi(catch_unwind)]
    pub fn terminate_native(&self, conn: i64) {
        self.hub
            .native(conn_id(conn), |connection| connection.terminate());
    }

    /// Bytes queued on a native socket and not yet written.
    #[napi(catch_unwind)]
    pub fn buffered_amount(&self, conn: i64) -> u32 {
        self.hub
            .native(conn_id(conn), |connection| connection.buffered_amount())
            .map_or(0, |amount| u32::try_from(amount).unwrap_or(u32::MAX))
    }

    /// Mirrors a native socket's inbound messages to JS (its facade has `'message'` listeners).
    #[napi(catch_unwind)]
    pub fn set_mirrored(&self, conn: i64, mirrored: bool) {
        self.hub.set_mirrored(conn_id(conn), mirrored);
    }

    /// Stops the native plane; every native socket still open is dropped. Idempotent.
    #[napi(catch_unwind)]
    pub fn shutdown(&mut self, env: Env) -> Result<()> {
        self.hub.shutdown();
        if let Some(cleanup) = self.cleanup.take() {
            env.remove_env_cleanup_hook(cleanup)?;
        }
        #[allow(deprecated)] // napi 3 has no other way to unref a live function
        lock_wake(&self.wake).unref(&env)
    }
}

impl NativeServer {
    fn native_opened(&self, env: &Env) -> Result<()> {
        #[allow(deprecated)] // napi 3 has no other way to ref a live function
        lock_wake(&self.wake).refer(env)
    }
}

fn lock_wake(wake: &Mutex<Wake>) -> std::sync::MutexGuard<'_, Wake> {
    wake.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

// JS numbers carry ids exactly up to 2^53, far beyond what one process allocates.
fn conn_id(conn: i64) -> ConnId {
    ConnId(conn as u64)
}

fn path_key(path: i64) -> PathKey {
    PathKey(path as u64)
}

/// A duration JS measured; a negative or non-finite one (a clock gone backwards) counts as zero.
fn duration(seconds: f64) -> Duration {
    Duration::try_from_secs_f64(seconds).unwrap_or_default()
}

impl From<Family> for MetricFamily {
    fn from(family: Family) -> MetricFamily {
        MetricFamily {
            name: family.name.to_owned(),
            help: family.help.to_owned(),
            kind: family.kind.as_str().to_owned(),
            series: family
                .series
                .into_iter()
                .map(|series| MetricSeries {
                    suffix: series.suffix.to_owned(),
                    labels: series
                        .labels
                        .into_iter()
                        .map(|(name, value)| MetricLabel {
                            name: name.to_owned(),
                            value,
                        })
                        .collect(),
                    value: series.value,
                })
                .collect(),
        }
    }
}

/// Hands a socket's fd to JS, which owns it from then on.
#[cfg(unix)]
fn socket_fd(socket: std::net::TcpStream) -> Option<i32> {
    use std::os::fd::IntoRawFd;
    Some(socket.into_raw_fd())
}

/// Nothing listens where sockets are not fds, so there is no socket to hand over.
#[cfg(not(unix))]
fn socket_fd(_socket: std::net::TcpStream) -> Option<i32> {
    None
}

fn to_js(events: Vec<Event>) -> Vec<HubEvent> {
    events.into_iter().map(HubEvent::from).collect()
}

impl HubEvent {
    fn new(kind: &str) -> HubEvent {
        HubEvent {
            kind: kind.to_owned(),
            conn: None,
            path: None,
            paths: None,
            path_id: None,
            client_id: None,
            change: None,
            code: None,
            text: None,
            error_code: None,
            range_error: None,
            binary: None,
            ticket: None,
            channel_id: None,
            fd: None,
        }
    }
}

impl From<Event> for HubEvent {
    fn from(event: Event) -> HubEvent {
        match event {
            Event::Upgraded { conn } => HubEvent {
                conn: Some(conn.0 as i64),
                ..HubEvent::new("upgraded")
            },
            Event::Connection { socket } => HubEvent {
                fd: socket_fd(socket),
                ..HubEvent::new("connection")
            },
            Event::ClientIds {
                path_id,
                client_id,
                change,
            } => HubEvent {
                path_id: Some(path_id),
                client_id: Some(client_id),
                change: Some(change.into()),
                ..HubEvent::new("clientIds")
            },
            Event::PathIds { path_id, change } => HubEvent {
                path_id: Some(path_id),
                change: Some(change.into()),
                ..HubEvent::new("pathIds")
            },
            Event::StartPath { path, path_id } => HubEvent {
                path: Some(path.0 as i64),
                path_id: Some(path_id),
                ..HubEvent::new("startPath")
            },
            Event::StopPath { path } => HubEvent {
                path: Some(path.0 as i64),
                ..HubEvent::new("stopPath")
            },
            Event::StopPaths { paths } => HubEvent {
                paths: Some(paths.into_iter().map(|path| path.0 as i64).collect()),
                ..HubEvent::new("stopPaths")
            },
            Event::ToServer { path, payload } => HubEvent {
                path: Some(path.0 as i64),
                text: Some(payload),
                ..HubEvent::new("toServer")
            },
            Event::Error { message } => HubEvent {
                text: Some(message),
                ..HubEvent::new("error")
            },
            Event::Send { conn, payload } => HubEvent {
                conn: Some(conn.0 as i64),
                text: Some(payload.as_str().to_owned()),
                ..HubEvent::new("send")
            },
            Event::Close { conn, code, reason } => HubEvent {
                conn: Some(conn.0 as i64),
                code: Some(code.into()),
                text: Some(reason),
                ..HubEvent::new("close")
            },
            Event::Closed { conn, code, reason } => HubEvent {
                conn: Some(conn.0 as i64),
                code: Some(code.into()),
                text: Some(reason),
                ..HubEvent::new("closed")
            },
            Event::Pong { conn, data } => HubEvent {
                conn: Some(conn.0 as i64),
                text: Some(data),
                ..HubEvent::new("pong")
            },
            Event::Message {
                conn,
                data: MessageData::Text(text),
            } => HubEvent {
                conn: Some(conn.0 as i64),
                text: Some(text),
                ..HubEvent::new("message")
            },
            Event::Message {
                conn,
                data: MessageData::Binary(bytes),
            } => HubEvent {
                conn: Some(conn.0 as i64),
                binary: Some(bytes.into()),
                ..HubEvent::new("message")
            },
            Event::Authorize {
                conn,
                ticket,
                path_id,
                client_id,
                channel_id,
            } => HubEvent {
                conn: Some(conn.0 as i64),
                ticket: Some(ticket as i64),
                path_id: Some(path_id),
                client_id: Some(client_id),
                channel_id,
                ..HubEvent::new("authorize")
            },
            Event::SocketError { conn, error } => HubEvent {
                conn: Some(conn.0 as i64),
                text: Some(error.message),
                error_code: Some(error.code.to_owned()),
                range_error: Some(error.range_error),
                ..HubEvent::new("socketError")
            },
        }
    }
}
