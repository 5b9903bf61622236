//! Load generator for TinyBase-compatible WebSocket sync servers, plus a bare
//! relay that marks the practical ceiling of this machine for fan-out.
//!
//! Every load mode prints exactly one JSON object on stdout; progress markers
//! that the harness reacts to go to stderr.

mod args;
mod conn;
mod flow;
mod relay;
mod stats;
mod storm;
mod wire;

use std::process::ExitCode;
use std::time::Duration;

use args::Args;
use flow::{Body, FlowSpec, Pacing};

const USAGE: &str = "usage:
  loadgen fanout|persisted|writes --url ws://HOST:PORT[,ws://HOST:PORT...] [--clients 32] [--window 4] [--duration-s 10] [--warmup-s 1]
  loadgen paths --url ws://HOST:PORT [--paths 500] [--rate 5000] [--duration-s 10] [--warmup-s 1]
  loadgen large --url ws://HOST:PORT [--clients 4] [--window 2] [--body-kib 256] [--duration-s 10] [--warmup-s 1]
  loadgen storm --url ws://HOST:PORT [--connections 2000] [--paths 200] [--timeout-s 20] [--hold-ms 1500]
  loadgen relay [--port 0] [--lifetime-s 1800]
common: [--threads N] (tokio worker threads; default: the CPUs this process may run on)";

fn main() -> ExitCode {
    let mut argv = std::env::args().skip(1);
    let Some(mode) = argv.next() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let args = match Args::parse(argv) {
        Ok(args) => args,
        Err(error) => {
            eprintln!("{error}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&mode, &args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("loadgen {mode}: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(mode: &str, args: &Args) -> Result<(), String> {
    let nofile = stats::raise_nofile_limit();
    let threads = args.usize_or("threads", default_threads())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .map_err(|error| format!("cannot start the runtime: {error}"))?;
    let duration = Duration::from_secs_f64(args.f64_or("duration-s", 10.0)?);
    let warmup = Duration::from_secs_f64(args.f64_or("warmup-s", 1.0)?);
    let report = match mode {
        "fanout" | "persisted" | "writes" => {
            args.only(&[
                "url",
                "clients",
                "window",
                "duration-s",
                "warmup-s",
                "threads",
            ])?;
            let spec = FlowSpec {
                name: mode.to_string(),
                urls: args.urls()?,
                paths: 1,
                clients_per_path: args.usize_or("clients", 32)?,
                pacing: Pacing::Window(args.usize_or("window", 4)? as u64),
                body: if mode == "writes" {
                    Body::CellWrites
                } else {
                    Body::Hashes
                },
                duration,
                warmup,
            };
            runtime.block_on(flow::run(spec))?
        }
        "paths" => {
            args.only(&["url", "paths", "rate", "duration-s", "warmup-s", "threads"])?;
            let paths = args.usize_or("paths", 500)?;
            let total_rate = args.f64_or("rate", 5000.0)?;
            let spec = FlowSpec {
                name: mode.to_string(),
                urls: args.urls()?,
                paths,
                clients_per_path: 2,
                pacing: Pacing::Rate(total_rate / (paths * 2) as f64),
                body: Body::Hashes,
                duration,
                warmup,
            };
            runtime.block_on(flow::run(spec))?
        }
        "large" => {
            args.only(&[
                "url",
                "clients",
                "window",
                "body-kib",
                "duration-s",
                "warmup-s",
                "threads",
            ])?;
            let body = wire::content_diff_body(args.usize_or("body-kib", 256)? * 1024);
            let spec = FlowSpec {
                name: mode.to_string(),
                urls: args.urls()?,
                paths: 1,
                clients_per_path: args.usize_or("clients", 4)?,
                pacing: Pacing::Window(args.usize_or("window", 2)? as u64),
                body: Body::Diff(body.into()),
                duration,
                warmup,
            };
            runtime.block_on(flow::run(spec))?
        }
        "storm" => {
            args.only(&[
                "url",
                "connections",
                "paths",
                "timeout-s",
                "hold-ms",
                "threads",
            ])?;
            let spec = storm::StormSpec {
                url: args.url()?,
                connections: args.usize_or("connections", 2000)?,
                paths: args.usize_or("paths", 200)?,
                timeout: Duration::from_secs_f64(args.f64_or("timeout-s", 20.0)?),
                hold: Duration::from_millis(args.usize_or("hold-ms", 1500)? as u64),
            };
            runtime.block_on(storm::run(spec))?
        }
        "relay" => {
            args.only(&["port", "lifetime-s", "threads"])?;
            let port = args.usize_or("port", 0)?;
            let port = u16::try_from(port).map_err(|_| format!("bad port {port}"))?;
            let lifetime = Duration::from_secs_f64(args.f64_or("lifetime-s", 1800.0)?);
            return runtime.block_on(relay::serve(port, lifetime));
        }
        other => return Err(format!("unknown mode {other}")),
    };
    let mut report = report;
    report["threads"] = threads.into();
    report["nofile_limit"] = nofile.into();
    report["loadgen_cpu_total_s"] = stats::own_cpu_seconds().into();
    println!("{report}");
    Ok(())
}

fn default_threads() -> usize {
    // Respects taskset pinning, so a pinned load generator gets one worker.
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
