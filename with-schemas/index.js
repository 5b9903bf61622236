// Schemas only narrow the types; at run time it is the same server.
export {
  createWsServer,
  getConnectionPlane,
  getMetrics,
  getPlaneStats,
  registerMetrics,
} from '../index.js';
