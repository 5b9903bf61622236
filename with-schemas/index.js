// Schemas only narrow the types; at run time it is the same server.
export {
  closeClients,
  createWsServer,
  getConnectionPlane,
  getMetrics,
  getPlaneStats,
  registerMetrics,
} from '../index.js';
