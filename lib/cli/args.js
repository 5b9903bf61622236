import {parseArgs} from 'node:util';
import {LOG_FORMATS} from './log.js';

export const COMMAND = 'tinybase-ws-server';
export const DEFAULT_PORT = 8047;
export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_DATA_DIR = 'tinybase-data';

export const HELP = `Usage: ${COMMAND} [options]

Runs a TinyBase WebSocket sync server. Clients connect with
createWsSynchronizer to ws://HOST:PORT/<path id>; each path id is synced
separately.

Options:
  -p, --port <port>   port to listen on (default ${DEFAULT_PORT}; 0 picks a free one)
      --host <host>   address to listen on (default ${DEFAULT_HOST}, this machine
                      only; use 0.0.0.0 or :: to accept other machines)
  -d, --data <dir>    keep each path's data in a JSON file in <dir>
                      (default ./${DEFAULT_DATA_DIR})
  -m, --memory        keep no data on the server: clients sync with each other
      --keep-path-seconds <seconds>
                      keep a path loaded this long after its last client
                      leaves, so a client coming back soon finds it ready
                      (default 0)
      --redis <url>   serve each path together with the other servers using
                      this Redis (redis://[user:password@]host:port, or
                      rediss:// for TLS): put any number of them behind a
                      load balancer
      --cluster-prefix <prefix>
                      names this cluster's channels in Redis, so clusters can
                      share one (default tinybase; no ':')
      --auth-jwt-secret-file <file>
                      admit only clients whose URL has a JWT in its token
                      parameter, signed (HS256/384/512) with the secret in
                      <file>, and let each write or read the paths its
                      "tinybase" claim names, e.g.
                      {"tinybase": {"write": ["rooms/*"], "read": ["**"]}}
                      (* is any run without a /, ** any run at all)
      --auth-jwt-public-key-file <file>
                      the same for tokens signed with the private key of the
                      PEM public key in <file> (RS*, PS*, ES*, EdDSA)
      --metrics=false serve no /metrics or /health (by default the port
                      also answers GET /metrics, Prometheus text, and GET
                      /health, 200 while accepting and 503 while stopping)
  -q, --quiet         print only the listening line and errors
  -v, --verbose       also log paths and clients coming and going, and errors
                      the server ignores
      --log-format <format>
                      text (default) or json: one JSON object a line
  -h, --help          show this help
      --version       show the version

The server prints "${COMMAND} listening on ws://HOST:PORT" once it
accepts connections. SIGINT or SIGTERM stops it: /health answers 503,
clients are closed with code 1001 (going away), data is saved, and it exits
with status 0.
`;

export class UsageError extends Error {}

const OPTIONS = {
  port: {type: 'string', short: 'p'},
  host: {type: 'string'},
  data: {type: 'string', short: 'd'},
  memory: {type: 'boolean', short: 'm'},
  redis: {type: 'string'},
  'cluster-prefix': {type: 'string'},
  'auth-jwt-secret-file': {type: 'string'},
  'auth-jwt-public-key-file': {type: 'string'},
  metrics: {type: 'string'},
  'keep-path-seconds': {type: 'string'},
  'log-format': {type: 'string'},
  quiet: {type: 'boolean', short: 'q'},
  verbose: {type: 'boolean', short: 'v'},
  help: {type: 'boolean', short: 'h'},
  version: {type: 'boolean'},
};

const parseSeconds = (seconds) => {
  const number = /^\d+(\.\d+)?$/.test(seconds) ? Number(seconds) : NaN;
  if (!Number.isFinite(number)) {
    throw new UsageError(
      `--keep-path-seconds must be a number of seconds, 0 or more, not '${seconds}'`,
    );
  }
  return number;
};

const parsePort = (port) => {
  const number = /^\d{1,5}$/.test(port) ? Number(port) : NaN;
  if (!(number <= 65535)) {
    throw new UsageError(
      `--port must be a whole number from 0 to 65535, not '${port}'`,
    );
  }
  return number;
};

/**
 * Turns the command's arguments into options, throwing a UsageError (which
 * the caller reports with exit status 2) for anything it cannot honour.
 */
export const parseCliArgs = (args) => {
  let values;
  try {
    ({values} = parseArgs({args, options: OPTIONS, strict: true}));
  } catch (error) {
    if (String(error?.code).startsWith('ERR_PARSE_ARGS_')) {
      throw new UsageError(error.message);
    }
    throw error;
  }
  if (values.help || values.version) {
    return {help: values.help ?? false, version: values.version ?? false};
  }
  if (values.quiet && values.verbose) {
    throw new UsageError('--quiet and --verbose cannot be used together');
  }
  if (values.memory && values.data !== undefined) {
    throw new UsageError('--memory and --data cannot be used together');
  }
  if (values.host === '') {
    throw new UsageError('--host cannot be empty');
  }
  if (values.data === '') {
    throw new UsageError('--data cannot be empty');
  }
  for (const flag of ['auth-jwt-secret-file', 'auth-jwt-public-key-file']) {
    if (values[flag] === '') {
      throw new UsageError(`--${flag} cannot be empty`);
    }
  }
  if (values.redis === '') {
    throw new UsageError('--redis cannot be empty');
  }
  if (values['cluster-prefix'] !== undefined && values.redis === undefined) {
    throw new UsageError('--cluster-prefix needs --redis');
  }
  const logFormat = values['log-format'] ?? 'text';
  if (!LOG_FORMATS.includes(logFormat)) {
    throw new UsageError(
      `--log-format must be ${LOG_FORMATS.join(' or ')}, not '${logFormat}'`,
    );
  }
  const metrics = values.metrics ?? 'true';
  if (metrics != 'true' && metrics != 'false') {
    throw new UsageError(
      `--metrics must be true or false, not '${values.metrics}'`,
    );
  }
  return {
    help: false,
    version: false,
    port: values.port === undefined ? DEFAULT_PORT : parsePort(values.port),
    host: values.host ?? DEFAULT_HOST,
    dataDir: values.memory ? undefined : (values.data ?? DEFAULT_DATA_DIR),
    logLevel: values.quiet ? 'quiet' : values.verbose ? 'verbose' : 'normal',
    logFormat,
    metrics: metrics == 'true',
    keepPathSeconds:
      values['keep-path-seconds'] === undefined
        ? 0
        : parseSeconds(values['keep-path-seconds']),
    cluster:
      values.redis === undefined
        ? undefined
        : {redis: values.redis, prefix: values['cluster-prefix']},
    auth:
      values['auth-jwt-secret-file'] === undefined &&
      values['auth-jwt-public-key-file'] === undefined
        ? undefined
        : {
            secretFile: values['auth-jwt-secret-file'],
            publicKeyFile: values['auth-jwt-public-key-file'],
          },
  };
};
