//! How many sends one `Router` delivers per second when the host's threads share it as the hub
//! does, behind one `Mutex` that every `receive` takes once the message is validated, and where
//! a message's time goes.
//!
//! `router_threads/shared/T` has T threads each relay small writes on its own paths (thread k has
//! paths k, k + T, ...) through one router; its throughput is delivered sends per second, and 2
//! threads against 1 shows what the lock leaves of the second core. `router_threads/apart/2` does
//! the same with a router for each thread, sharing nothing: what the machine gives a second
//! thread at best, and so the most that sharding the paths could reach. `per_message/*` times, on one thread and for the same
//! messages, the validator alone, the decoder the router calls (the validator, the split and the
//! copies it makes), and the whole `receive` given the message's verdict: what runs outside the
//! lock against what runs inside it.

use std::hint::black_box;
use std::sync::{Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sync_core::protocol::error::SyncError;
use sync_core::protocol::fragment::{PayloadDecoder, SocketBudget};
use sync_core::protocol::message::{message_type::CONTENT_DIFF, validate, Verdict};
use sync_core::protocol::payload;
use sync_core::router::{
    AuthRequest, Backpressure, Config, ConnId, Limits, Outbox, PathKey, Payload, Router, Stats,
};

const PATHS: usize = 256;
const CLIENTS: usize = 4;
/// Each message goes to every client of its path but the sender.
const RECIPIENTS: usize = CLIENTS - 1;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// One payload as a client's socket delivers it.
struct Message {
    path: usize,
    conn: ConnId,
    payload: String,
}

/// What the hub's outbox does cheaply: a send queues the shared payload for the connection's
/// writer, anything else is only counted.
#[derive(Default)]
struct Queued {
    sent: Vec<Payload>,
    delivered: u64,
    other: u64,
}

impl Outbox for Queued {
    fn send(&mut self, _conn: ConnId, payload: &Payload) -> Result<(), Backpressure> {
        self.sent.push(payload.clone());
        self.delivered += 1;
        Ok(())
    }

    fn close(&mut self, _conn: ConnId, _code: u16, _reason: &str) {
        self.other += 1;
    }

    fn report(&mut self, _error: SyncError) {
        self.other += 1;
    }

    fn client_ids(&mut self, _path_id: &str, _client_id: &str, _change: i8) {
        self.other += 1;
    }

    fn path_ids(&mut self, _path_id: &str, _change: i8) {
        self.other += 1;
    }

    fn start_path(&mut self, _path: PathKey, _path_id: &str) {
        self.other += 1;
    }

    fn stop_path(&mut self, _path: PathKey) {
        self.other += 1;
    }

    fn stop_paths(&mut self, _paths: Vec<PathKey>) {
        self.other += 1;
    }

    fn to_server(&mut self, _path: PathKey, _payload: &str) {
        self.other += 1;
    }

    fn authorize(&mut self, _request: AuthRequest) {
        self.other += 1;
    }
}

/// A client id as long as a `sec-websocket-key`.
fn client_id(path: usize, client: usize) -> String {
    format!("key{path:010}-{client:09}=")
}

fn conn(path: usize, client: usize) -> ConnId {
    ConnId((path * CLIENTS + client) as u64)
}

/// A lone server without persistence: every path is ready as its first client joins.
fn router() -> Router {
    let mut ids = 0u64..;
    let mut router = Router::new(Config {
        request_timeout: REQUEST_TIMEOUT,
        fragment_size: None,
        has_factory: false,
        message_id: Box::new(move || format!("{:016}", ids.next().unwrap_or(0))),
        limits: Limits::default(),
        keep_warm: Duration::ZERO,
    });
    let mut out = Queued::default();
    for path in 0..PATHS {
        for client in 0..CLIENTS {
            let path_id = format!("store/{path}");
            router.open(
                conn(path, client),
                &path_id,
                &client_id(path, client),
                false,
                &mut out,
            );
        }
    }
    let stats = Stats {
        paths: PATHS,
        clients: PATHS * CLIENTS,
    };
    assert_eq!(router.stats(), stats);
    router
}

/// One `setCell` as a TinyBase client sends it to every other client: its own row, one stamped
/// cell. Ordered in rounds, each round one message on every path from the round's sender.
fn messages() -> Vec<Message> {
    let messages: Vec<Message> = (0..CLIENTS)
        .flat_map(|client| (0..PATHS).map(move |path| (path, client)))
        .map(|(path, client)| Message {
            path,
            conn: conn(path, client),
            payload: format!(
                "\n[\"w.{client}.{path}\",{CONTENT_DIFF},[[{{\"t\":[{{\"r{client}\":[{{\"c\":[{path},\"P7LUV70----s3UdA\"]}}]}}]}}],[{{}}],1]]"
            ),
        })
        .collect();
    for message in &messages {
        assert_eq!(validate(remainder(message)), Some(CONTENT_DIFF));
    }
    messages
}

fn remainder(message: &Message) -> &str {
    payload::split(&message.payload).map_or("", |(_, remainder)| remainder)
}

/// Relays every message once and checks each reached all its recipients, so a benchmark cannot
/// be timing messages the router drops.
fn assert_relays(router: &mut Router, messages: &[Message]) {
    let mut out = Queued::default();
    for message in messages {
        router.receive(message.conn, &message.payload, Instant::now(), &mut out);
    }
    assert_eq!(out.delivered, (messages.len() * RECIPIENTS) as u64);
    assert_eq!(out.other, 0);
}

/// One host thread: as the hub does, each message is validated, then locks the router for its
/// `receive`, and the queued payloads are dropped once unlocked, as the connections' writers drop
/// them. `rounds` times, the thread sends once on each of its paths. Returns the sends delivered.
fn relay(router: &Mutex<Router>, messages: &[&Message], rounds: u64) -> u64 {
    let mut out = Queued::default();
    let per_round = messages.len() / CLIENTS;
    for message in messages.iter().cycle().take(rounds as usize * per_round) {
        let verdict = Verdict::of_payload(&message.payload);
        let mut router = router.lock().unwrap();
        router.receive_judged(
            message.conn,
            &message.payload,
            verdict,
            Instant::now(),
            &mut out,
        );
        drop(router);
        out.sent.clear();
    }
    out.delivered
}

/// Runs the threads together from one start, each on its share of the messages and its router,
/// and times them until the last has finished.
fn relay_on_threads(routers: &[&Mutex<Router>], shares: &[Vec<&Message>], rounds: u64) -> Duration {
    let start = Barrier::new(shares.len() + 1);
    thread::scope(|scope| {
        let threads: Vec<_> = shares
            .iter()
            .zip(routers)
            .map(|(share, &router)| {
                let start = &start;
                scope.spawn(move || {
                    start.wait();
                    relay(router, share, rounds)
                })
            })
            .collect();
        start.wait();
        let began = Instant::now();
        let delivered: u64 = threads
            .into_iter()
            .map(|thread| thread.join().unwrap())
            .sum();
        let elapsed = began.elapsed();
        assert_eq!(delivered, rounds * (PATHS * RECIPIENTS) as u64);
        elapsed
    })
}

fn router_threads(c: &mut Criterion) {
    let messages = messages();
    let mut group = c.benchmark_group("router_threads");
    group.throughput(Throughput::Elements((PATHS * RECIPIENTS) as u64));
    // `shared`: one router for all threads, as the hub has. `apart`: a router of its own for
    // each thread, so nothing is shared: the most any sharding of the paths could give.
    for (sharing, threads) in [("shared", 1), ("shared", 2), ("apart", 2)] {
        let routers: Vec<Mutex<Router>> = (0..threads)
            .map(|_| {
                let mut router = router();
                assert_relays(&mut router, &messages);
                Mutex::new(router)
            })
            .collect();
        let per_thread: Vec<&Mutex<Router>> = (0..threads)
            .map(|thread| match sharing {
                "shared" => &routers[0],
                _ => &routers[thread],
            })
            .collect();
        let shares: Vec<Vec<&Message>> = (0..threads)
            .map(|thread| {
                messages
                    .iter()
                    .filter(|message| message.path % threads == thread)
                    .collect()
            })
            .collect();
        group.bench_function(BenchmarkId::new(sharing, threads), |b| {
            b.iter_custom(|rounds| relay_on_threads(&per_thread, &shares, rounds))
        });
    }
    group.finish();
}

fn per_message(c: &mut Criterion) {
    let messages = messages();
    let now = Instant::now();
    let mut group = c.benchmark_group("per_message");
    group.bench_function("validate", |b| {
        let mut next = messages.iter().cycle();
        b.iter(|| validate(remainder(next.next().unwrap())))
    });
    group.bench_function("decode", |b| {
        let mut decoder = PayloadDecoder::new(REQUEST_TIMEOUT);
        let mut budget = SocketBudget::default();
        let mut next = messages.iter().cycle();
        b.iter(|| decoder.decode(&next.next().unwrap().payload, &mut budget, now))
    });
    group.bench_function("receive_judged", |b| {
        let mut router = router();
        assert_relays(&mut router, &messages);
        let judged: Vec<_> = messages
            .iter()
            .map(|message| (message, Verdict::of_payload(&message.payload)))
            .collect();
        let mut out = Queued::default();
        let mut next = judged.iter().cycle();
        // Timed a round at a time, so dropping the queued payloads between rounds is not.
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let round = left.min(messages.len() as u64);
                let began = Instant::now();
                for &(message, verdict) in next.by_ref().take(round as usize) {
                    let payload = black_box(&message.payload);
                    router.receive_judged(message.conn, payload, verdict, now, &mut out);
                }
                elapsed += began.elapsed();
                out.sent.clear();
                left -= round;
            }
            elapsed
        })
    });
    group.finish();
}

criterion_group!(benches, router_threads, per_message);
criterion_main!(benches);
