import {readFileSync} from 'node:fs';
import {COMMAND, HELP, UsageError, parseCliArgs} from './args.js';
import {createLog} from './log.js';
import {startSyncServer} from './server.js';

const USAGE_EXIT_CODE = 2;

// Once destroy() has finished nothing should be left to run; if a stray
// handle keeps the event loop alive anyway, the exit must still happen.
const EXIT_GRACE_MS = 2_000;

const readVersion = () =>
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url)))
    .version;

/**
 * Runs the `tinybase-ws-server` command with `args` (without node and the
 * script). `loadServer` resolves to the module to serve with: its
 * createWsServer and, if it has them, its registerMetrics, closeClients and
 * getListenAddress. It is only called
 * once a server is actually needed, so `--help` and bad flags work even where
 * the server cannot be loaded.
 *
 * The outcome is left in process.exitCode: 0, 1 for a failure, or 2 for
 * arguments it cannot honour.
 */
export const runCli = async (args, loadServer) => {
  let options;
  try {
    options = parseCliArgs(args);
  } catch (error) {
    if (!(error instanceof UsageError)) {
      throw error;
    }
    process.stderr.write(
      `${COMMAND}: ${error.message}\nRun '${COMMAND} --help' for the options.\n`,
    );
    process.exitCode = USAGE_EXIT_CODE;
    return;
  }
  if (options.help) {
    process.stdout.write(HELP);
    return;
  }
  if (options.version) {
    process.stdout.write(readVersion() + '\n');
    return;
  }

  const log = createLog(options.logFormat, options.logLevel);
  let server;
  try {
    const {createWsServer, registerMetrics, closeClients, getListenAddress} =
      await loadServer();
    server = await startSyncServer({
      createWsServer,
      registerMetrics,
      closeClients,
      getListenAddress,
      port: options.port,
      host: options.host,
      dataDir: options.dataDir,
      cluster: options.cluster,
      auth: options.auth,
      keepPathSeconds: options.keepPathSeconds,
      metrics: options.metrics,
      log,
    });
  } catch (error) {
    log.error(`${COMMAND}: could not start: ${error?.message ?? error}`);
    process.exitCode = 1;
    return;
  }

  let stopping = false;
  const onSignal = async (signal) => {
    if (stopping) {
      log.error(`${COMMAND}: ${signal} again, exiting without waiting`);
      process.exit(1);
    }
    stopping = true;
    log.info(`${COMMAND} stopping (${signal})`);
    try {
      await server.stop();
      log.info(`${COMMAND} stopped`);
      process.exitCode = 0;
    } catch (error) {
      log.error(
        `${COMMAND}: could not stop cleanly: ${error?.message ?? error}`,
      );
      process.exitCode = 1;
    }
    setTimeout(() => process.exit(), EXIT_GRACE_MS).unref();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  log.info(
    server.dataDir === undefined
      ? 'keeping data in memory only'
      : `saving data in ${server.dataDir}`,
  );
  // Always printed, even with --quiet: it is how scripts know the server is
  // ready and which port it got.
  log.ready(`${COMMAND} listening on ${server.url}`, {url: server.url});
};
