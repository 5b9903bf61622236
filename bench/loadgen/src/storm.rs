//! Connection storm: every connection opens at once, greets its path and is
//! done once it has also heard from a peer. The figure is the time until the
//! last of them is done.
//!
//! A greeting is broadcast, and whoever is already on the path answers it
//! directly, so even the last client to join hears back without anyone
//! having to know the join order.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch, Notify};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use crate::conn;
use crate::stats::{self, Errors};
use crate::wire::{self, Tag};

pub struct StormSpec {
    pub url: String,
    pub connections: usize,
    pub paths: usize,
    /// The longest the storm may take before it is called off.
    pub timeout: Duration,
    /// How long everything stays connected after the storm, so the harness
    /// can sample the server's memory with all connections open.
    pub hold: Duration,
}

struct Shared {
    done: AtomicUsize,
    all_done: Notify,
    target: usize,
}

impl Shared {
    fn mark_done(&self) {
        if self.done.fetch_add(1, Ordering::AcqRel) + 1 == self.target {
            self.all_done.notify_one();
        }
    }
}

struct ClientOutcome {
    connect_us: Option<u64>,
    errors: Errors,
}

pub async fn run(spec: StormSpec) -> Result<Value, String> {
    if spec.paths == 0 || spec.connections < 2 * spec.paths {
        return Err("every path needs at least two connections".into());
    }
    let shared = Arc::new(Shared {
        done: AtomicUsize::new(0),
        all_done: Notify::new(),
        target: spec.connections,
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let cpu_start = stats::own_cpu_seconds();
    let start = Instant::now();
    let deadline = start + spec.timeout;
    let clients: Vec<_> = (0..spec.connections)
        .map(|index| {
            let url = spec.url.clone();
            let path = format!("storm-{}", index % spec.paths);
            tokio::spawn(client(
                index,
                url,
                path,
                shared.clone(),
                stop_rx.clone(),
                deadline,
            ))
        })
        .collect();

    let all_done = tokio::time::timeout_at(deadline, shared.all_done.notified())
        .await
        .is_ok();
    let elapsed = start.elapsed();
    let cpu_used = stats::own_cpu_seconds() - cpu_start;
    let exchanged = shared.done.load(Ordering::Acquire);
    if all_done {
        // The harness samples the server's memory on this marker.
        eprintln!("HOLD");
        tokio::time::sleep(spec.hold).await;
    }
    let _ = stop_tx.send(true);

    let mut connect = stats::latency_histogram();
    let mut errors = Errors::default();
    let mut connected = 0;
    for outcome in clients {
        let outcome = outcome.await.map_err(|error| format!("client: {error}"))?;
        if let Some(us) = outcome.connect_us {
            connected += 1;
            connect.saturating_record(us.max(1));
        }
        errors.merge(outcome.errors);
    }
    Ok(json!({
        "scenario": "storm",
        "connections": spec.connections,
        "paths": spec.paths,
        "connected": connected,
        "exchanged": exchanged,
        "all_exchanged": all_done,
        "all_exchanged_ms": all_done.then_some(elapsed.as_secs_f64() * 1000.0),
        "connect_ms": stats::latency_json(&connect),
        "loadgen_cpu_s": cpu_used,
        "loadgen_cores": cpu_used / elapsed.as_secs_f64(),
        "loadgen_peak_rss_kib": stats::own_peak_rss_kib(),
        "errors": errors.to_json(),
    }))
}

async fn client(
    index: usize,
    url: String,
    path: String,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    deadline: Instant,
) -> ClientOutcome {
    let mut outcome = ClientOutcome {
        connect_us: None,
        errors: Errors::default(),
    };
    let started = Instant::now();
    let (sink, mut stream) =
        match tokio::time::timeout_at(deadline, conn::connect(&url, &path)).await {
            Ok(Ok(socket)) => socket,
            Ok(Err(error)) => {
                outcome.errors.add(error);
                return outcome;
            }
            Err(_) => {
                outcome.errors.add("connect: timed out");
                return outcome;
            }
        };
    outcome.connect_us = Some(started.elapsed().as_micros() as u64);
    let (queue, queue_rx) = mpsc::unbounded_channel();
    let writer = tokio::spawn(conn::write_loop(sink, queue_rx, stop.clone()));
    let _ = queue.send(Message::text(wire::hello(index)));

    let mut heard = false;
    loop {
        tokio::select! {
            // Checked first: once stopping, the server's answer to our close
            // frame is expected and must not be counted as a failure.
            biased;
            _ = conn::stopped(&mut stop) => break,
            next = stream.next() => {
                let failure = match next {
                    Some(Ok(Message::Text(text))) => {
                        let Some(incoming) = wire::parse(&text) else { continue };
                        match incoming.tag() {
                            Some(Tag::Hello) => {
                                let _ = queue.send(Message::text(wire::ack(incoming.from, index)));
                            }
                            Some(Tag::Ack) => {}
                            _ => continue,
                        }
                        if !heard {
                            heard = true;
                            shared.mark_done();
                        }
                        continue;
                    }
                    Some(Ok(Message::Close(frame))) => conn::describe_close(frame),
                    Some(Ok(_)) => continue,
                    Some(Err(error)) => format!("receive: {error}"),
                    None => "connection dropped".to_string(),
                };
                if !*stop.borrow() {
                    outcome.errors.add(failure);
                }
                break;
            }
        }
    }
    if !heard {
        outcome.errors.add("never heard from a peer");
    }
    drop(queue);
    if let Ok(Err(error)) = writer.await {
        outcome.errors.add(error);
    }
    outcome
}
