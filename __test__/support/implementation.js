// The one switch between the two servers under test: every test imports
// createWsServer from here, so the same assertions pin TinyBase's own server
// (the specification) and check the native one against it.
const IMPLEMENTATIONS = {
  reference: () => import('tinybase/synchronizers/synchronizer-ws-server'),
  native: () => import('../../index.js'),
};

export const name = process.env.TB_WS_SERVER || 'native';

if (!Object.hasOwn(IMPLEMENTATIONS, name)) {
  throw new Error(
    `TB_WS_SERVER must be one of ${Object.keys(IMPLEMENTATIONS).join(', ')}, not '${name}'`,
  );
}

export const {createWsServer} = await IMPLEMENTATIONS[name]();
