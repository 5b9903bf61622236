// Which plane each connection runs on, counted per server and for the whole process, with the
// reason every connection kept in JS stays there. A reason the user can do something about is
// also told once per process as a warning with a code of its own (so `--disable-warning=<code>`
// silences exactly that one), because a connection in JS is served correctly, only slower: nothing
// else would ever say the fast path is off.

const WARNING_TYPE = 'TinyBaseWsServerNativeWarning';

// reason -> [code, what to do about it]
const FIXABLE = {
  deflate: [
    'TBWSN001',
    'Connections that negotiate permessage-deflate stay in JS, on the slower plane. ' +
      'Create the WebSocketServer without perMessageDeflate to have them taken over natively.',
  ],
  instrumented: [
    'TBWSN002',
    "Connections whose WebSocket user code hooked into before createWsServer's own " +
      "'connection' listener ran (a 'message' listener, or a replaced send, close, terminate, " +
      'ping, pong, pause, resume or bufferedAmount) stay in JS, on the slower plane. ' +
      "Add 'message' listeners after createWsServer, or leave those members as ws made them.",
  ],
  'unknown-ws-shape': [
    'TBWSN003',
    'Connections whose WebSocket is not built as ws 8 builds it stay in JS, on the slower plane. ' +
      'Use a WebSocketServer from ws 8 to have them taken over natively.',
  ],
  'already-reading': [
    'TBWSN004',
    "Connections that ws had started reading before createWsServer's 'connection' listener ran " +
      'stay in JS, on the slower plane. With noServer, emit the connection event in the ' +
      'handleUpgrade callback itself, not after awaiting something.',
  ],
  tls: [
    'TBWSN005',
    'Connections over TLS stay in JS, on the slower plane. Terminate TLS in front of Node ' +
      '(a reverse proxy or load balancer) to have them taken over natively.',
  ],
};

const warned = new Set();
const warnOnce = (reason) => {
  const fixable = FIXABLE[reason];
  if (fixable !== undefined && !warned.has(reason)) {
    warned.add(reason);
    const [code, message] = fixable;
    process.emitWarning(message, {type: WARNING_TYPE, code});
  }
};

const emptyCounts = () => ({
  native: {opened: 0, open: 0},
  js: {opened: 0, open: 0, byReason: {}},
});

const copyCounts = ({native, js}) => ({
  native: {...native},
  js: {...js, byReason: {...js.byReason}},
});

const processCounts = emptyCounts();
// wsServer -> its counts
const serverCounts = new WeakMap();
// WebSocket -> {plane, reason?}
const connectionPlanes = new WeakMap();

/**
 * Counts for one server: `opened(webSocket, reason)` records a connection (native when `reason`
 * is undefined) and returns what records its close, which is safe to call more than once.
 * `openedUpgraded()` and `closedUpgraded()` count a connection whose upgrade the plane answered:
 * there may be very many, so nothing is kept for each; the caller closes each once.
 */
export const createPlaneCounts = () => {
  const counts = emptyCounts();
  const change = (plane, reason, by) => {
    for (const {[plane]: planeCounts} of [counts, processCounts]) {
      if (by > 0) {
        planeCounts.opened++;
      }
      planeCounts.open += by;
      if (reason !== undefined) {
        planeCounts.byReason[reason] = (planeCounts.byReason[reason] ?? 0) + 1;
      }
    }
  };
  const opened = (webSocket, reason) => {
    const plane = reason === undefined ? 'native' : 'js';
    change(plane, reason, 1);
    connectionPlanes.set(
      webSocket,
      reason === undefined ? {plane} : {plane, reason},
    );
    if (reason !== undefined) {
      warnOnce(reason);
    }
    let open = true;
    return () => {
      if (open) {
        open = false;
        change(plane, undefined, -1);
      }
    };
  };
  const openedUpgraded = () => change('native', undefined, 1);
  const closedUpgraded = () => change('native', undefined, -1);
  const register = (wsServer) => serverCounts.set(wsServer, counts);
  return {opened, openedUpgraded, closedUpgraded, register};
};

/**
 * How many connections each plane has taken (`opened`) and holds now (`open`), and, for those kept
 * in JS, how many were kept for each reason since the start. For one server of this package, or,
 * without an argument, for every server in this process; undefined for any other server.
 */
export const getPlaneStats = (wsServer) => {
  const counts =
    wsServer === undefined ? processCounts : serverCounts.get(wsServer);
  return counts === undefined ? undefined : copyCounts(counts);
};

/**
 * The plane of a WebSocket one of this package's servers accepted as a client: `{plane:
 * 'native'}` or `{plane: 'js', reason}`; undefined for a WebSocket no server accepted as a client.
 */
export const getConnectionPlane = (webSocket) => {
  const plane = connectionPlanes.get(webSocket);
  return plane === undefined ? undefined : {...plane};
};
