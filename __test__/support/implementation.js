// The one switch between the two servers under test: every test imports
// createWsServer (and createWsServerSimple) from here, so the same assertions
// pin TinyBase's own servers (the specification) and check the native ones
// against them.
const upgradingNatively = async () => {
  const native = await import('../../index.js');
  const upgrading =
    (create, options) =>
    (webSocketServer, ...args) => {
      const nativeOptions = args[options] ?? {};
      args[options] = {
        nativeUpgrade: typeof webSocketServer?._server?.on == 'function',
        ...nativeOptions,
      };
      return create(webSocketServer, ...args);
    };
  return {
    createWsServer: upgrading(native.createWsServer, 4),
    createWsServerSimple: upgrading(native.createWsServerSimple, 0),
  };
};

const IMPLEMENTATIONS = {
  reference: async () => ({
    ...(await import('tinybase/synchronizers/synchronizer-ws-server')),
    ...(await import('tinybase/synchronizers/synchronizer-ws-server-simple')),
  }),
  native: () => import('../../index.js'),
  // The native servers answering upgrades on their plane wherever the WebSocketServer has an
  // HTTP server of its own, as the command does.
  'native-upgrade': () => upgradingNatively(),
  // As native-upgrade, and the harness's servers listen on the plane itself (see startServer).
  'native-listen': () => upgradingNatively(),
};

export const name = process.env.TB_WS_SERVER || 'native';

// With nativeUpgrade the plane answers the upgrade: ws makes no WebSocket and emits no
// 'connection' for it, so a test that watches those has nothing to watch.
export const listensNatively = name == 'native-listen';
export const upgradesNatively = name == 'native-upgrade' || listensNatively;
export const NO_WS_WEBSOCKET =
  upgradesNatively &&
  'the native plane answers the upgrade: ws makes no WebSocket and emits no connection event';

if (!Object.hasOwn(IMPLEMENTATIONS, name)) {
  throw new Error(
    `TB_WS_SERVER must be one of ${Object.keys(IMPLEMENTATIONS).join(', ')}, not '${name}'`,
  );
}

export const {createWsServer, createWsServerSimple} =
  await IMPLEMENTATIONS[name]();
