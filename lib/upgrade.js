// Answering WebSocket upgrades on the native plane (the `nativeUpgrade` option): the upgrade
// requests of the HTTP server a WebSocketServer listens on are taken before ws sees them, and a
// plain TCP request that ws would accept as it is goes to the plane with its 101 response, which
// the plane writes. No ws WebSocket, and no write on the JS thread, is made for it. Any other
// request goes on to the listeners it would have reached, ws's among them, which answer it as
// before.

import {createHash} from 'node:crypto';
import {plainFdOf} from './takeover.js';

// ws's state while it accepts connections.
const WS_RUNNING = 0;
// RFC 6455's key for Sec-WebSocket-Accept.
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
// As ws: 16 random bytes in base64.
const KEY = /^[+/0-9A-Za-z]{22}==$/;
// An RFC 7230 token, what ws accepts as a subprotocol.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * The subprotocols a header offers, in order, or undefined where ws's own parser would refuse the
 * header or could read it otherwise (left for ws to answer).
 */
const protocolsOf = (header) => {
  if (header === undefined) {
    return [];
  }
  // ws skips only spaces and tabs around each one.
  const protocols = header
    .split(',')
    .map((protocol) => protocol.replace(/^[ \t]+|[ \t]+$/g, ''));
  return protocols.every((protocol) => TOKEN.test(protocol)) &&
    new Set(protocols).size == protocols.length
    ? protocols
    : undefined;
};

/**
 * What the plane needs to answer `request` exactly as `webSocketServer` would: `{fd, key,
 * protocol, headers}`, or undefined for a request ws must see (one it refuses, one its options
 * make it judge itself, or one on a socket that stays in JS).
 */
export const nativeUpgradeOf = (webSocketServer, request, socket) => {
  const {headers, method} = request;
  const key = headers['sec-websocket-key'];
  const version = +headers['sec-websocket-version'];
  const options = webSocketServer.options ?? {};
  const protocols = protocolsOf(headers['sec-websocket-protocol']);
  // As ws, which destroys a socket that is no longer readable and writable.
  const fd =
    socket.readable && socket.writable ? plainFdOf(socket, request) : undefined;
  if (
    // Closing: ws answers 503.
    webSocketServer._state > WS_RUNNING ||
    method !== 'GET' ||
    headers.upgrade?.toLowerCase() !== 'websocket' ||
    !KEY.test(key ?? '') ||
    (version !== 13 && version !== 8) ||
    !webSocketServer.shouldHandle(request) ||
    protocols === undefined ||
    (options.perMessageDeflate &&
      headers['sec-websocket-extensions'] !== undefined) ||
    options.verifyClient ||
    (options.handleProtocols && protocols.length > 0) ||
    fd === undefined
  ) {
    return undefined;
  }
  const digest = createHash('sha1')
    .update(key + GUID)
    .digest('base64');
  const response = [
    'HTTP/1.1 101 Switching Protocols',
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Accept: ${digest}`,
  ];
  // As ws without handleProtocols: the first one offered.
  const [protocol] = protocols;
  if (protocol !== undefined) {
    response.push(`Sec-WebSocket-Protocol: ${protocol}`);
  }
  return {fd, key, protocol, headers: response};
};

/**
 * Puts `take(request, socket, head)` in front of the 'upgrade' listeners `server` has now: a
 * request it returns false for reaches them as before. Returns what puts them back.
 */
export const takeUpgrades = (server, take) => {
  const others = server.rawListeners('upgrade');
  server.removeAllListeners('upgrade');
  const onUpgrade = (request, socket, head) => {
    if (!take(request, socket, head)) {
      for (const listener of others) {
        listener.call(server, request, socket, head);
      }
    }
  };
  server.on('upgrade', onUpgrade);
  return () => {
    server.off('upgrade', onUpgrade);
    for (const listener of others) {
      server.on('upgrade', listener);
    }
  };
};
