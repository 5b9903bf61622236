// Access control's JS half: the user's `authorize` hook is asked once per legacy connection and
// once per channel a multiplexed socket subscribes; the native router enforces each answer on
// every message, and applies the client and message-rate limits itself.

const DECISIONS = new Set(['write', 'read']);
// What the native side takes for a refusal.
const DENY = 'deny';

const describe = (value) =>
  typeof value == 'string' ? `'${value}'` : String(value);

const checkLimit = (name, value, isValid) => {
  if (value !== undefined && !isValid(value)) {
    throw new TypeError(`${name} must be a positive number, not ${value}`);
  }
  return value;
};

/** The native server's access settings, from createWsServer's sixth argument. */
export const accessSettings = ({
  authorize,
  maxClientsPerPath,
  maxMessagesPerSecond,
}) => {
  if (authorize !== undefined && typeof authorize != 'function') {
    throw new TypeError('authorize must be a function');
  }
  return {
    authorizing: authorize !== undefined,
    maxClientsPerPath: checkLimit(
      'maxClientsPerPath',
      maxClientsPerPath,
      (max) => Number.isInteger(max) && max > 0,
    ),
    maxMessagesPerSecond: checkLimit(
      'maxMessagesPerSecond',
      maxMessagesPerSecond,
      (rate) => typeof rate == 'number' && rate > 0 && rate < Infinity,
    ),
  };
};

/**
 * Asks `authorize` about each connection and channel the native side names, and hands back
 * `answer(conn, ticket, channelId, 'write' | 'read' | 'deny')`. A hook that throws, rejects or
 * answers anything else denies, and the error goes to `handleError`.
 */
export const createAccess = (authorize, handleError, answer) => {
  // conn -> its upgrade request, kept while the connection may still subscribe to channels
  const requests = new Map();

  const decide = ({conn, ticket, pathId, clientId, channelId}) => {
    const reply = (decision) =>
      answer(conn, ticket, channelId ?? undefined, decision);
    const deny = (error) => {
      handleError(error);
      reply(DENY);
    };
    const settle = (decision) =>
      DECISIONS.has(decision)
        ? reply(decision)
        : decision === false
          ? reply(DENY)
          : deny(
              new Error(
                `authorize must return 'write', 'read' or false, not ${describe(decision)}`,
              ),
            );
    const request = requests.get(conn);
    if (channelId == null) {
      // A legacy connection is asked about once.
      requests.delete(conn);
    }
    let decision;
    try {
      decision = authorize({request, pathId, clientId});
    } catch (error) {
      deny(error);
      return;
    }
    if (typeof decision?.then == 'function') {
      Promise.resolve(decision).then(settle, deny).catch(handleError);
    } else {
      settle(decision);
    }
  };

  return {
    remember: (conn, request) => {
      if (authorize !== undefined) {
        requests.set(conn, request);
      }
    },
    forget: (conn) => requests.delete(conn),
    decide,
  };
};
