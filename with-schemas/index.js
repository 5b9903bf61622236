// Schemas only narrow the types; at run time it is the same server.
export {createWsServer, getConnectionPlane, getPlaneStats} from '../index.js';
