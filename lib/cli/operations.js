import {Registry, collectDefaultMetrics} from 'prom-client';

/**
 * What the command serves over plain HTTP beside the WebSocket upgrade:
 * `GET /metrics` (Prometheus text: the server's metrics and Node's process
 * metrics) and `GET /health` (200 while it accepts connections, 503 once it
 * drains). Anything else, or everything when `enabled` is false, is a 404.
 */
export const createOperations = ({enabled, log}) => {
  const registry = new Registry();
  if (enabled) {
    collectDefaultMetrics({register: registry});
  }
  let draining = false;

  const reply = (response, status, body, contentType = 'text/plain') => {
    response.writeHead(status, {
      'content-type': contentType,
      'cache-control': 'no-store',
    });
    response.end(body);
  };

  const routes = {
    '/health': (response) =>
      draining
        ? reply(response, 503, 'draining\n')
        : reply(response, 200, 'ok\n'),
    '/metrics': async (response) => {
      try {
        reply(response, 200, await registry.metrics(), registry.contentType);
      } catch (error) {
        log.error(`metrics: ${error?.message ?? error}`);
        reply(response, 500, 'metrics failed\n');
      }
    },
  };

  const handleRequest = (request, response) => {
    const path = request.url?.split('?')[0];
    const route = Object.hasOwn(routes, path) ? routes[path] : undefined;
    if (
      enabled &&
      route !== undefined &&
      (request.method == 'GET' || request.method == 'HEAD')
    ) {
      route(response);
    } else {
      reply(response, 404, 'not found\n');
    }
  };

  return {
    handleRequest,
    // The server's own metrics, once it exists (TinyBase's own server has none).
    register: (wsServer, registerMetrics) => {
      if (enabled) {
        registerMetrics?.(wsServer, registry);
      }
    },
    drain: () => {
      draining = true;
    },
  };
};
