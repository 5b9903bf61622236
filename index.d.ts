// The API is TinyBase's own, so its declarations are re-used rather than
// restated: whatever TinyBase version is installed, the types match it.
import type {IncomingMessage} from 'node:http';
import type {Registry} from 'prom-client';
import type {
  createWsServer as createTinyBaseWsServer,
  WsServer,
} from 'tinybase/synchronizers/synchronizer-ws-server';
import type {
  createWsServerSimple as createTinyBaseWsServerSimple,
  WsServerSimple,
} from 'tinybase/synchronizers/synchronizer-ws-server-simple';

export type {WsServerSimple} from 'tinybase/synchronizers/synchronizer-ws-server-simple';
export type {
  ClientIdsListener,
  PathIdsListener,
  WsServer,
  WsServerStats,
} from 'tinybase/synchronizers/synchronizer-ws-server';

/** What a client may do on a path: write, only read, or nothing (refused). */
export type Access = 'write' | 'read' | false;

/** What `authorize` is asked about: one legacy connection, or one channel. */
export type AuthorizeRequest = {
  /** The HTTP upgrade request (its URL can carry a token). */
  request: IncomingMessage;
  /** The full path: a legacy connection's, or `base/channel` for a channel. */
  pathId: string;
  /** The client id the server gives the connection. */
  clientId: string;
};

/**
 * How the native plane watches the connections it has taken over, the cluster
 * it joins, and who may sync what.
 */
export type NativeOptions = {
  /** Ping a connection silent this many seconds; 0 turns the heartbeat off. Default 30. */
  heartbeatSeconds?: number;
  /** Drop a connection after this many unanswered pings in a row. Default 2. */
  heartbeatMisses?: number;
  /**
   * Serve each path together with the other servers that share this Redis
   * and prefix: clients connected to any of them sync as if on one server.
   */
  cluster?: ClusterOptions;
  /**
   * Decides, once per legacy connection and once per channel, whether the client may write,
   * only read, or not sync the path at all. Throwing or rejecting denies. Without it every
   * client may write.
   */
  authorize?: (request: AuthorizeRequest) => Access | Promise<Access>;
  /** Refuse a client that would be more than this many on one path. No limit by default. */
  maxClientsPerPath?: number;
  /** Close a connection that sends more messages than this per second. No limit by default. */
  maxMessagesPerSecond?: number;
  /**
   * Keep a persisted path's store, persister and server client running this
   * many seconds after its last client leaves, so a client arriving meanwhile
   * syncs without a reload. The path stays in getPathIds until it stops.
   * Default 0: it stops at once, as in TinyBase.
   */
  keepPathSeconds?: number;
  /**
   * Answer WebSocket upgrades on the native plane instead of in ws, for a
   * WebSocketServer created with `port` or `server`. A plain TCP request that
   * ws would accept as it is gets its 101 from the native plane and never
   * becomes a ws WebSocket: it is not in the WebSocketServer's `clients`, and
   * no 'connection' is emitted for it ('headers' still is). Other requests
   * (TLS, deflate, a `verifyClient` or `handleProtocols` option, or any ws
   * would refuse) go to ws as before. Use getClientIds and closeClients for
   * what `clients` would give. Default false.
   */
  nativeUpgrade?: boolean;
  /**
   * Listen on this port (and host: every address by default, as Node's
   * `listen`) on the native plane itself, for a WebSocketServer created with
   * a `server` that is not listening. The plane accepts each connection and
   * answers a plain WebSocket upgrade ws would accept as it is without the JS
   * thread: as with `nativeUpgrade`, no ws WebSocket and no 'connection'
   * exist for it, and neither is 'headers' emitted. Every other connection
   * (plain HTTP requests, and upgrades ws must judge itself) reaches the
   * `server` as if it had accepted it. A `verifyClient` option, an
   * `authorize` hook, a subclass's own `shouldHandle` or 'headers' listeners
   * added before this call leave every upgrade to ws. getListenAddress gives
   * the address; destroy() closes the port once it is done.
   */
  listen?: ListenOptions;
};

/** Where the native plane listens with the `listen` option. */
export type ListenOptions = {
  /** 0 picks a free port. */
  port: number;
  host?: string;
  /** Connections waiting to be accepted, as Node's `listen` takes it. Default 511. */
  backlog?: number;
};

/** An address listened on, as Node's `server.address()` gives it. */
export type ListenAddress = {
  address: string;
  family: 'IPv4' | 'IPv6';
  port: number;
};

/** Where the servers of one cluster meet. */
export type ClusterOptions = {
  /**
   * `redis://[user:password@]host:port[/db]`, or `rediss://` for TLS (the
   * system's trusted certificates, or those in `SSL_CERT_FILE`).
   */
  redis: string;
  /** Names the cluster's channels in Redis; no `:`. Default `tinybase`. */
  prefix?: string;
};

/**
 * TinyBase's createWsServer, and the same with this package's options as a
 * sixth argument.
 */
export declare const createWsServer: WithNativeOptions<
  typeof createTinyBaseWsServer
>;

/**
 * TinyBase's relay-only createWsServerSimple, and the same with this package's
 * options as a second argument (`keepPathSeconds` has no effect: a simple
 * server persists nothing).
 */
export declare const createWsServerSimple: WithNativeOptions<
  typeof createTinyBaseWsServerSimple
>;

/**
 * A createWsServer signature, also callable with NativeOptions after all of
 * TinyBase's arguments (its generic parameters are then inferred from their
 * constraints).
 */
export type WithNativeOptions<
  CreateWsServer extends (...args: any[]) => unknown,
> = CreateWsServer &
  ((
    ...args: [...Parameters<CreateWsServer>, nativeOptions?: NativeOptions]
  ) => ReturnType<CreateWsServer>);

/**
 * The address the native plane listens on for a WsServer created with the
 * `listen` option; undefined for any other.
 */
export declare function getListenAddress(
  wsServer: WsServer | WsServerSimple,
): ListenAddress | undefined;

/**
 * Closes every client connection of a WsServer of this package, also those
 * whose upgrade the native plane answered, with `code` and `reason` as ws's
 * WebSocket.close takes them; resolves once all have closed.
 */
export declare function closeClients(
  wsServer: WsServer | WsServerSimple,
  code?: number,
  reason?: string,
): Promise<void>;

/** Why a connection stayed in ws, on the JS plane, instead of being taken over. */
export type KeptInJsReason =
  | 'platform'
  | 'unknown-ws-shape'
  | 'tls'
  | 'no-fd'
  | 'foreign-socket'
  | 'deflate'
  | 'instrumented'
  | 'already-reading'
  | 'unflushed-upgrade'
  | 'closed';

/** Connections per plane: taken since the start (`opened`) and held now (`open`). */
export type PlaneStats = {
  native: {opened: number; open: number};
  js: {
    opened: number;
    open: number;
    /** Connections kept in JS since the start, by reason. */
    byReason: Partial<Record<KeptInJsReason, number>>;
  };
};

/** The plane a connection runs on, and why it stayed in JS if it did. */
export type ConnectionPlane =
  {plane: 'native'} | {plane: 'js'; reason: KeptInJsReason};

/**
 * Connections per plane for one server this package created, or, without an
 * argument, for all of them in this process; undefined for any other server.
 */
export declare function getPlaneStats(
  wsServer?: object,
): PlaneStats | undefined;

/**
 * The plane of a WebSocket a server of this package accepted as a client;
 * undefined for any other.
 */
export declare function getConnectionPlane(
  webSocket: object,
): ConnectionPlane | undefined;

/** How metrics are named: `prefix` starts every name (default `tinybase_ws_`). */
export type MetricsOptions = {prefix?: string};

/** One metric as prom-client's `getMetricsAsJSON()` shows it. */
export type MetricFamily = {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  aggregator: 'sum';
  values: {
    labels: Record<string, string>;
    value: number;
    /** A histogram series' own name: `<name>_bucket`, `_sum` or `_count`. */
    metricName?: string;
  }[];
};

/**
 * Every metric of a server made by this package, as it stands now: the relay's
 * counters, read without pausing it, and the JS thread's event-loop delay.
 */
export declare function getMetrics(
  wsServer: WsServer | WsServerSimple,
  options?: MetricsOptions,
): MetricFamily[];

/**
 * Registers every metric of `wsServer` in a prom-client registry, read afresh at each scrape;
 * returns a function that unregisters them.
 */
export declare function registerMetrics(
  wsServer: WsServer | WsServerSimple,
  registry: Pick<Registry, 'registerMetric' | 'removeSingleMetric'>,
  options?: MetricsOptions,
): () => void;
