// A private redis-server for the cluster tests and the cluster benchmark: on a free port of
// 127.0.0.1, keeping nothing on disk, so its owner can stop and restart it at will.

import {spawn} from 'node:child_process';
import {once} from 'node:events';
import {connect, createServer} from 'node:net';
import {setTimeout as delay} from 'node:timers/promises';

export const REDIS_MISSING =
  'redis-server is not on PATH. The cluster tests and benchmark start their own Redis 7: ' +
  "install it (Debian/Ubuntu: 'apt-get install redis-server', macOS: 'brew install redis') " +
  'and run them again.';

const STARTUP_MS = 20_000;

export const freePort = async () => {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const {port} = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
};

// Whether something on `port` answers a PING with PONG.
const answersPing = (port) =>
  new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let reply = '';
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (data) => {
      reply += data;
      if (reply.includes('\r\n')) {
        socket.destroy();
        resolve(reply.startsWith('+PONG'));
      }
    });
    socket.on('error', () => resolve(false));
  });

/**
 * Starts redis-server on `port` (and with `options`, more of its command-line options) and
 * resolves with its child process once it answers; rejects with REDIS_MISSING where it is not
 * installed.
 */
export const spawnRedisServer = async (port, options = []) => {
  const child = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      ...options,
    ],
    {stdio: 'ignore'},
  );
  const exited = once(child, 'exit');
  const failed = new Promise((_, reject) =>
    child.once('error', (error) =>
      reject(error.code == 'ENOENT' ? new Error(REDIS_MISSING) : error),
    ),
  );
  const deadline = Date.now() + STARTUP_MS;
  const ready = (async () => {
    while (!(await answersPing(port))) {
      if (Date.now() > deadline) {
        throw new Error(`redis-server did not answer on port ${port}`);
      }
      await delay(20);
    }
  })();
  try {
    await Promise.race([failed, ready]);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  // Killed, and gone once the promise resolves.
  child.stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
    }
    await exited;
  };
  return child;
};
