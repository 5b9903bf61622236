// Child processes of a benchmark run: the server under test, the load
// generator, and machine-wide CPU accounting.

import {execFileSync, spawn} from 'node:child_process';
import {readFileSync} from 'node:fs';
import {freePort, spawnRedisServer} from '../../scripts/redis-server.js';
import {createInterface} from 'node:readline';

const SERVER_START_TIMEOUT_MS = 20_000;
const SERVER_REPLY_TIMEOUT_MS = 10_000;
const SERVER_STOP_TIMEOUT_MS = 6_000;
const STDERR_TAIL_LINES = 12;

const children = new Set();

// A child left running would keep loading the machine after the harness is
// gone, so every exit path of the harness ends them.
export const killChildren = () => {
  for (const child of children) {
    child.kill('SIGKILL');
  }
};

const track = (child) => {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
};

const keepTail = (stream, tail, onLine = () => false) =>
  createInterface({input: stream}).on('line', (line) => {
    if (!onLine(line)) {
      tail.push(line);
      if (tail.length > STDERR_TAIL_LINES) {
        tail.shift();
      }
    }
  });

const pinned = (cpu, argv) =>
  cpu == null ? argv : ['taskset', '--cpu-list', String(cpu), ...argv];

// The storm needs thousands of descriptors in the server too; raising the
// soft limit to the hard one needs no privilege.
const withRaisedFileLimit = (argv) => [
  'sh',
  '-c',
  'ulimit -n "$(ulimit -H -n)" 2>/dev/null; exec "$@"',
  'sh',
  ...argv,
];

const exited = (child) =>
  new Promise((resolve) => {
    if (child.exitCode != null || child.signalCode != null) {
      resolve();
    } else {
      child.once('exit', () => resolve());
    }
  });

const withTimeout = (promise, ms, message) => {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(message)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
};

// Starts a server (see servers/serve.js and the loadgen's relay mode for the
// line protocol) and resolves once it has said which port it listens on.
export const startServer = async ({command, cpu, cwd}) => {
  const argv = withRaisedFileLimit(pinned(cpu, command));
  const child = track(
    spawn(argv[0], argv.slice(1), {cwd, stdio: ['pipe', 'pipe', 'pipe']}),
  );
  const stderrTail = [];
  keepTail(child.stderr, stderrTail);
  const pendingLines = [];
  const waiting = [];
  createInterface({input: child.stdout}).on('line', (line) => {
    const next = waiting.shift();
    if (next) {
      next.resolve(line);
    } else {
      pendingLines.push(line);
    }
  });
  const whyGone = () =>
    `server exited (${child.exitCode ?? child.signalCode})` +
    (stderrTail.length ? `: ${stderrTail.join('\n')}` : '');
  child.once('exit', () => {
    for (const next of waiting.splice(0)) {
      next.reject(new Error(whyGone()));
    }
  });
  child.stdin.on('error', () => 0);

  const nextLine = (ms) =>
    pendingLines.length
      ? Promise.resolve(pendingLines.shift())
      : child.exitCode != null || child.signalCode != null
        ? Promise.reject(new Error(whyGone()))
        : withTimeout(
            new Promise((resolve, reject) => waiting.push({resolve, reject})),
            ms,
            'server did not answer in time',
          );
  const nextJson = async (ms) => {
    const line = await nextLine(ms);
    try {
      return JSON.parse(line);
    } catch {
      throw new Error(`server printed something other than JSON: ${line}`);
    }
  };

  const stop = async () => {
    child.stdin.end();
    await withTimeout(exited(child), SERVER_STOP_TIMEOUT_MS, '').catch(() => {
      child.kill('SIGKILL');
      return exited(child);
    });
  };

  let hello;
  try {
    hello = await nextJson(SERVER_START_TIMEOUT_MS);
  } catch (error) {
    await stop();
    throw error;
  }
  if (hello.error != null || typeof hello.port != 'number') {
    await stop();
    throw new Error(
      hello.error ?? `unexpected first line ${JSON.stringify(hello)}`,
    );
  }
  return {
    port: hello.port,
    pid: child.pid,
    stats: () => {
      child.stdin.write('stats\n');
      return nextJson(SERVER_REPLY_TIMEOUT_MS);
    },
    stop,
  };
};

// A redis-server of the run's own, for the cluster scenario's nodes to meet in.
export const startRedis = async () => {
  const port = await freePort();
  const child = track(await spawnRedisServer(port));
  return {
    url: `redis://127.0.0.1:${port}`,
    pid: child.pid,
    stop: () => child.stop(),
  };
};

// Runs the load generator to completion and resolves with its JSON report.
// `onMarker` is called for marker lines (such as HOLD) on its stderr.
export const runLoadgen = ({binary, args, cpu, cwd, timeoutMs, onMarker}) =>
  new Promise((resolve, reject) => {
    const argv = pinned(cpu, [binary, ...args]);
    const child = track(
      spawn(argv[0], argv.slice(1), {cwd, stdio: ['ignore', 'pipe', 'pipe']}),
    );
    let stdout = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk) => (stdout += chunk));
    const stderrTail = [];
    keepTail(child.stderr, stderrTail, (line) => {
      if (/^[A-Z]+$/.test(line)) {
        onMarker?.(line);
        return true;
      }
      return false;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code == 0) {
        try {
          resolve(JSON.parse(stdout));
        } catch {
          reject(new Error(`loadgen printed no JSON: ${stdout.slice(0, 200)}`));
        }
      } else {
        reject(
          new Error(
            `loadgen ${signal ? `killed (${signal}, timed out?)` : `exited ${code}`}` +
              (stderrTail.length ? `: ${stderrTail.join('\n')}` : ''),
          ),
        );
      }
    });
  });

const CLOCK_TICKS_PER_S = Number(
  execFileSync('getconf', ['CLK_TCK'], {encoding: 'utf8'}).trim(),
);

// CPU time and memory of a process read from /proc, which answers at once
// however busy the process is (its own event loop may not).
// Several processes' CPU time and memory, added up.
export const processesStats = (pids) => {
  const each = pids.map(processStats);
  if (each.some((stats) => stats === undefined)) {
    return undefined;
  }
  const sum = (key) => each.reduce((total, stats) => total + stats[key], 0);
  return {
    cpuMs: sum('cpuMs'),
    rssKiB: sum('rssKiB'),
    peakRssKiB: sum('peakRssKiB'),
  };
};

export const processStats = (pid) => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name, which may hold spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (name) =>
      Number(status.match(new RegExp(`^${name}:\\s+(\\d+)`, 'm'))?.[1]);
    return {
      cpuMs:
        ((Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S) * 1000,
      rssKiB: kib('VmRSS'),
      peakRssKiB: kib('VmHWM'),
    };
  } catch {
    return undefined;
  }
};

// Jiffies of the whole machine from /proc/stat: all, and those spent idle.
export const machineCpu = () => {
  const fields = readFileSync('/proc/stat', 'utf8')
    .split('\n')[0]
    .trim()
    .split(/\s+/)
    .slice(1, 9)
    .map(Number);
  const [, , , idle, iowait] = fields;
  return {
    total: fields.reduce((sum, value) => sum + value, 0),
    idle: idle + iowait,
  };
};

export const busyShare = (from, to) => {
  const total = to.total - from.total;
  return total > 0 ? (total - (to.idle - from.idle)) / total : null;
};
