//! Steady message flows over groups of clients sharing a path: fan-out,
//! many paths, large messages and the persisted-path variant of fan-out.
//!
//! Every client broadcasts to the others on its path. A run has three phases:
//! connect everyone, make sure every client hears every other (so no message
//! is lost to a peer the server has not registered yet), then send for the
//! warm-up plus the measured interval. Only deliveries received inside the
//! measured interval count.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch, Notify, Semaphore};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;

use crate::conn::{self, Stream};
use crate::stats::{self, Errors};
use crate::wire::{self, Tag};

pub struct FlowSpec {
    pub name: String,
    /// Servers the clients are spread over, in turn: several for a cluster.
    pub urls: Vec<String>,
    pub paths: usize,
    pub clients_per_path: usize,
    pub pacing: Pacing,
    pub body: Body,
    pub duration: Duration,
    pub warmup: Duration,
}

/// What each load message carries.
#[derive(Clone)]
pub enum Body {
    /// Small `ContentHashes` messages.
    Hashes,
    /// One `ContentDiff` body, the same every time.
    Diff(Arc<str>),
    /// A `ContentDiff` per message that sets the sender's own cell again, as a TinyBase client
    /// writing steadily would: a server client applies and saves every one.
    CellWrites,
}

pub enum Pacing {
    /// Each sender keeps at most this many messages not yet delivered to all
    /// of its peers: a closed loop that finds the server's throughput.
    Window(u64),
    /// Each sender sends this many messages a second: an open loop that shows
    /// latency at a fixed offered load.
    Rate(f64),
}

/// Handshakes in flight at once while setting up; the storm scenario is the
/// one that measures connecting, so the others should not turn into one.
const CONNECT_CONCURRENCY: usize = 64;
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// Readiness pings still missing after this long are sent again. Longer than
/// a persisting server takes to start a path (about a second, while it holds
/// messages back), so a re-send means a ping was lost, not held.
const READY_RESEND: Duration = Duration::from_secs(2);
const CLOSE_GRACE: Duration = Duration::from_secs(2);

struct Shared {
    epoch: Instant,
    /// Per sender: deliveries of its messages seen by any receiver.
    delivered: Vec<AtomicU64>,
    progress: Vec<Notify>,
    /// Distinct (receiver, sender) pairs of readiness pings seen.
    ready_seen: AtomicUsize,
    measure_from_us: AtomicU64,
    measure_to_us: AtomicU64,
}

impl Shared {
    fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    fn in_window(&self, at_us: u64) -> bool {
        at_us >= self.measure_from_us.load(Ordering::Relaxed)
            && at_us < self.measure_to_us.load(Ordering::Relaxed)
    }
}

struct ReaderStats {
    /// Peers this client has had a readiness ping from.
    ready_from: HashSet<usize>,
    delivered: u64,
    bytes: u64,
    latency: Histogram<u64>,
    server_messages: u64,
    foreign_messages: u64,
    errors: Errors,
}

pub async fn run(spec: FlowSpec) -> Result<Value, String> {
    let group = spec.clients_per_path;
    if group < 2 || spec.paths == 0 {
        return Err("each path needs at least two clients".into());
    }
    let total = spec.paths * group;
    let sockets = connect_all(&spec, total).await?;

    let shared = Arc::new(Shared {
        epoch: Instant::now(),
        delivered: (0..total).map(|_| AtomicU64::new(0)).collect(),
        progress: (0..total).map(|_| Notify::new()).collect(),
        ready_seen: AtomicUsize::new(0),
        measure_from_us: AtomicU64::new(u64::MAX),
        measure_to_us: AtomicU64::new(u64::MAX),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut queues = Vec::with_capacity(total);
    let mut writers = Vec::with_capacity(total);
    let mut readers = Vec::with_capacity(total);
    for (sink, stream) in sockets {
        let (queue_tx, queue_rx) = mpsc::unbounded_channel();
        writers.push(tokio::spawn(conn::write_loop(
            sink,
            queue_rx,
            stop_rx.clone(),
        )));
        readers.push(tokio::spawn(read_loop(
            stream,
            queue_tx.clone(),
            shared.clone(),
            stop_rx.clone(),
        )));
        queues.push(queue_tx);
    }

    let ready_started = Instant::now();
    let ready_deadline = ready_started + READY_TIMEOUT;
    let ready_expected = total * (group - 1);
    let mut ready_rounds = 0;
    let ready_complete = loop {
        for (index, queue) in queues.iter().enumerate() {
            let _ = queue.send(Message::text(wire::ready(index)));
        }
        ready_rounds += 1;
        let round_end = (Instant::now() + READY_RESEND).min(ready_deadline);
        if wait_until(round_end, || {
            shared.ready_seen.load(Ordering::Relaxed) >= ready_expected
        })
        .await
        {
            break true;
        }
        if Instant::now() >= ready_deadline {
            break false;
        }
    };
    let ready_ms = ready_started.elapsed().as_secs_f64() * 1000.0;

    let start = Instant::now();
    let measure_from = start + spec.warmup;
    let measure_to = measure_from + spec.duration;
    let offset_us = |at: Instant| (at - shared.epoch).as_micros() as u64;
    shared
        .measure_from_us
        .store(offset_us(measure_from), Ordering::Relaxed);
    shared
        .measure_to_us
        .store(offset_us(measure_to), Ordering::Relaxed);
    let senders: Vec<_> = queues
        .into_iter()
        .enumerate()
        .map(|(index, queue)| {
            let sender = Sender {
                index,
                queue,
                shared: shared.clone(),
                peers: (group - 1) as u64,
                body: spec.body.clone(),
            };
            let plan = match spec.pacing {
                Pacing::Window(window) => Plan::Window(window.max(1)),
                Pacing::Rate(rate) => {
                    let period = Duration::from_secs_f64(1.0 / rate.max(1e-3));
                    // Spread the first sends evenly so the offered load is
                    // steady rather than one burst per period.
                    Plan::Rate {
                        period,
                        first: start + period.mul_f64(index as f64 / total as f64),
                    }
                }
            };
            tokio::spawn(sender.run(plan, measure_to))
        })
        .collect();

    // The markers let the harness sample the server over exactly the
    // measured interval.
    tokio::time::sleep_until(measure_from).await;
    eprintln!("MEASURE");
    let cpu_from = stats::own_cpu_seconds();
    tokio::time::sleep_until(measure_to).await;
    eprintln!("DONE");
    let cpu_used = stats::own_cpu_seconds() - cpu_from;

    let mut sent = 0;
    for sender in senders {
        sent += sender.await.map_err(|error| format!("sender: {error}"))?;
    }
    let _ = stop_tx.send(true);
    let mut errors = Errors::default();
    for writer in writers {
        if let Ok(Err(error)) = writer.await {
            errors.add(error);
        }
    }
    let mut delivered = 0;
    let mut bytes = 0;
    let mut server_messages = 0;
    let mut foreign_messages = 0;
    let mut latency = stats::latency_histogram();
    for reader in readers {
        let reader = reader.await.map_err(|error| format!("reader: {error}"))?;
        delivered += reader.delivered;
        bytes += reader.bytes;
        server_messages += reader.server_messages;
        foreign_messages += reader.foreign_messages;
        latency
            .add(&reader.latency)
            .map_err(|error| format!("histogram: {error}"))?;
        errors.merge(reader.errors);
    }

    let seconds = spec.duration.as_secs_f64();
    let expected = sent * (group as u64 - 1);
    Ok(json!({
        "scenario": spec.name,
        "paths": spec.paths,
        "clients_per_path": group,
        "connections": total,
        "pacing": match spec.pacing {
            Pacing::Window(window) => json!({"window_per_sender": window}),
            Pacing::Rate(rate) => json!({"offered_per_s": rate * total as f64}),
        },
        "message_type": match spec.body { Body::Hashes => "ContentHashes", _ => "ContentDiff" },
        "body_bytes": match &spec.body {
            Body::Hashes => 5,
            Body::Diff(body) => body.len(),
            Body::CellWrites => wire::load_cell_write(0, 0, 0).len(),
        },
        "ready_complete": ready_complete,
        "ready_rounds": ready_rounds,
        "ready_seen": shared.ready_seen.load(Ordering::Relaxed),
        "ready_expected": ready_expected,
        "ready_ms": ready_ms,
        "warmup_s": spec.warmup.as_secs_f64(),
        "duration_s": seconds,
        "sent": sent,
        "sent_per_s": sent as f64 / seconds,
        "delivered": delivered,
        "delivered_per_s": delivered as f64 / seconds,
        "delivery_ratio": if expected > 0 { delivered as f64 / expected as f64 } else { 0.0 },
        "mb_per_s": bytes as f64 / seconds / 1e6,
        "latency_ms": stats::latency_json(&latency),
        "loadgen_cpu_s": cpu_used,
        "loadgen_cores": cpu_used / seconds,
        "loadgen_peak_rss_kib": stats::own_peak_rss_kib(),
        "server_messages": server_messages,
        "foreign_messages": foreign_messages,
        "errors": errors.to_json(),
    }))
}

async fn connect_all(spec: &FlowSpec, total: usize) -> Result<Vec<(conn::Sink, Stream)>, String> {
    let permits = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    let pending: Vec<_> = (0..total)
        .map(|index| {
            let url = spec.urls[index % spec.urls.len()].clone();
            let path = format!("{}-{}", spec.name, index / spec.clients_per_path);
            let permits = permits.clone();
            tokio::spawn(async move {
                let _permit = permits.acquire_owned().await;
                conn::connect(&url, &path).await
            })
        })
        .collect();
    let mut sockets = Vec::with_capacity(total);
    for (index, socket) in pending.into_iter().enumerate() {
        let socket = socket
            .await
            .map_err(|error| format!("connect task: {error}"))?;
        sockets.push(socket.map_err(|error| format!("client {index}: {error}"))?);
    }
    Ok(sockets)
}

async fn wait_until(deadline: Instant, done: impl Fn() -> bool) -> bool {
    while !done() {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    true
}

async fn read_loop(
    mut stream: Stream,
    queue: mpsc::UnboundedSender<Message>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> ReaderStats {
    let mut stats = ReaderStats {
        ready_from: HashSet::new(),
        delivered: 0,
        bytes: 0,
        latency: stats::latency_histogram(),
        server_messages: 0,
        foreign_messages: 0,
        errors: Errors::default(),
    };
    loop {
        tokio::select! {
            // Checked first: once stopping, the server's answer to our close
            // frame is expected and must not be counted as a failure.
            biased;
            _ = conn::stopped(&mut stop) => break,
            next = stream.next() => match next {
                Some(Ok(Message::Text(text))) => {
                    receive(&text, &queue, &shared, &mut stats);
                }
                Some(Ok(Message::Binary(_))) => stats.foreign_messages += 1,
                Some(Ok(Message::Close(frame))) => {
                    if !*stop.borrow() {
                        stats.errors.add(conn::describe_close(frame));
                    }
                    return stats;
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => {
                    if !*stop.borrow() {
                        stats.errors.add(format!("receive: {error}"));
                    }
                    return stats;
                }
                None => {
                    if !*stop.borrow() {
                        stats.errors.add("connection dropped");
                    }
                    return stats;
                }
            },
        }
    }
    // Let the server answer the close frame, without waiting on a slow one.
    let deadline = Instant::now() + CLOSE_GRACE;
    while let Ok(Some(Ok(_))) = tokio::time::timeout_at(deadline, stream.next()).await {}
    stats
}

fn receive(
    text: &str,
    queue: &mpsc::UnboundedSender<Message>,
    shared: &Shared,
    stats: &mut ReaderStats,
) {
    let Some(incoming) = wire::parse(text) else {
        stats.foreign_messages += 1;
        return;
    };
    if incoming.from == wire::SERVER_CLIENT_ID {
        stats.server_messages += 1;
        if let (true, Some(request_id)) = (incoming.asks_for_hashes(), incoming.request_id) {
            let reply = wire::hashes_response(wire::SERVER_CLIENT_ID, request_id);
            let _ = queue.send(Message::text(reply));
        }
        return;
    }
    match incoming.tag() {
        Some(Tag::Load {
            sender, sent_us, ..
        }) if sender < shared.delivered.len() => {
            let now = shared.now_us();
            shared.delivered[sender].fetch_add(1, Ordering::Relaxed);
            shared.progress[sender].notify_one();
            if shared.in_window(now) {
                stats.delivered += 1;
                stats.bytes += text.len() as u64;
                stats
                    .latency
                    .saturating_record(now.saturating_sub(sent_us).max(1));
            }
        }
        Some(Tag::Ready { sender }) => {
            if stats.ready_from.insert(sender) {
                shared.ready_seen.fetch_add(1, Ordering::Relaxed);
            }
        }
        _ => stats.foreign_messages += 1,
    }
}

struct Sender {
    index: usize,
    queue: mpsc::UnboundedSender<Message>,
    shared: Arc<Shared>,
    peers: u64,
    body: Body,
}

enum Plan {
    Window(u64),
    Rate { period: Duration, first: Instant },
}

impl Sender {
    /// Sends until `end`; returns how many messages went out inside the
    /// measured interval.
    async fn run(self, plan: Plan, end: Instant) -> u64 {
        let mut seq = 0;
        let mut counted = 0;
        match plan {
            Plan::Window(window) => {
                while self.wait_for_room(seq, window, end).await {
                    if !self.send(seq, &mut counted) {
                        break;
                    }
                    seq += 1;
                }
            }
            Plan::Rate { period, first } => {
                let mut ticks = tokio::time::interval_at(first, period);
                ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
                loop {
                    tokio::select! {
                        _ = ticks.tick() => {}
                        _ = tokio::time::sleep_until(end) => break,
                    }
                    if !self.send(seq, &mut counted) {
                        break;
                    }
                    seq += 1;
                }
            }
        }
        counted
    }

    /// Waits until fewer than `window` of this sender's messages are still
    /// short of a delivery; false once `end` has come.
    async fn wait_for_room(&self, sent: u64, window: u64, end: Instant) -> bool {
        let progress = &self.shared.progress[self.index];
        loop {
            if Instant::now() >= end {
                return false;
            }
            let notified = progress.notified();
            tokio::pin!(notified);
            // Registered before checking, so a delivery between the check and
            // the wait still wakes this sender.
            notified.as_mut().enable();
            let complete = self.shared.delivered[self.index].load(Ordering::Relaxed) / self.peers;
            if sent - complete.min(sent) < window {
                return true;
            }
            if tokio::time::timeout_at(end, notified).await.is_err() {
                return false;
            }
        }
    }

    fn send(&self, seq: u64, counted: &mut u64) -> bool {
        let now = self.shared.now_us();
        let payload = match &self.body {
            Body::Hashes => wire::load_hashes(self.index, seq, now),
            Body::Diff(body) => wire::load_diff(self.index, seq, now, body),
            Body::CellWrites => wire::load_cell_write(self.index, seq, now),
        };
        if self.shared.in_window(now) {
            *counted += 1;
        }
        self.queue.send(Message::text(payload)).is_ok()
    }
}
