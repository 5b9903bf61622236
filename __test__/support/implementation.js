// The one switch between the two servers under test: every test imports
// createWsServer (and createWsServerSimple) from here, so the same assertions
// pin TinyBase's own servers (the specification) and check the native ones
// against them.
const IMPLEMENTATIONS = {
  reference: async () => ({
    ...(await import('tinybase/synchronizers/synchronizer-ws-server')),
    ...(await import('tinybase/synchronizers/synchronizer-ws-server-simple')),
  }),
  native: () => import('../../index.js'),
};

export const name = process.env.TB_WS_SERVER || 'native';

if (!Object.hasOwn(IMPLEMENTATIONS, name)) {
  throw new Error(
    `TB_WS_SERVER must be one of ${Object.keys(IMPLEMENTATIONS).join(', ')}, not '${name}'`,
  );
}

export const {createWsServer, createWsServerSimple} =
  await IMPLEMENTATIONS[name]();
