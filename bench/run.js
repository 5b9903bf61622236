#!/usr/bin/env node
// `npm run bench`: runs every scenario against TinyBase's reference server,
// this package's native server and (but for the persisted path) a bare relay,
// one server at a time, and reports medians as a console table, BENCHMARKS.md
// and bench/chart.svg. Raw runs go to bench/results/.
//
//   npm run bench -- [--quick] [--only fanout,storm] [--pin] [--runs N]

import {execFileSync, spawnSync} from 'node:child_process';
import {mkdirSync, readFileSync, writeFileSync} from 'node:fs';
import os from 'node:os';
import {dirname, join, relative} from 'node:path';
import {fileURLToPath} from 'node:url';
import {
  busyShare,
  killChildren,
  machineCpu,
  processStats,
  processesStats,
  runLoadgen,
  startRedis,
  startServer,
} from './lib/processes.js';
import {
  chartSvg,
  consoleTable,
  formatNumber,
  markdownTable,
  problems,
  summarize,
} from './lib/report.js';
import {SCENARIOS, SERVER_TITLES} from './lib/scenarios.js';

const BENCH = dirname(fileURLToPath(import.meta.url));
const ROOT = dirname(BENCH);
const LOADGEN_MANIFEST = join(BENCH, 'loadgen', 'Cargo.toml');
// Written by hand, kept across runs: what holds the goals not yet met, and what would move them.
const PROFILES = join(BENCH, 'profiles.md');
const LOADGEN = join(BENCH, 'loadgen', 'target', 'release', 'loadgen');
// Beyond the scenario's own duration: connecting, the readiness check and
// closing, none of which may take this long unless something is stuck.
const LOADGEN_SLACK_MS = 60_000;
const USAGE = `usage: npm run bench -- [--quick] [--only ${SCENARIOS.map((s) => s.id).join(',')}] [--pin] [--runs N]
  --quick  one run per server, 3 s measurements
  --only   run just these scenarios (comma-separated)
  --pin    server on CPU 0, load generator on CPU 1 (taskset)
  --runs   runs per server and scenario (default 3, quick 1)`;

const parseOptions = (argv) => {
  const options = {quick: false, pin: false, only: null, runs: null};
  for (let index = 0; index < argv.length; index++) {
    const flag = argv[index];
    if (flag == '--quick') {
      options.quick = true;
    } else if (flag == '--pin') {
      options.pin = true;
    } else if (flag == '--only' || flag == '--runs') {
      const value = argv[++index];
      if (value == null) {
        throw new Error(`${flag} needs a value`);
      }
      if (flag == '--only') {
        options.only = value.split(',').filter(Boolean);
      } else {
        options.runs = Number(value);
        if (!Number.isInteger(options.runs) || options.runs < 1) {
          throw new Error('--runs wants a whole number from 1');
        }
      }
    } else if (flag == '--help' || flag == '-h') {
      console.log(USAGE);
      process.exit(0);
    } else {
      throw new Error(`unknown option ${flag}`);
    }
  }
  const known = SCENARIOS.map((scenario) => scenario.id);
  const unknown = options.only?.filter((id) => !known.includes(id)) ?? [];
  if (unknown.length) {
    throw new Error(
      `unknown scenario ${unknown.join(', ')}; known: ${known.join(', ')}`,
    );
  }
  return options;
};

const log = (message) => process.stderr.write(message + '\n');

const command = (file, args) => {
  try {
    return execFileSync(file, args, {cwd: ROOT, encoding: 'utf8'}).trim();
  } catch {
    return 'unknown';
  }
};

const packageVersion = (path) =>
  JSON.parse(readFileSync(join(path, 'package.json'), 'utf8')).version;

const describeMachine = () => {
  const fileLimits = command('sh', [
    '-c',
    'echo "$(ulimit -S -n) soft, $(ulimit -H -n) hard"',
  ]);
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.availableParallelism(),
    memoryGiB: os.totalmem() / 2 ** 30,
    kernel: `${os.type()} ${os.release()} ${os.arch()}`,
    fileLimits,
    versions: {
      node: process.version,
      rustc: command('rustc', ['--version']),
      tinybase: packageVersion(join(ROOT, 'node_modules', 'tinybase')),
      ws: packageVersion(join(ROOT, 'node_modules', 'ws')),
      package: packageVersion(ROOT),
      commit:
        command('git', ['rev-parse', '--short', 'HEAD']) +
        (command('git', ['status', '--porcelain', '--untracked-files=no'])
          ? ' (with local changes)'
          : ''),
    },
  };
};

const serverCommand = (
  server,
  {persister, scrapeMs, authorize, nativeUpgrade, nativeListen},
) =>
  server == 'relay'
    ? [LOADGEN, 'relay', '--port', '0']
    : [
        process.execPath,
        join(BENCH, 'servers', `${server}.js`),
        ...(persister ? ['--persist', '--persister', persister] : []),
        ...(scrapeMs ? ['--scrape-ms', String(scrapeMs)] : []),
        ...(authorize ? ['--authorize'] : []),
        ...(nativeUpgrade ? ['--native-upgrade'] : []),
        ...(nativeListen ? ['--native-listen'] : []),
      ];

// The server of a run: one process, or for a cluster scenario on the native server, that many
// nodes and the Redis they meet in.
const startServers = async (scenario, server, options) => {
  const nodes = server == 'native' ? (scenario.nodes ?? 1) : 1;
  const redis = nodes > 1 ? await startRedis() : undefined;
  const handles = [];
  try {
    for (let node = 0; node < nodes; node++) {
      handles.push(
        await startServer({
          command: [
            ...serverCommand(server, scenario),
            ...(redis ? ['--redis', redis.url] : []),
          ],
          cpu: options.pin ? 0 : null,
          cwd: ROOT,
        }),
      );
    }
  } catch (error) {
    await Promise.all(handles.map((handle) => handle.stop()));
    await redis?.stop();
    throw error;
  }
  return {
    handles,
    redis,
    url: handles.map(({port}) => `ws://127.0.0.1:${port}`).join(','),
    stats: () => processesStats(handles.map(({pid}) => pid)),
    stop: async () => {
      await Promise.all(handles.map((handle) => handle.stop()));
      await redis?.stop();
    },
  };
};

// One run: a fresh server, the load, the server's figures before, during (the
// storm's hold) and after, and how busy the whole machine was meanwhile. A
// cluster's figures from /proc add up its nodes; those from the servers
// themselves are the first node's.
const runOnce = async (scenario, server, plan, options) => {
  let servers;
  try {
    servers = await startServers(scenario, server, options);
  } catch (error) {
    return {startError: error.message};
  }
  const [handle] = servers.handles;
  try {
    const before = await handle.stats();
    // Samples taken on the load generator's markers: the start and end of
    // its measured interval, and the storm's hold with everyone connected.
    const marked = {START: servers.stats()};
    const redisMarked = {};
    const machineBefore = machineCpu();
    const started = process.hrtime.bigint();
    const load = await runLoadgen({
      binary: LOADGEN,
      args: [scenario.mode, '--url', servers.url, ...scenario.args(plan)],
      cpu: options.pin ? 1 : null,
      cwd: ROOT,
      timeoutMs: (plan.duration + plan.warmup) * 1000 + LOADGEN_SLACK_MS,
      onMarker: (marker) => {
        marked[marker] = servers.stats();
        if (servers.redis) {
          redisMarked[marker] = processStats(servers.redis.pid);
        }
      },
    });
    const wallS = Number(process.hrtime.bigint() - started) / 1e9;
    const busy = busyShare(machineBefore, machineCpu());
    const after = await handle.stats();
    return {
      load,
      before,
      after,
      start: marked.START,
      measure: marked.MEASURE,
      done: marked.DONE,
      hold: marked.HOLD,
      redisMeasure: redisMarked.MEASURE,
      redisDone: redisMarked.DONE,
      wallS,
      busy,
    };
  } catch (error) {
    return {error: error.message};
  } finally {
    await servers.stop();
  }
};

const progressLine = (scenario, server, runLabel, outcome) => {
  const head = `${scenario.id} · ${SERVER_TITLES[server]} · ${runLabel}: `;
  if (!outcome.load) {
    return (
      head + `failed: ${(outcome.error ?? outcome.startError).split('\n')[0]}`
    );
  }
  const metric = scenario.metrics[0];
  const errors = outcome.load.errors.count
    ? `, ${outcome.load.errors.count} errors`
    : '';
  return (
    head +
    `${formatNumber(metric.value(outcome))} ${metric.unit} ` +
    `(loadgen ${formatNumber(outcome.load.loadgen_cores)} cores, ` +
    `machine ${Math.round((outcome.busy ?? 0) * 100)}% busy${errors})`
  );
};

const methodText = (
  plan,
  options,
  selected,
) => `Each scenario runs against one server at a time, each in a fresh process; runs of the servers alternate so that drift in the machine's other load spreads evenly. Figures are medians of ${plan.runs} run${plan.runs > 1 ? 's' : ''}. Throughput and latency count only messages received in the ${plan.duration} s measured interval, after a ${plan.warmup} s warm-up; before sending, every client waits until it has heard a readiness message from each peer on its path. Latency is from just before the load generator queues a message to when a peer reads it (one process, one clock).

The load generator (\`bench/loadgen\`, Rust, tokio-tungstenite) speaks TinyBase's wire protocol on plain per-path connections, as \`createWsSynchronizer\` does with its own WebSocket: \`toClientId\\n[requestId, messageType, body]\`. Every message is valid for the servers' validation: \`ContentHashes\` bodies \`[0,0]\` (an empty store's hashes, so a persisting server's own client compares and merges without opening diff round trips), for large messages, \`ContentDiff\` bodies with one table of 1,000-character string cells, each level stamped with a valid HLC, and for writes, the \`ContentDiff\` a TinyBase client sends for one \`setCell\`: each sender's own cell set again under a later HLC every time, so a persisting server's own client applies and saves every one. The sender, sequence number and send time travel in the request id. The servers count every error they report through \`onIgnoredError\`; any are listed under Notes.

${selected.map((scenario) => `- **${scenario.title}** (\`${scenario.id}\`): ${scenario.shape}.`).join('\n')}

Columns: *loadgen·busy* gives the load generator's own CPU use (cores, from getrusage) and the share of the whole machine that was busy (from /proc/stat) during the runs, so a figure that was limited by the load generator or by other load on the machine can be told apart. *native gain* is how many times better native is than the reference: above 1 means more throughput, or less latency, time, CPU or memory. Server CPU is read from /proc over the measured interval (over the whole storm for the storm), and so are the storm's memory figures; the event-loop delay is the server's own measure (\`monitorEventLoopDelay\`, 1 ms resolution) over the whole load generator run, connecting included, less the 1 ms timer interval the histogram counts in every sample. The scraped scenario repeats the fan-out while the server reads a prom-client registry every 100 ms, far more often than Prometheus would: Node's default process metrics for both, and for the native server its own metrics through \`registerMetrics\` too; its native row against the fan-out's shows what reading the metrics costs the relay. The authorized scenario repeats the fan-out with an \`authorize\` hook that grants every client write access from a Promise (TinyBase's own server has no such option and ignores it): its native row against the fan-out's shows what access control costs the relay, whose per-message checks are in Rust, the hook being asked once per client. The two *upgraded natively* scenarios repeat the storm and the 10,000 connections with the native server given \`nativeUpgrade: true\` (TinyBase's own server ignores it), so its native plane, not ws, answers each upgrade and no ws WebSocket is made: what the command does, and what a user whose WebSocketServer has a server of its own can choose. The cluster scenario starts a redis-server of its own (\`--save "" --appendonly no\`) and two native servers joined through it, the load generator connecting clients to them in turn; its server CPU adds up both nodes, Redis CPU is redis-server's own over the measured interval, and TinyBase, which cannot run a path across processes, serves all the clients in one. The persisted scenarios give each path a persister: a minimal in-memory custom one, or TinyBase's own file persister (\`createFilePersister\`, writing to a temporary folder); *persister saves* counts the saves TinyBase's persisters report (\`getStats\`) over the whole run. A persisted path's first client waits about a second, because TinyBase's server client asks the path's clients for their hashes while their replies are held back until it is ready. Both servers are handed a \`ws\` WebSocketServer on 127.0.0.1 with an accept backlog of 4,096: with ws's default (511) the storm's excess connection attempts would be retried by the kernel a second later, and the figure would time that retry, not the servers. The bare relay (\`loadgen relay\`, Rust) routes like the servers (broadcast or to one client, the sender's id put in front) but validates nothing and does the WebSocket handshake itself: it marks what this machine can do with each load at all. ${options.pin ? 'Server pinned to CPU 0 and load generator to CPU 1 with taskset.' : 'Server and load generator were not pinned to CPUs.'}`;

const benchmarksMarkdown = ({
  machine,
  plan,
  options,
  selected,
  summaries,
  notes,
  argv,
}) => {
  const invocation = `npm run bench${argv.length ? ` -- ${argv.join(' ')}` : ''}`;
  return `# Benchmarks

Generated by \`${invocation}\` on ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC.${
    options.quick
      ? ' A quick run: one run each and short measurements, so these figures are rough.'
      : ''
  }${options.only ? ` Only these scenarios were run: ${options.only.join(', ')}.` : ''}

![Benchmark chart](bench/chart.svg)

## Results

${markdownTable(selected, summaries)}

${notes.length ? `## Notes\n\n${notes.map((note) => `- ${note}`).join('\n')}\n\n` : ''}${readFileSync(PROFILES, 'utf8')}
## Machine and versions

- CPU: ${machine.cpu}, ${machine.cores} cores available; memory ${machine.memoryGiB.toFixed(1)} GiB; ${machine.kernel}
- Open-files limit: ${machine.fileLimits} (the harness raises servers' soft limit to the hard one, the load generator raises its own)
- Node ${machine.versions.node}; ${machine.versions.rustc}; tinybase ${machine.versions.tinybase}; ws ${machine.versions.ws}
- tinybase-ws-server-native ${machine.versions.package}, commit ${machine.versions.commit}

The machine may be shared: read the *busy* share beside each figure.

## Method

${methodText(plan, options, selected)}

## Commands

\`\`\`sh
${invocation}
# which builds and then, per run, starts one of
node bench/servers/reference.js [--persist --persister memory|file] [--scrape-ms N] [--authorize]
node bench/servers/native.js [--persist --persister memory|file] [--scrape-ms N] [--authorize] [--native-upgrade] [--native-listen] [--redis redis://127.0.0.1:PORT]
bench/loadgen/target/release/loadgen relay --port 0
# (the cluster scenario starts redis-server --save "" --appendonly no on a free port,
# and one native.js --redis per node)
# and runs, for example
${selected
  .map(
    (scenario) =>
      `bench/loadgen/target/release/loadgen ${scenario.mode} --url ${Array.from({length: scenario.nodes ?? 1}, (_, node) => `ws://127.0.0.1:PORT${scenario.nodes ? node + 1 : ''}`).join(',')} ${scenario.args(plan).join(' ')}`,
  )
  .join('\n')}
\`\`\`
`;
};

const main = async () => {
  const argv = process.argv.slice(2);
  const options = parseOptions(argv);
  const plan = options.quick
    ? {runs: 1, duration: 3, warmup: 0.5, holdMs: 500}
    : {runs: 3, duration: 10, warmup: 1, holdMs: 1500};
  plan.runs = options.runs ?? plan.runs;
  const selected = SCENARIOS.filter(
    (scenario) => !options.only || options.only.includes(scenario.id),
  );
  if (options.pin && os.availableParallelism() < 2) {
    throw new Error('--pin needs at least two CPUs');
  }

  log('building the load generator…');
  const build = spawnSync(
    'cargo',
    ['build', '--release', '--manifest-path', LOADGEN_MANIFEST],
    {
      cwd: ROOT,
      stdio: ['ignore', 'inherit', 'inherit'],
    },
  );
  if (build.status != 0) {
    throw new Error('cargo build of bench/loadgen failed');
  }

  const machine = describeMachine();
  const outcomes = {};
  const unavailable = {};
  for (const scenario of selected) {
    outcomes[scenario.id] = Object.fromEntries(
      scenario.servers.map((server) => [server, {runs: []}]),
    );
    for (let run = 1; run <= plan.runs; run++) {
      for (const server of scenario.servers) {
        const outcome = outcomes[scenario.id][server];
        if (unavailable[server]) {
          outcome.unavailable = unavailable[server];
          continue;
        }
        const result = await runOnce(scenario, server, plan, options);
        if (result.startError) {
          // A server that cannot start will not start for the next scenario
          // either; say so once and move on.
          unavailable[server] = outcome.unavailable = result.startError;
          log(
            `${SERVER_TITLES[server]}: n/a, it could not be started: ${result.startError.split('\n')[0]}`,
          );
          continue;
        }
        outcome.runs.push(result);
        log(progressLine(scenario, server, `run ${run}/${plan.runs}`, result));
      }
    }
  }

  const summaries = Object.fromEntries(
    selected.map((scenario) => [
      scenario.id,
      Object.fromEntries(
        scenario.servers.map((server) => [
          server,
          summarize(scenario, outcomes[scenario.id][server]),
        ]),
      ),
    ]),
  );
  const notes = problems(selected, summaries);
  console.log('');
  console.log(consoleTable(selected, summaries));
  if (notes.length) {
    console.log('');
    for (const note of notes) {
      console.log(`note: ${note}`);
    }
  }

  const resultsDir = join(BENCH, 'results');
  mkdirSync(resultsDir, {recursive: true});
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const rawPath = join(resultsDir, `${stamp}.json`);
  writeFileSync(
    rawPath,
    JSON.stringify({machine, plan, options, outcomes, summaries}, null, 2),
  );
  const caption =
    `Medians of ${plan.runs} run${plan.runs > 1 ? 's' : ''} on ${machine.cores} cores (${machine.cpu}); ` +
    'see BENCHMARKS.md for the method and every figure.';
  writeFileSync(
    join(BENCH, 'chart.svg'),
    chartSvg(selected, summaries, caption),
  );
  writeFileSync(
    join(ROOT, 'BENCHMARKS.md'),
    benchmarksMarkdown({
      machine,
      plan,
      options,
      selected,
      summaries,
      notes,
      argv,
    }),
  );
  console.log('');
  console.log(
    `wrote BENCHMARKS.md, bench/chart.svg and ${relative(ROOT, rawPath)}`,
  );
};

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    killChildren();
    process.exit(130);
  });
}

main().catch((error) => {
  killChildren();
  console.error(`bench: ${error.message}`);
  process.exit(1);
});
