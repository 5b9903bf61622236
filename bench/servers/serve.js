// Runs one sync server for the benchmark harness as a child process.
//
// Protocol with the harness, one JSON object per line on stdout:
// - first line: {"port": N} once listening, or {"error": "..."} if the
//   implementation could not be loaded or started (then the process exits 1);
// - a "stats" line on stdin is answered with CPU time, memory, event-loop
//   delay since the previous "stats" and the count of errors the server
//   reported through onIgnoredError (a valid load must cause none);
// - stdin closing, or SIGTERM, destroys the server and exits.
// `--persist` gives every path a persister: an in-memory one, or with `--persister file`
// TinyBase's own file persister writing to a temporary folder.
// Nothing else may be written to stdout; diagnostics go to stderr.
//
// With `--authorize` the server is given an `authorize` hook (its sixth argument) that grants
// every client write access from a Promise; TinyBase's own server ignores it. With
// `--native-upgrade` it is given `nativeUpgrade: true`, which TinyBase's own server ignores too.
// With `--native-listen` a server whose module has getListenAddress (this package's) listens on
// its native plane (the `listen` option), for a WebSocketServer on an HTTP server that does not
// listen itself; TinyBase's own server listens as without the flag.
//
// With `--scrape-ms N` the server reads a prom-client registry every N ms,
// as a Prometheus scrape would: Node's default process metrics, and the
// server's own when its module has registerMetrics.

import {mkdtempSync, rmSync} from 'node:fs';
import {createServer} from 'node:http';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {monitorEventLoopDelay} from 'node:perf_hooks';
import {createInterface} from 'node:readline';
import {Registry, collectDefaultMetrics} from 'prom-client';
import {createMergeableStore} from 'tinybase';
import {createCustomPersister, Persists} from 'tinybase/persisters';
import {createFilePersister} from 'tinybase/persisters/persister-file';
import {WebSocketServer} from 'ws';

const IGNORED_ERROR_SAMPLES = 5;
const DESTROY_TIMEOUT_MS = 3000;
// monitorEventLoopDelay records each whole timer interval, so an idle loop reads the resolution
// itself; the delay is what exceeds it. A fine resolution also catches short stalls that a coarse
// timer would sleep through.
const ELD_RESOLUTION_MS = 1;
// Room for the storm's 2,000 simultaneous connects: with ws's default (511) the kernel drops the
// excess SYNs and the clients retry a second later, which would time the kernel, not the server.
const ACCEPT_BACKLOG = 4096;

const reply = (object) => process.stdout.write(JSON.stringify(object) + '\n');

const errorText = (error) => String(error?.stack ?? error?.message ?? error);

const flagValue = (name) => {
  const flag = process.argv.indexOf(name);
  return flag < 0 ? undefined : process.argv[flag + 1];
};

export const serve = async (loadCreateWsServer) => {
  const persist = process.argv.includes('--persist');
  // `--redis URL`: a node of a cluster (TinyBase's own server ignores the sixth argument).
  const redisAt = process.argv.indexOf('--redis');
  const nativeOptions = {
    ...(process.argv.includes('--authorize')
      ? {authorize: async () => 'write'}
      : {}),
    ...(redisAt < 0 ? {} : {cluster: {redis: process.argv[redisAt + 1]}}),
    ...(process.argv.includes('--native-upgrade') ? {nativeUpgrade: true} : {}),
  };
  const scrapeMs = Number(flagValue('--scrape-ms')) || undefined;
  const persisterKind = flagValue('--persister') ?? 'memory';
  let createWsServer;
  let registerMetrics;
  let getListenAddress;
  try {
    ({createWsServer, registerMetrics, getListenAddress} =
      await loadCreateWsServer());
    if (typeof createWsServer != 'function') {
      throw new Error('the module exports no createWsServer function');
    }
  } catch (error) {
    reply({error: errorText(error)});
    process.exit(1);
  }

  let ignoredErrors = 0;
  const ignoredErrorSamples = [];
  const onIgnoredError = (error) => {
    ignoredErrors++;
    if (ignoredErrorSamples.length < IGNORED_ERROR_SAMPLES) {
      ignoredErrorSamples.push(String(error?.message ?? error));
    }
  };

  // The in-memory persister is cheap on purpose: it measures the server-side client that a
  // persister brings into every path, not a storage engine. The file persister is what a user
  // would reach for first, with its writes and its watching of its own file.
  const savedContent = new Map();
  const folder =
    persisterKind == 'file'
      ? mkdtempSync(join(tmpdir(), 'tinybase-bench-'))
      : undefined;
  const persisters = [];
  const createPersister = (pathId) =>
    persisterKind == 'file'
      ? createFilePersister(
          createMergeableStore(),
          join(folder, `${encodeURIComponent(pathId) || 'root'}.json`),
          onIgnoredError,
        )
      : createCustomPersister(
          createMergeableStore(),
          async () => savedContent.get(pathId),
          async (getContent) => {
            savedContent.set(pathId, getContent());
          },
          () => 0,
          () => 0,
          onIgnoredError,
          Persists.MergeableStoreOnly,
        );
  const createPersisterForPath = (pathId) => {
    const persister = createPersister(pathId);
    persisters.push(persister);
    return persister;
  };
  // Saves and loads of every persister the run created, as TinyBase counts them.
  const persisterStats = () =>
    persisters.reduce(
      (total, persister) => {
        const {saves = 0, loads = 0} = persister.getStats?.() ?? {};
        return {saves: total.saves + saves, loads: total.loads + loads};
      },
      {saves: 0, loads: 0},
    );

  let wsServer;
  let webSocketServer;
  const listensNatively =
    process.argv.includes('--native-listen') && getListenAddress !== undefined;
  try {
    webSocketServer = new WebSocketServer(
      listensNatively
        ? {server: createServer()}
        : {host: '127.0.0.1', port: 0, backlog: ACCEPT_BACKLOG},
    );
    wsServer = createWsServer(
      webSocketServer,
      persist ? createPersisterForPath : undefined,
      onIgnoredError,
      undefined,
      undefined,
      listensNatively
        ? {
            ...nativeOptions,
            listen: {port: 0, host: '127.0.0.1', backlog: ACCEPT_BACKLOG},
          }
        : nativeOptions,
    );
    if (!listensNatively && !webSocketServer.address()) {
      await new Promise((resolve, reject) => {
        webSocketServer.once('listening', resolve);
        webSocketServer.once('error', reject);
      });
    }
  } catch (error) {
    reply({error: errorText(error)});
    process.exit(1);
  }

  let scraping;
  if (scrapeMs !== undefined) {
    const registry = new Registry();
    collectDefaultMetrics({register: registry});
    registerMetrics?.(wsServer, registry);
    scraping = setInterval(() => registry.metrics(), scrapeMs);
  }

  const eventLoopDelay = monitorEventLoopDelay({resolution: ELD_RESOLUTION_MS});
  const delayMs = (nanoseconds) =>
    Math.max(0, nanoseconds / 1e6 - ELD_RESOLUTION_MS);
  eventLoopDelay.enable();
  reply({
    port: (listensNatively
      ? getListenAddress(wsServer)
      : webSocketServer.address()
    ).port,
  });

  const stats = () => {
    const {user, system} = process.cpuUsage();
    const result = {
      cpuMs: (user + system) / 1000,
      rssKiB: Math.round(process.memoryUsage.rss() / 1024),
      peakRssKiB: process.resourceUsage().maxRSS,
      // Null rather than a made-up figure when no delay was sampled yet.
      eldP99Ms: eventLoopDelay.count
        ? delayMs(eventLoopDelay.percentile(99))
        : null,
      eldMaxMs: eventLoopDelay.count ? delayMs(eventLoopDelay.max) : null,
      ignoredErrors,
      ignoredErrorSamples,
      ...(persist ? persisterStats() : {}),
      ...wsServer.getStats(),
    };
    eventLoopDelay.reset();
    return result;
  };

  let stopping = false;
  const stop = async () => {
    if (stopping) {
      return;
    }
    stopping = true;
    clearInterval(scraping);
    eventLoopDelay.disable();
    await Promise.race([
      wsServer.destroy().catch(() => 0),
      new Promise((resolve) => setTimeout(resolve, DESTROY_TIMEOUT_MS)),
    ]);
    if (folder) {
      rmSync(folder, {recursive: true, force: true});
    }
    process.exit(0);
  };

  const lines = createInterface({input: process.stdin});
  lines.on('line', (line) => {
    if (line.trim() == 'stats') {
      reply(stats());
    }
  });
  lines.on('close', stop);
  process.on('SIGTERM', stop);
};
