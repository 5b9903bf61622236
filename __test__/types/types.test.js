import assert from 'node:assert/strict';
import {execFile} from 'node:child_process';
import {readFile} from 'node:fs/promises';
import {createRequire} from 'node:module';
import {fileURLToPath} from 'node:url';
import test from 'node:test';

const here = fileURLToPath(new URL('.', import.meta.url));
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');

// A bound that only turns a hung compiler into a failure; tsc takes seconds.
const TSC_TIMEOUT_MS = 240_000;
const options = {timeout: TSC_TIMEOUT_MS + 10_000};

const runTsc = (project) =>
  new Promise((resolve) =>
    execFile(
      process.execPath,
      [tsc, '--project', project, '--pretty', 'false'],
      {cwd: here, timeout: TSC_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024},
      (error, stdout, stderr) =>
        resolve({
          code: error ? (error.code ?? error.signal) : 0,
          stdout,
          stderr,
        }),
    ),
  );

const COPIES = [
  [
    'tinybase.ts',
    'native.ts',
    'tinybase/synchronizers/synchronizer-ws-server',
    'tinybase-ws-server-native',
  ],
  [
    'tinybase-with-schemas.ts',
    'native-with-schemas.ts',
    'tinybase/synchronizers/synchronizer-ws-server/with-schemas',
    'tinybase-ws-server-native/with-schemas',
  ],
  [
    'tinybase-simple.ts',
    'native-simple.ts',
    'tinybase/synchronizers/synchronizer-ws-server-simple',
    'tinybase-ws-server-native/simple',
  ],
];

for (const [original, copy, from, to] of COPIES) {
  test(`${copy} is ${original} with only the import changed`, async () => {
    const [originalText, copyText] = await Promise.all(
      [original, copy].map((file) => readFile(here + file, 'utf8')),
    );
    const quotedFrom = `'${from}'`;
    assert.equal(
      originalText.split(quotedFrom).length,
      2,
      `one import of ${from}`,
    );
    assert.equal(copyText, originalText.replace(quotedFrom, `'${to}'`));
  });
}

test(
  'code written against TinyBase compiles unchanged against this package',
  options,
  async () => {
    const {code, stdout, stderr} = await runTsc('tsconfig.json');
    assert.equal(stdout + stderr, '');
    assert.equal(code, 0);
  },
);

test(
  'tsc rejects each deliberate misuse, and nothing else',
  options,
  async () => {
    const source = await readFile(here + 'wrong.ts', 'utf8');
    const markedLines = source
      .split('\n')
      .flatMap((line, index) => (/\/\/ wrong$/.test(line) ? [index + 1] : []));
    assert.ok(markedLines.length > 0);

    const {code, stdout} = await runTsc('tsconfig.wrong.json');
    assert.equal(code, 2, stdout);
    const errors = stdout
      .split('\n')
      .filter((line) => /: error TS\d+/.test(line));
    assert.ok(
      errors.every((line) => line.startsWith('wrong.ts(')),
      stdout,
    );
    const errorLines = [
      ...new Set(
        errors.map((line) => Number(/^wrong\.ts\((\d+),/.exec(line)[1])),
      ),
    ];
    assert.deepEqual(errorLines, markedLines, stdout);
  },
);
