#!/usr/bin/env node
// `npm run soak`: a few minutes of churn against one server process, then a check that every
// client converged and that the server gave back what it took.
//
// A server process (soak/server.js: this package, half its paths file-persisted) and a load
// process (soak/load.js: TinyBase clients that write, are dropped without a close frame and come
// back; raw clients sending malformed frames; slow readers on flooded paths) run a warm-up phase
// and then the main phase. After the warm-up every client leaves and the server's resident memory
// and open fds are sampled: that is the baseline. The main phase samples them every second. At
// its end every client comes back, each announces its content so that all peers pull what they
// lack, and every store of a path (and the server's, for persisted paths) must hold the same
// tables; the persisted files must too once everyone has left. Then memory and fds must be back
// within a small margin of the baseline. Prints a table of figures; exits 1 on any failure.
//
//   SOAK_SECONDS=90 SOAK_WARMUP_SECONDS=40 npm run soak
//
// SOAK_SERVER_MODULE runs the same soak against another implementation of createWsServer (see
// soak/server.js), e.g. TinyBase's own 'tinybase/synchronizers/synchronizer-ws-server'.
// SOAK_NATIVE_UPGRADE=1 has this package's server answer the upgrades on its native plane.

import {fork} from 'node:child_process';
import {once} from 'node:events';
import {mkdtempSync, readdirSync, readFileSync, rmSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {dirname, join} from 'node:path';
import {setTimeout as delay} from 'node:timers/promises';
import {fileURLToPath} from 'node:url';
import {createMergeableStore} from 'tinybase';
import {canonical} from './canonical.js';

const SOAK = dirname(fileURLToPath(import.meta.url));
const MAIN_SECONDS = Number(process.env.SOAK_SECONDS ?? 90);
const WARMUP_SECONDS = Number(process.env.SOAK_WARMUP_SECONDS ?? 40);
const LOAD = {
  paths: 20,
  clients: 200,
  writeEveryMs: 10,
  dropEveryMs: 100,
  malformedEveryMs: 200,
  slowReaders: 3,
  // 48 MiB per round: past a slow reader's 16 MiB backlog plus what the kernel buffers.
  floodMessages: 192,
  floodMessageBytes: 256 * 1024,
};
// After everyone has left, the server may keep this much more than at the baseline: allocator
// and V8 heap slack, not a leak (a leak grows with the churn, which is far larger than this).
const RSS_MARGIN_BYTES = 24 * 1024 * 1024;
const FD_MARGIN = 2;
// The JS heap after a collection is exact where RSS is not: a few closures per connection kept
// by mistake show here long before they would in RSS.
const HEAP_MARGIN_BYTES = 4 * 1024 * 1024;
// glibc raises its mmap threshold each time a large block is freed, after which large buffers
// (flood messages, slow readers' backlogs) come from arenas that keep the memory once freed: RSS
// would then show tens of MiB of free memory, hiding a leak or faking one. Pinning the threshold
// at its default keeps large buffers mmapped, returned to the system when freed.
const SERVER_MALLOC = {
  GLIBC_TUNABLES:
    process.env.GLIBC_TUNABLES ??
    'glibc.malloc.mmap_threshold=131072:glibc.malloc.trim_threshold=131072',
};
const CONVERGENCE_ROUNDS = 10;
// Nothing should come near it; it keeps a stuck run from running forever.
const WHOLE_RUN_MS = (WARMUP_SECONDS + MAIN_SECONDS + 300) * 1000;

const started = Date.now();
const log = (message) =>
  console.log(
    `[${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s] ${message}`,
  );

const withTimeout = (promise, what, ms) => {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`timed out after ${ms} ms: ${what}`)),
        ms,
      );
    }),
  ]).finally(() => clearTimeout(timer));
};

// A child process answering requests over IPC: {id, type} in, {id, result | error} out.
const start = async (name, script, args, execArgv = [], env = {}) => {
  const child = fork(join(SOAK, script), args, {
    execArgv,
    env: {...process.env, ...env},
    // Neither process prints anything of its own; stderr is kept as evidence of a crash.
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (data) => (stderr += data));
  const pending = new Map();
  let nextId = 0;
  let onReady;
  const ready = new Promise((resolve) => (onReady = resolve));
  child.on('message', ({id, result, error}) => {
    if (id == 'ready') {
      onReady(result);
      return;
    }
    const request = pending.get(id);
    pending.delete(id);
    if (error === undefined) {
      request?.resolve(result);
    } else {
      request?.reject(new Error(`${name}: ${error}`));
    }
  });
  const exited = once(child, 'exit');
  exited.then(([code, signal]) => {
    for (const {reject} of pending.values()) {
      reject(new Error(`${name} exited (${code ?? signal})`));
    }
    pending.clear();
  });
  const readyResult = await withTimeout(ready, `${name} to start`, 30_000);
  return {
    child,
    readyResult,
    exited,
    stderr: () => stderr,
    ask: (type, ms = 120_000) =>
      withTimeout(
        new Promise((resolve, reject) => {
          const id = nextId++;
          pending.set(id, {resolve, reject});
          child.send({id, type});
        }),
        `${name} ${type}`,
        ms,
      ),
  };
};

// The server's resident memory and open fds, read from outside.
const readProc = (pid) => {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(status.match(/^VmRSS:\s+(\d+) kB/m)[1]);
  return {rss: rssKb * 1024, fds: readdirSync(`/proc/${pid}/fd`).length};
};

const mib = (bytes) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

const main = async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tb-ws-soak-'));
  const failures = [];
  const fail = (what) => {
    failures.push(what);
    log(`FAIL: ${what}`);
  };
  let server;
  let load;
  try {
    server = await start(
      'server',
      'server.js',
      [dir],
      ['--expose-gc'],
      SERVER_MALLOC,
    );
    const pid = server.child.pid;
    const url = `ws://127.0.0.1:${server.readyResult}/`;
    load = await start('load', 'load.js', [JSON.stringify({...LOAD, url})]);
    log(
      `server pid ${pid} on ${url}; ${LOAD.clients} clients on ${LOAD.paths} paths`,
    );

    // A sample after a collection, the median of three: what is still held, not what V8 or the
    // allocator has yet to let go of.
    const steadySample = async () => {
      const samples = [];
      for (let index = 0; index < 3; index++) {
        const {heapUsed} = await server.ask('gc');
        await delay(500);
        samples.push({...readProc(pid), heapUsed});
      }
      const median = (key) =>
        samples.map((sample) => sample[key]).sort((a, b) => a - b)[1];
      return {
        rss: median('rss'),
        fds: median('fds'),
        heapUsed: median('heapUsed'),
      };
    };
    const peak = {rss: 0, fds: 0};
    const sampleDuring = async (seconds) => {
      const end = Date.now() + seconds * 1000;
      while (Date.now() < end) {
        const {rss, fds} = readProc(pid);
        peak.rss = Math.max(peak.rss, rss);
        peak.fds = Math.max(peak.fds, fds);
        await delay(1000);
      }
    };
    const waitUntilEmpty = async () => {
      const deadline = Date.now() + 60_000;
      for (;;) {
        const {paths, clients} = await server.ask('stats');
        if (paths == 0 && clients == 0) {
          return true;
        }
        if (Date.now() > deadline) {
          fail(
            `the server still has ${paths} paths and ${clients} clients after everyone left`,
          );
          return false;
        }
        await delay(200);
      }
    };

    log(`warm-up: ${WARMUP_SECONDS} s`);
    await load.ask('start');
    await sampleDuring(WARMUP_SECONDS);
    await load.ask('quiesce', 300_000);
    await load.ask('closeAll');
    await waitUntilEmpty();
    await delay(2000);
    const baseline = await steadySample();
    log(
      `baseline: RSS ${mib(baseline.rss)}, ${baseline.fds} fds, heap ${mib(baseline.heapUsed)}`,
    );
    peak.rss = baseline.rss;
    peak.fds = baseline.fds;

    log(`main phase: ${MAIN_SECONDS} s`);
    await load.ask('start');
    await sampleDuring(MAIN_SECONDS);
    log('quiescing: every client comes back');
    const up = await load.ask('quiesce', 300_000);
    if (up != LOAD.clients) {
      fail(`only ${up} of ${LOAD.clients} clients could reconnect`);
    }

    // How far reconnecting alone got: each client pulled from one peer as it started.
    const convergedOnReconnect = Object.values(await load.ask('report')).filter(
      (tables) => !tables.includes(null) && new Set(tables).size == 1,
    ).length;

    // Each round every client announces its content; all peers, the server's synchronizer
    // included, pull what they lack. Rounds repeat only if a request timed out on the way.
    let report;
    let snapshot;
    let mismatched = [];
    let rounds = 0;
    while (rounds < CONVERGENCE_ROUNDS) {
      rounds++;
      await load.ask('announce');
      await delay(2000);
      report = await load.ask('report');
      snapshot = await server.ask('snapshot');
      mismatched = Object.entries(report)
        .filter(([pathId, tables]) => {
          const distinct = new Set(tables);
          return (
            tables.includes(null) ||
            distinct.size != 1 ||
            (pathId.startsWith('persisted-') && snapshot[pathId] !== tables[0])
          );
        })
        .map(([pathId]) => pathId);
      if (mismatched.length == 0) {
        break;
      }
    }
    if (mismatched.length > 0) {
      fail(`stores differ on ${mismatched.join(', ')} after ${rounds} rounds`);
    }
    const rows = Object.values(report).map(
      (tables) => Object.keys(JSON.parse(tables[0] ?? '{}').t ?? {}).length,
    );
    const loadStats = await load.ask('stats');
    const serverStats = await server.ask('stats');

    log('closing every client');
    await load.ask('closeAll');
    const emptied = await waitUntilEmpty();
    // Every persisted path stopped: its file holds what its clients converged on.
    const persisted = Object.keys(report).filter((pathId) =>
      pathId.startsWith('persisted-'),
    );
    const filesMatching = persisted.filter((pathId) => {
      try {
        const store = createMergeableStore();
        store.setMergeableContent(
          JSON.parse(readFileSync(join(dir, `${pathId}.json`), 'utf8')),
        );
        return (
          JSON.stringify(canonical(store.getTables())) === report[pathId][0]
        );
      } catch {
        return false;
      }
    });
    if (filesMatching.length != persisted.length) {
      fail(
        `${persisted.length - filesMatching.length} persisted files differ from their clients`,
      );
    }
    await delay(3000);
    const end = await steadySample();

    if (end.fds > baseline.fds + FD_MARGIN) {
      fail(`${end.fds} fds at the end, ${baseline.fds} at the baseline`);
    }
    if (end.heapUsed > baseline.heapUsed + HEAP_MARGIN_BYTES) {
      fail(
        `V8 heap ${mib(end.heapUsed)} at the end, ${mib(baseline.heapUsed)} at the baseline`,
      );
    }
    if (end.rss > baseline.rss + RSS_MARGIN_BYTES) {
      fail(
        `RSS ${mib(end.rss)} at the end, ${mib(baseline.rss)} at the baseline`,
      );
    }
    const closes = (counts) =>
      Object.entries(counts)
        .map(([code, times]) => `${times}×${code}`)
        .join(', ') || 'none';
    const others = (counts, expected) =>
      Object.entries(counts)
        .filter(([code]) => code != expected)
        .reduce((sum, [, n]) => sum + n, 0);
    if (others(loadStats.malformedCloses, '1007') > 0) {
      fail(
        `malformed clients closed otherwise than with 1007: ${closes(loadStats.malformedCloses)}`,
      );
    }
    if (others(loadStats.slowCloses, '1013') > 0) {
      fail(
        `slow readers closed otherwise than with 1013: ${closes(loadStats.slowCloses)}`,
      );
    }
    if (loadStats.fastReaderShortfalls > 0) {
      fail(
        `the fast reader missed flood messages in ${loadStats.fastReaderShortfalls} rounds`,
      );
    }
    if (
      loadStats.malformedClients == 0 ||
      loadStats.slowReaders == 0 ||
      loadStats.drops == 0
    ) {
      fail('some kind of load never ran');
    }

    await server.ask('stop');
    const [serverCode] = await withTimeout(
      server.exited,
      'the server to exit by itself',
      30_000,
    ).catch((error) => {
      fail(error.message);
      return [null];
    });
    if (serverCode !== 0) {
      fail(`the server process exited with ${serverCode}`);
    }
    if (server.stderr() != '') {
      fail(`the server wrote to stderr:\n${server.stderr()}`);
    }

    const figures = [
      ['duration', `${WARMUP_SECONDS} s warm-up + ${MAIN_SECONDS} s main`],
      [
        'TinyBase clients / sync paths',
        `${LOAD.clients} / ${LOAD.paths} (half persisted)`,
      ],
      [
        'connections made',
        `${loadStats.connections} TinyBase + ${loadStats.rawConnections} raw`,
      ],
      ['connect attempts that failed', loadStats.connectFailures],
      ['abrupt drops (no close frame)', loadStats.drops],
      ['cells written', loadStats.writes],
      [
        'sync messages sent / received',
        `${loadStats.syncSends} / ${loadStats.syncReceives}`,
      ],
      ['healthy clients closed by the server', closes(loadStats.serverCloses)],
      [
        'malformed clients / frames',
        `${loadStats.malformedClients} / ${loadStats.malformedFrames}`,
      ],
      ['malformed clients closed', closes(loadStats.malformedCloses)],
      [
        'slow-reader rounds / slow readers',
        `${loadStats.slowRounds} / ${loadStats.slowReaders}`,
      ],
      ['slow readers closed', closes(loadStats.slowCloses)],
      [
        'flood messages to slow-reader paths',
        `${loadStats.floodMessages} (${mib(loadStats.floodBytes)})`,
      ],
      ['server onIgnoredError', JSON.stringify(serverStats.errors)],
      [
        'RSS baseline / peak / end',
        `${mib(baseline.rss)} / ${mib(peak.rss)} / ${mib(end.rss)}`,
      ],
      [
        'fds baseline / peak / end',
        `${baseline.fds} / ${peak.fds} / ${end.fds}`,
      ],
      [
        'V8 heap used baseline / end',
        `${mib(baseline.heapUsed)} / ${mib(end.heapUsed)}`,
      ],
      [
        'paths converged on reconnecting alone',
        `${convergedOnReconnect}/${LOAD.paths}`,
      ],
      [
        'convergence',
        `${LOAD.paths - mismatched.length}/${LOAD.paths} paths after ${rounds} announce round(s); ` +
          `${Math.min(...rows)}-${Math.max(...rows)} rows a path`,
      ],
      [
        'persisted files matching',
        `${filesMatching.length}/${persisted.length}`,
      ],
      ['server emptied / exited by itself', `${emptied} / ${serverCode === 0}`],
      ['result', failures.length == 0 ? 'PASS' : `FAIL (${failures.length})`],
    ];
    if (serverStats.firstOtherErrors.length > 0) {
      figures.splice(-1, 0, [
        'first other errors',
        serverStats.firstOtherErrors.join(' | '),
      ]);
    }
    const width = Math.max(...figures.map(([name]) => name.length));
    console.log();
    for (const [name, value] of figures) {
      console.log(`  ${name.padEnd(width)}  ${value}`);
    }
    console.log();
  } catch (error) {
    fail(error.stack ?? String(error));
  } finally {
    for (const process of [load, server]) {
      if (
        process &&
        process.child.exitCode === null &&
        process.child.signalCode === null
      ) {
        if (process.child.connected) {
          process.child.disconnect();
        }
        await withTimeout(process.exited, 'a child to exit', 10_000).catch(
          () => {
            process.child.kill('SIGKILL');
          },
        );
      }
    }
    rmSync(dir, {recursive: true, force: true});
  }
  for (const failure of failures) {
    console.log(`FAIL: ${failure}`);
  }
  return failures.length == 0 ? 0 : 1;
};

const watchdog = setTimeout(() => {
  console.log(`FAIL: the soak ran past ${WHOLE_RUN_MS / 1000} s`);
  process.exit(1);
}, WHOLE_RUN_MS);
watchdog.unref();
process.exitCode = await main();
