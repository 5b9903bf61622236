// The API is TinyBase's own, so its declarations are re-used rather than
// restated: whatever TinyBase version is installed, the types match it.
import type {createWsServer as createTinyBaseWsServer} from 'tinybase/synchronizers/synchronizer-ws-server';

export type {
  ClientIdsListener,
  PathIdsListener,
  WsServer,
  WsServerStats,
} from 'tinybase/synchronizers/synchronizer-ws-server';

/** How the native plane watches the connections it has taken over. */
export type NativeOptions = {
  /** Ping a connection silent this many seconds; 0 turns the heartbeat off. Default 30. */
  heartbeatSeconds?: number;
  /** Drop a connection after this many unanswered pings in a row. Default 2. */
  heartbeatMisses?: number;
};

/**
 * TinyBase's createWsServer, and the same with this package's options as a
 * sixth argument.
 */
export declare const createWsServer: WithNativeOptions<
  typeof createTinyBaseWsServer
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
