import pino from 'pino';

export const LOG_FORMATS = ['text', 'json'];

// The command's verbosity, as pino levels: errors always, progress unless
// quiet, comings and goings only when verbose.
const LEVELS = {quiet: 'error', normal: 'info', verbose: 'debug'};

const createTextLog = (logLevel) => {
  const write = (stream) => (line) => stream.write(line + '\n');
  const ignore = () => {};
  return {
    info: logLevel == 'quiet' ? ignore : write(process.stdout),
    verbose: logLevel == 'verbose' ? write(process.stdout) : ignore,
    error: write(process.stderr),
    ready: write(process.stdout),
  };
};

// One JSON object a line: errors on stderr, everything else on stdout, each
// written at once so nothing is lost when the process exits.
const createJsonLog = (logLevel) => {
  const logger = pino(
    {
      level: LEVELS[logLevel],
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: {level: (label) => ({level: label})},
    },
    pino.multistream(
      [
        {level: 'debug', stream: pino.destination({dest: 1, sync: true})},
        {level: 'error', stream: pino.destination({dest: 2, sync: true})},
      ],
      {dedupe: true},
    ),
  );
  return {
    info: (message, fields) => logger.info(fields, message),
    verbose: (message, fields) => logger.debug(fields, message),
    error: (message, fields) => logger.error(fields, message),
    // Scripts wait for it, so it is written whatever the level.
    ready: (message, fields) =>
      logger.child({}, {level: 'info'}).info(fields, message),
  };
};

/**
 * The command's log: `info`, `verbose`, `error` and `ready` (the listening
 * line, written even when quiet), each taking a message and, for JSON, fields
 * to add to its object.
 */
export const createLog = (logFormat, logLevel) =>
  logFormat == 'json' ? createJsonLog(logLevel) : createTextLog(logLevel);
