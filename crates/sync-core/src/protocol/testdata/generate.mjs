// Regenerates the corpora in this folder from TinyBase itself: run `node generate.mjs` here,
// with the repository's node_modules installed. It captures payloads from real
// createWsSynchronizer clients syncing through TinyBase's createWsServer, then judges them and
// mutations of them with TinyBase's own server functions, which its module does not export: a
// copy of it with an export line added is loaded from a temporary folder. Captured ids and
// times are random, so a new run gives different but equally valid corpora.
import {WebSocketServer, WebSocket} from 'ws';
import {createMergeableStore} from 'tinybase';
import {createCustomPersister} from 'tinybase/persisters';
import {createWsServer} from 'tinybase/synchronizers/synchronizer-ws-server';
import {createWsSynchronizer} from 'tinybase/synchronizers/synchronizer-ws-client';
import {mkdtempSync, readFileSync, writeFileSync} from 'fs';
import {createRequire} from 'module';
import {tmpdir} from 'os';
import {dirname, join} from 'path';
import {fileURLToPath, pathToFileURL} from 'url';

const here = dirname(fileURLToPath(import.meta.url));
const serverPath = createRequire(import.meta.url).resolve(
  'tinybase/synchronizers/synchronizer-ws-server',
);
const oraclePath = join(
  mkdtempSync(join(tmpdir(), 'tinybase-oracle-')),
  'server.mjs',
);
writeFileSync(
  oraclePath,
  readFileSync(serverPath, 'utf8') +
    '\nexport {decodeProtocolMessage, ifMultipleControlPayloadValid, ifMultiplePayloadValid, createMultipleControlPayload, createPayloads, createPayloadDecoder};\n',
);
const {
  decodeProtocolMessage,
  ifMultipleControlPayloadValid,
  ifMultiplePayloadValid,
  createMultipleControlPayload,
  createPayloads,
  createPayloadDecoder,
} = await import(pathToFileURL(oraclePath));

/// A deterministic xorshift generator, so mutations replay for the same capture.
const generator = (start) => {
  let seed = start;
  const rand = () => {
    seed ^= seed << 13;
    seed >>>= 0;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    seed >>>= 0;
    return seed / 4294967296;
  };
  return [rand, (a) => a[Math.floor(rand() * a.length)]];
};

const capture = async () => {
  const seen = [];
  const log = (dir, data) => seen.push({dir, payload: data.toString('utf8')});
  const wait = (ms) => new Promise((r) => setTimeout(r, ms));

  const run = async (port, withPersister, multiplexed, fragmentSize) => {
    const wss = new WebSocketServer({port});
    wss.on('connection', (ws) => {
      ws.on('message', (data) => log('in', data));
      const send = ws.send.bind(ws);
      ws.send = (data, ...rest) => {
        log('out', data);
        return send(data, ...rest);
      };
    });
    const server = createWsServer(
      wss,
      withPersister
        ? (pathId) => {
            const store = createMergeableStore();
            store.setCell('srv', 'r', 'c', 'server-' + pathId);
            let saved;
            return createCustomPersister(
              store,
              async () => saved,
              async (getContent) => {
                saved = getContent();
              },
              () => 0,
              () => 0,
              undefined,
              2,
            );
          }
        : undefined,
    );
    const mk = async (path, populate) => {
      const store = createMergeableStore();
      populate(store);
      const ws = multiplexed
        ? new WebSocket(`ws://localhost:${port}`, 'tinybase')
        : new WebSocket(`ws://localhost:${port}/${path}`);
      const sync = multiplexed
        ? await createWsSynchronizer(
            store,
            ws,
            path,
            1,
            undefined,
            undefined,
            undefined,
            fragmentSize,
          )
        : await createWsSynchronizer(
            store,
            ws,
            1,
            undefined,
            undefined,
            undefined,
            fragmentSize,
          );
      await sync.startSync();
      return [store, sync];
    };
    const [s1, y1] = await mk('shop', (s) => {
      s.setTables({
        pets: {
          fido: {species: 'dog', legs: 4, weight: 12.5, good: true},
          felix: {species: 'cat "q" \n\u2028 ü 😀'},
        },
      });
      s.setValues({
        open: true,
        count: -3,
        ratio: 1e-7,
        big: 1e21,
        nothing: null,
      });
    });
    const [s2, y2] = await mk('shop', (s) => {
      s.setCell('pets', 'rex', 'species', 'dog');
      s.setCell('pets', 'fido', 'legs', 3);
      s.setCell('owners', 'ann', 'list', [1, 'two', {three: 3}]);
      s.setCell('owners', 'bob', 'obj', {a: [1, 2], b: null});
    });
    await wait(150);
    s1.delCell('pets', 'fido', 'weight');
    s2.delRow('pets', 'felix');
    s1.setValue('open', false);
    s2.delValue('count');
    s1.setCell('t' + 'x'.repeat(40), 'row', 'long', 'y'.repeat(500));
    s2.delTable('owners');
    await wait(150);
    s1.transaction(() => {
      for (let i = 0; i < 30; i++)
        s1.setRow('bulk', 'r' + i, {i, s: 'v' + i, f: i / 7});
    });
    await wait(200);
    const [s3, y3] = await mk('shop', () => {});
    await wait(200);
    const [s4, y4] = await mk('other/path', (s) => s.setValue('v', 'ž'));
    await wait(200);
    for (const y of [y1, y2, y3, y4]) y.destroy();
    await wait(50);
    server.destroy();
    await wait(50);
  };

  let port = 18100;
  for (const withPersister of [false, true])
    for (const multiplexed of [false, true])
      for (const fragmentSize of [undefined, 64])
        await run(port++, withPersister, multiplexed, fragmentSize);
  return seen;
};

const messages = (captured) => {
  const [rand, pick] = generator(0x2545f491);

  const verdict = (r) => {
    const m = decodeProtocolMessage(r);
    return m ? m[1] : null;
  };
  const fix = (m) => (Object.is(m, -0) ? 0 : m);

  // Valid remainders captured from real clients (whole messages and joined fragments).
  const remainders = new Set();
  const groups = new Map();
  for (const {payload} of captured) {
    let p = payload;
    if (p.startsWith('M\n')) p = p.slice(2).slice(p.slice(2).indexOf('\n') + 1);
    const at = p.indexOf('\n');
    if (at < 0) continue;
    const from = p.slice(0, at),
      rest = p.slice(at + 1);
    if (from === 'S' && rest.includes(',-1,')) continue;
    const f = rest.match(/^([-0-9A-Z_a-z]{16})\n(\d+)\n(\d+)\n([\s\S]*)$/);
    if (f && !decodeProtocolMessage(rest)) {
      const g = groups.get(f[1]) ?? [];
      g[+f[2]] = f[4];
      groups.set(f[1], g);
      if (g.filter((x) => x !== undefined).length == +f[3])
        remainders.add(g.join(''));
    } else remainders.add(rest);
  }
  const valid = [...remainders].filter(
    (r) => decodeProtocolMessage(r) && r.length <= 420,
  );
  console.error('captured valid', valid.length, 'of', remainders.size);

  const cases = new Map();
  const add = (r) => {
    if (r.isWellFormed() && !cases.has(r)) cases.set(r, verdict(r));
  };
  valid.forEach(add);

  const numbers = [
    '1e400',
    '-1e400',
    '4294967296',
    '4294967295',
    '-0',
    '1.5',
    '2.0',
    '2e0',
    '1e-400',
    '4294967295.0000001',
    '4294967295.000001',
    '"1"',
    'null',
    'true',
    '"\\ufffc"',
    '"\uFFFC"',
    '0.1e1',
    '1E0',
    '-1',
    '9007199254740993',
    '1e21',
    '{}',
    '[]',
    '[1]',
  ];
  const strings = [
    '"\\ufffc"',
    '"\uFFFC"',
    '""',
    '"\\ud800"',
    '"\\udc00x"',
    '"\\ud800\\udc00"',
    '"ABCDEFGHIJKLMNOP"',
    '"ABCDEFGHIJKLMNO"',
    '"ABCDEFGHIJKLMNOPQ"',
    '"\\u0041BCDEFGHIJKLMNOP"',
    '"ABCDEFGHIJKLMN.P"',
    '5',
    'null',
    '{}',
    '[]',
    'true',
    '1e400',
    '"a\\"b"',
  ];
  const tokenRe = /"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/g;
  const mutate = (r) => {
    const tokens = [...r.matchAll(tokenRe)];
    const kind = Math.floor(rand() * 12);
    if (kind <= 3 && tokens.length) {
      const t = pick(tokens);
      const isNum = t[0][0] !== '"';
      const isKey = !isNum && r[t.index + t[0].length] === ':';
      if (isKey) {
        // Duplicate this key with another value right after its own value is not trivial to find;
        // instead insert a duplicate key in front carrying a replacement value.
        return (
          r.slice(0, t.index) +
          t[0] +
          ':' +
          pick([...numbers, ...strings, '[{},""]', '[1,""]']) +
          ',' +
          r.slice(t.index)
        );
      }
      return (
        r.slice(0, t.index) +
        pick(isNum ? numbers : strings) +
        r.slice(t.index + t[0].length)
      );
    }
    if (kind == 4) {
      const i = Math.floor(rand() * r.length);
      return r.slice(0, i) + r.slice(i + 1);
    }
    if (kind == 5) {
      const i = Math.floor(rand() * r.length);
      return (
        r.slice(0, i) +
        pick([
          '[',
          ']',
          '{',
          '}',
          ',',
          ':',
          '"',
          '\\',
          ' ',
          '0',
          '\n',
          '\u2028',
        ]) +
        r.slice(i)
      );
    }
    if (kind == 6) return r.slice(0, Math.floor(rand() * r.length));
    if (kind == 7)
      return r.replace(
        /^(\[[^,]*,)(-?\d+)/,
        (_, a) =>
          a +
          pick([
            '0',
            '1',
            '2',
            '3',
            '4',
            '5',
            '6',
            '7',
            '8',
            '-1',
            '2.0',
            '1e0',
            '-0',
            '"3"',
            '3.5',
          ]),
      );
    if (kind == 8) return r.replace(/\]$/, ',1]');
    if (kind == 9 && tokens.length) {
      // Follow an object value with a duplicate of its key that restores or breaks it.
      const keys = tokens.filter((t) => r[t.index + t[0].length] === ':');
      if (!keys.length) return r;
      const k = pick(keys);
      const close = r.indexOf('}', k.index);
      if (close < 0) return r;
      return (
        r.slice(0, close) +
        ',' +
        k[0] +
        ':' +
        pick([...numbers, ...strings, '[{},""]', '["x",""]', '{}', '[{}]']) +
        r.slice(close)
      );
    }
    if (kind == 10)
      return r.replace(
        /^\[([^,]*),/,
        (_, a) =>
          '[' +
          pick([
            'null',
            '"\\ufffc"',
            '"\uFFFC"',
            '"\\ud800"',
            '5',
            '""',
            '{}',
            '[]',
            'true',
          ]) +
          ',',
      );
    return '  ' + r + ' \n\t';
  };
  for (let round = 0; round < 8; round++)
    for (const r of valid) {
      let m = r;
      const steps = 1 + Math.floor(rand() * 2);
      for (let s = 0; s < steps; s++) m = mutate(m);
      add(m);
    }

  // Hand-written edge cases.
  const hand = [
    '[null,1,""]',
    '["",1,""]',
    '[null,1,"\\ufffc"]',
    '[null,1,"\uFFFC"]',
    '["\uFFFC",1,""]',
    '["\\ud800",1,""]',
    '[null,1,"",1]',
    '[null,1]',
    '[]',
    '{}',
    '"x"',
    '',
    ' ',
    'null',
    '[null,1.0,""]',
    '[null,1e0,""]',
    '[null,0.1e1,""]',
    '[null,-0,[1,2]]',
    '[null,8,""]',
    '[null,-1,[0,1]]',
    '[null,1e400,""]',
    '[null,"1",""]',
    '[null,2,[0,4294967295]]',
    '[null,2,[0,4294967296]]',
    '[null,2,[-1,0]]',
    '[null,2,[-0,0]]',
    '[null,2,[1.5,0]]',
    '[null,2,[1e400,0]]',
    '[null,2,[4294967295.0000001,0]]',
    '[null,2,[4.294967295e9,0]]',
    '[null,2,[1,2,3]]',
    '[null,2,[1]]',
    '[null,4,{}]',
    '[null,4,{"a":1,"a":"x"}]',
    '[null,4,{"a":"x","a":1}]',
    '[null,4,{"a":1e400,"a":1}]',
    '[null,4,{"a":1,"a":1e400}]',
    '[null,4,{"\\ud800":"x","\\udbff":1}]',
    '[null,4,{"\\ud800":"x","\\ud800":1}]',
    '[null,4,{"a":"\\ud800","a":1}]',
    '[null,4,{"__proto__":1}]',
    '[null,4,{"__proto__":"x"}]',
    '[null,4,[]]',
    '[null,4,{"a":{}}]',
    '[null,5,{"t":{"r":1}}]',
    '[null,5,{"t":1}]',
    '[null,6,{"t":{"r":{"c":1}}}]',
    '[null,6,{"t":{"r":{"c":{}}}}]',
    '[null,7,{"v":1}]',
    '[null,3,[[{}],[{}]]]',
    '[null,3,[[{}],[{}],1]]',
    '[null,3,[[{}],[{}],1.0]]',
    '[null,3,[[{}],[{}],"1"]]',
    '[null,3,[[{}],[{}],2]]',
    '[null,3,[[{}],[{}],1,1]]',
    '[null,3,[[{},""],[{},""]]]',
    '[null,3,[[{},"ABCDEFGHIJKLMNOP"],[{},"ABCDEFGHIJKLMNO"]]]',
    '[null,3,[[{"t":[{"r":[{"c":[1e400,""]}]}]}],[{}]]]',
    '[null,3,[[{"t":[{"r":[{"c":[[1e400],""]}]}]}],[{}]]]',
    '[null,3,[[{"t":[{"r":[{"c":[{"x":1e400},""]}]}]}],[{}]]]',
    '[null,3,[[{"t":[{"r":[{"c":["\\ud800",""]}]}]}],[{}]]]',
    '[null,3,[[{"t":[{"r":[{"c":[1e400,""]}],"r":[{}]}]}],[{}]]]',
    '[null,3,[[{"t":[{"r":[{"c":["\\ud800",""]}],"r":"x"}]}],[{}]]]',
    '[null,3,[[{"t":[{"r":[{"c":[1,""],"c":[1e400,""]}]}]}],[{}]]]',
    '[null,3,[[{"t":[{"r":[{"c":[1e400,""],"c":[1,""]}]}]}],[{}]]]',
    '[null,3,[[{"t":[{"r":[{"c":["\\ufffc",""]}]}]}],[{"v":["\uFFFC"]}]]]',
    '[null,3,[[{"t":[{"r":[{"c":[1,"\\ufffc"]}]}]}],[{}]]]',
    '[null,3,[[{"t":[{"r":[{"c":[1,null]}]}]}],[{}]]]',
    '[null,3,[[{"t":[{"r":[{"c":[1,"",""]}]}]}],[{}]]]',
    '[null,3,[[{"t":[{"r":[{"c":[]}]}]}],[{}]]]',
    '[null,0,[1,2]]',
    '[null,0,[[{}],""]]',
    '[null,0,[{}]]',
    '[null,0,[{"v":[1,""]}]]',
    '[null,0,[{"v":[{"r":[{"c":[1,""]}]},""]}]]',
    '[null,0,[{"t":[{"r":[{"c":[1e400,""]}]}]}]]',
    '[null,0,[{"t":[{"r":[{"c":[1e400,""]}],"r":[{}]}]}]]',
    '[null,0,[[{}],{}]]',
    '[null,0,[[{}],{"t":1}]]',
    '[null,0,[[{}],{"t":{"r":1}}]]',
    '[null,0,[[{}],{"t":{"r":{"c":1}}}]]',
    '[null,0,[[{}],{"t":1,"u":{"r":1}}]]',
    '[null,0,[[{}],{"t":1e400,"t":1}]]',
    '[null,0,[[{}],{"t":{"r":1e400},"t":{"r":1}}]]',
    '[null,0,[[{}],{"t":"\\ud800","t":1}]]',
    '[null,0,[{"v":[1,""]},"x"]]',
    '[null,0,[{"v":[1,""]},""]]',
    '[null,0,[{"v":[1]}]]',
    '[null,0,[1,2,3]]',
    '[null,0,[[{}]]]',
    '[null,0,[[{}],{},1]]',
    '[null,0,""]',
    '[null,0,{}]',
    '[null,1,""] x',
    '[null,1,""]\n',
    '\ufeff[null,1,""]',
    '[null,1,"\u0001"]',
    '[null,1,"\\u0000"]',
    '[null,1,"\\x"]',
    '[null,01,""]',
    '[null,1.,""]',
    '[null,.5,""]',
    '[null,+1,""]',
    "[null,1,'']",
    '[null,1,"",]',
    '[null,,1,""]',
  ];
  hand.push(
    '[null,3,[[{"t":1e400,"t":[{}]}],[{}]]]',
    '[null,3,[[{"t":"\\ud800","t":[{}]}],[{}]]]',
    '[null,3,[[{"t":1e400}],[{}]]]',
    '[null,3,[[{"t":[{}],"t":1e400}],[{}]]]',
    '[null,0,[1e400,1]]',
    '[null,0,["\\ud800",1]]',
    '[null,5,{"t":1e400,"t":{}}]',
    '[null,5,{"t":"\\ud800","t":{}}]',
    '[null,6,{"t":{"r":"\\udc00"},"t":{}}]',
    '[null,3,[[{"t\\n":1e400,"t\\n":[{}]}],[{}]]]',
    '[null,3,[[{"t\\n":1e400,"t\\u000a":[{}]}],[{}]]]',
    '[null,3,[[{"t\\ud800":1e400,"t\\udbff":[{}]}],[{}]]]',
    '[null,3,[[{"t\\ud800":1e400,"t\\ud800":[{}]}],[{}]]]',
    '[null,3,[[{"t\n":1e400,"t":[{}]}],[{}]]]',
    '[null,3,[[{"t":1e400,"t":[{"r":[{"c":[' +
      '['.repeat(500) +
      ']'.repeat(500) +
      ',""]}]}]}],[{}]]]',
    '[null,3,[[{"t":1e400,"t":[{"r":[{"c":[' +
      '['.repeat(991) +
      ']'.repeat(991) +
      ',""]}]}]}],[{}]]]',
    '[null,3,[[{"t":[{"r":[{"c":[' +
      '{"a":'.repeat(300) +
      '1' +
      '}'.repeat(300) +
      ',""]}]}]}],[{"v":[{"x":"\\ud800","y":1e999},""]}],1]]',
    '[null,3,[[{"t":[{"r":[{"c":["x",""]}],"r":1e400}]}],[{}]]]',
    '[null,3,[[{"t":[{"r":1e400,"r":[{"c":["x",""]}]}]}],[{}]]]',
    '[null,7,{"v":4294967295.0000001}]',
    '[null,7,{"v":4.2949672950000001e9}]',
    '[null,7,{"v":42949672950000001e-7}]',
    '[null,7,{"v":1.00000000000000011102230246251565404236316680908203125}]',
    '[null,3,[[{}],[{}],1.00000000000000011102230246251565404236316680908203125]]',
    '[null,3,[[{}],[{}],1.0000000000000001110223024625156540423631668090820312]]',
  );
  hand.forEach(add);
  // Deep nesting around TinyBase's stack limit and beyond serde_json's default of 128.
  for (const d of [100, 127, 128, 129, 200, 990, 991]) {
    add(
      `[null,3,[[{"t":[{"r":[{"c":[${'['.repeat(d)}${']'.repeat(d)},""]}]}]}],[{}]]]`,
    );
  }
  const out =
    [...cases]
      .map(([r, t]) => JSON.stringify([r, t === null ? null : fix(t)]))
      .join('\n') + '\n';
  writeFileSync(join(here, 'messages.jsonl'), out);
  const counts = {};
  for (const [, t] of cases) counts[t] = (counts[t] ?? 0) + 1;
  console.error(cases.size, counts, out.length);
};

const fragments = (captured) => {
  const [rand, pick] = generator(0x9e3779b9);
  const shuffle = (a) => {
    a = [...a];
    for (let i = a.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [a[i], a[j]] = [a[j], a[i]];
    }
    return a;
  };

  const FRAGMENT = /^([-0-9A-Z_a-z]{16})\n(\d+)\n(\d+)\n([\s\S]*)$/;
  const run = (payloads) => {
    const shared = [0, 0];
    let invalid = false;
    const steps = [];
    let out;
    const [decode, clear] = createPayloadDecoder(
      (to, remainders, requestId, message) => {
        const joined =
          remainders.length == 1 && !FRAGMENT.test(remainders[0])
            ? remainders[0]
            : remainders.map((r) => r.match(FRAGMENT)[4]).join('');
        out = {message: [to, remainders, message, joined]};
      },
      1000,
      (error) => {
        invalid = true;
        out = {invalid: error.message};
      },
      shared,
    );
    let wasInvalid = false;
    for (const p of payloads) {
      out = undefined;
      decode(p);
      steps.push([p, out ?? (wasInvalid ? 'ignored' : 'pending'), [...shared]]);
      wasInvalid = invalid;
    }
    clear();
    return steps;
  };

  // Fragment groups captured from real clients, by sender and message id.
  const groups = new Map();
  for (const {dir, payload} of captured) {
    if (dir != 'in' || payload.startsWith('M\n') || payload.startsWith('S\n'))
      continue;
    const at = payload.indexOf('\n');
    const f = payload.slice(at + 1).match(FRAGMENT);
    if (!f) continue;
    const key = f[1];
    groups.set(key, [...(groups.get(key) ?? []), payload]);
  }
  const complete = [...groups.values()].filter(
    (g) => g.length > 1 && g.length < 12,
  );
  console.error('groups', complete.length);

  const sequences = [];
  const mutateFragment = (p) => {
    const [to, id, index, total, ...rest] = p.split('\n');
    const part = rest.join('\n');
    const k = Math.floor(rand() * 11);
    if (k == 0) return [to, id, index, String(+total + 1), part].join('\n');
    if (k == 1) return [to, id, total, total, part].join('\n');
    if (k == 2) return [to, id, '00' + index, '0' + total, part].join('\n');
    if (k == 3)
      return [
        to,
        id,
        index,
        pick(['0', '1001', '1000', '99999999999999999999999']),
        part,
      ].join('\n');
    if (k == 4)
      return [
        to,
        id.slice(0, 15) + pick(['.', '!', '']),
        index,
        total,
        part,
      ].join('\n');
    if (k == 5)
      return [to, id, index, total, part + pick(['x', ']', ''])].join('\n');
    if (k == 6)
      return [
        to,
        id,
        pick(['-1', '1.0', '', ' 1', '1e1', '９']),
        total,
        part,
      ].join('\n');
    if (k == 7)
      return [pick(['', 'S', 'other']), id, index, total, part].join('\n');
    if (k == 8) return [to, id, index, total].join('\n');
    if (k == 9) return [to, id, index, total + 'x', part].join('\n');
    return p;
  };
  for (const g of complete.slice(0, 60)) {
    sequences.push(g);
    sequences.push([...g].reverse());
    sequences.push(shuffle(g));
    sequences.push([g[0], ...g]);
    sequences.push(g.slice(1));
    sequences.push(
      g.map((p, i) =>
        i == Math.floor(rand() * g.length) ? mutateFragment(p) : p,
      ),
    );
    sequences.push(
      shuffle(g).map((p) => (rand() < 0.3 ? mutateFragment(p) : p)),
    );
  }
  for (let i = 0; i < 40; i++) {
    const a = pick(complete),
      b = pick(complete);
    const mixed = [];
    let x = 0,
      y = 0;
    while (x < a.length || y < b.length)
      mixed.push(rand() < 0.5 ? (a[x++] ?? b[y++]) : (b[y++] ?? a[x++]));
    sequences.push(mixed.filter(Boolean));
  }
  // The same message id from two senders is two groups.
  for (const g of complete.slice(0, 5)) {
    sequences.push(g.flatMap((p) => [p, 'other' + p]));
  }
  // Pending group limits: 100 groups fit, the 101st overflows; a completed group frees its place.
  const head = (id, index, total, part, to = 'c') =>
    [to, id, index, total, part].join('\n');
  const ids = Array.from(
    {length: 102},
    (_, i) => 'id' + String(i).padStart(14, '0'),
  );
  sequences.push(ids.map((id) => head(id, 0, 2, '[null,1,')));
  sequences.push([
    ...ids.slice(0, 100).map((id) => head(id, 0, 2, '[null,1,')),
    head(ids[0], 1, 2, '""]'),
    head(ids[100], 0, 2, '[null,1,'),
    head(ids[101], 0, 2, '[null,1,'),
  ]);
  // Hand-written payloads.
  sequences.push(
    ['no newline'],
    ['\n[null,1,""]'],
    ['S\n[null,1,""]'],
    ['x\nnot json'],
    ['x\n'],
    ['\n'],
    ['x\n[null,1,""]', 'broken', 'x\n[null,1,""]'],
  );
  sequences.push(
    [head('abcdefghijklmnop', 0, 1, '[null,1,""]')],
    [head('abcdefghijklmnop', 0, 1, '[null,1,"x"]')],
    [head('abcdefghijklmnop', 1, 1, '[null,1,""]')],
    [head('abcdefghijklmnop', 0, 0, '')],
  );
  sequences.push([
    head('abcdefghijklmnop', 0, 3, '[null,'),
    head('abcdefghijklmnop', 2, 3, '""]'),
    head('abcdefghijklmnop', 1, 3, '1,'),
  ]);
  sequences.push([
    head('abcdefghijklmnop', 0, 2, '[null,'),
    head('abcdefghijklmnop', 1, 2, '1,"x"]'),
  ]);
  sequences.push([
    head('abcdefghijklmnop', 0, 2, ''),
    head('abcdefghijklmnop', 1, 2, '[null,1,""]'),
  ]);
  sequences.push([
    head('abcdefghijklmnop', 0, 2, '[null,1,""]'),
    head('abcdefghijklmnop', 1, 2, ''),
  ]);
  sequences.push(
    [head('abcdefghijklmnop', 0, 1001, 'x')],
    [head('abcdefghijklmnop', 5, 1000, 'x')],
    [head('abcdefghijklmnop', 1000, 1000, 'x')],
  );
  sequences.push([
    'c\nabcdefghijklmnop\n0\n2\n[null,\nc\nabcdefghijklmnop\n1\n2\n1,""]',
  ]);
  sequences.push([
    'c\nabcdefghijklmnop\n0\n2\n',
    'c\nabcdefghijklmnop\n1\n2\n[null,1,""]',
  ]);
  sequences.push([
    'c\nabcdefghijklmnop\n0\n2\n[null,1,"ü',
    'c\nabcdefghijklmnop\n1\n2\n😀"]',
  ]);

  const out = sequences.map((s) => JSON.stringify(run(s))).join('\n') + '\n';
  writeFileSync(join(here, 'fragments.jsonl'), out);
  console.error(sequences.length, out.length);
};

const payloads = () => {
  const ID = 'FIXEDmessageID__';
  const cases = [];
  const bodies = [
    [null, 1, ''],
    [
      'abc',
      3,
      [[{t: [{r: [{c: ['ü😀中 text', 'P7LQ6dr---2xr3pO']}]}]}], [{}], 1],
    ],
    ['x', 0, [{v: ['😀😀😀😀😀😀😀😀😀😀😀😀😀', '']}]],
    [
      'y',
      3,
      [
        [
          {
            t: [
              {
                r: [
                  {
                    c: [
                      'x'.repeat(2500) + '中'.repeat(300) + '😀'.repeat(200),
                      '',
                    ],
                  },
                ],
              },
            ],
          },
        ],
        [{}],
        1,
      ],
    ],
  ];
  const sizes = [
    undefined,
    0,
    0.5,
    1,
    1.9,
    2,
    3,
    4,
    5,
    6,
    10,
    17,
    64,
    100,
    1e9,
    NaN,
    Infinity,
    -5,
  ];
  for (const [requestId, message, body] of bodies)
    for (const fragmentSize of sizes)
      for (const to of [undefined, '', 'S', 'abc']) {
        if (requestId == 'y' && ![1, 5, 6, 64].includes(fragmentSize)) continue;
        if (to !== 'abc' && ![undefined, 10].includes(fragmentSize)) continue;
        const remainder = JSON.stringify([requestId, message, body]);
        const payloads = createPayloads(
          to,
          requestId,
          message,
          body,
          fragmentSize,
        ).map((p) =>
          p.replace(
            /^([^\n]*\n)[-0-9A-Z_a-z]{16}\n(\d+\n\d+\n)/,
            `$1${ID}\n$2`,
          ),
        );
        cases.push([
          to ?? null,
          remainder,
          fragmentSize === undefined
            ? null
            : Number.isNaN(fragmentSize)
              ? 'NaN'
              : fragmentSize === Infinity
                ? 'Infinity'
                : fragmentSize,
          payloads,
        ]);
      }
  const out = cases.map((c) => JSON.stringify(c)).join('\n') + '\n';
  writeFileSync(join(here, 'payloads.jsonl'), out);
  console.error(cases.length, out.length);
};

const multiplex = () => {
  const classify = (payload) => {
    let result = 'invalid';
    try {
      const control = ifMultipleControlPayloadValid(
        payload,
        (requestId, control, body) => {
          const kind =
            control == 0 ? 'hello' : control == 1 ? 'subscribe' : 'unsubscribe';
          result = {
            control: [
              kind,
              requestId,
              kind == 'hello' ? null : body,
              kind == 'unsubscribe'
                ? null
                : createMultipleControlPayload(requestId, control, body),
            ],
          };
        },
      );
      if (control) return result;
    } catch (e) {
      return 'throws';
    }
    const channel = ifMultiplePayloadValid(
      payload,
      (channelId, channelPayload) => {
        result = {channel: [channelId, channelPayload]};
      },
      () => {
        result = 'too_large';
      },
    );
    return channel ? result : 'invalid';
  };

  const cases = new Map();
  const add = (p) => {
    if (p.isWellFormed() && !cases.has(p)) cases.set(p, classify(p));
  };
  const control = (requestId, message, controlAndBody) =>
    'S\n[' + requestId + ',' + message + ',' + controlAndBody + ']';

  const zeros = [
    '0',
    '-0',
    '0.0',
    '0e5',
    '"0"',
    '" 0 "',
    '""',
    '" "',
    '"\\t\\n"',
    '"0x0"',
    '"0b0"',
    '"0o0"',
    '"0e5"',
    '".0"',
    '"0."',
    '"+0"',
    '"-0"',
    'false',
    '[]',
    '[null]',
    '[[]]',
    '["0"]',
    '[0]',
    '[[0]]',
    '["\\ufffc"]',
    '"\\ufffc"',
    'null',
    '"00"',
    '"-0x0"',
    '"0X0"',
    '[-0]',
    '[false]',
    '[true]',
    '[0,0]',
    '[null,null]',
    '"\\u00a0\\u2028\\ufeff"',
    '"\\u180e"',
    '"\\u200b"',
    '"\\u3000"',
    '"\\u000b"',
    '[""]',
  ];
  const ones = [
    '1',
    '1.0',
    '1e0',
    '0.1e1',
    'true',
    '"1"',
    '[1]',
    '["1"]',
    '[[1]]',
    '"0x1"',
    '"0X1"',
    '"0b1"',
    '"0o1"',
    '"+1"',
    '"  1  "',
    '"\\u00a01\\u2028"',
    '"\\ufeff1"',
    '"01"',
    '"1."',
    '".1e1"',
    '"1e0"',
    '"1E0"',
    '"1e+0"',
    '"10e-1"',
    '"1_0"',
    '"1 1"',
    '"Infinity"',
    '"infinity"',
    '"0x"',
    '"1e"',
    '"."',
    '"+"',
    '"- 1"',
    '"1.5"',
    '"NaN"',
    '"0b2"',
    '"0o8"',
    '"0xg"',
    '"+0x1"',
    '[1,1]',
    '[true]',
    '{}',
    '[{}]',
    '[[{}]]',
    '[1,{}]',
    '"0x0000000000000000001"',
    '"1e-0"',
    '"1.0000000000000000001"',
    '"0.99999999999999999999"',
  ];
  const twos = [
    '2',
    '2.0',
    '"2"',
    '[2]',
    '"0x2"',
    '"0b10"',
    '"2e0"',
    '" 2 "',
    '[[2]]',
    '"0o2"',
  ];
  const channels = [
    '"a"',
    '"a/b"',
    '"a/b/c"',
    '""',
    '"a//b"',
    '"/a"',
    '"a/"',
    '"./a"',
    '"a/."',
    '"a/.."',
    '"../a"',
    '".."',
    '"..."',
    '"a?b"',
    '"a#"',
    '"a\\nb"',
    '"a\\rb"',
    '"a\\\\b"',
    '"a b"',
    '"ü/😀"',
    JSON.stringify('x'.repeat(1024)),
    JSON.stringify('x'.repeat(1025)),
    JSON.stringify('é'.repeat(512)),
    JSON.stringify('é'.repeat(513)),
    JSON.stringify('..'.repeat(600)),
    '"\\ufffc"',
    '"\uFFFC"',
    '5',
    'null',
    '["a"]',
    '{}',
    '"a\\u0000b"',
    '"%2e%2e"',
  ];
  const requestIds = [
    '"r"',
    '""',
    '"\\ufffc"',
    'null',
    '5',
    '"a\\"b\\\\c\\n\\u0001\\u007f\\u2028😀"',
    '"\\u00e9\\u0041"',
    '["r"]',
    'true',
    '"\\u001f\\b\\f\\t\\r"',
  ];
  const minusOnes = [
    '-1',
    '-1.0',
    '-1e0',
    '"-1"',
    '" -1 "',
    '[-1]',
    '["-1"]',
    '"-0x1"',
    '-10e-1',
    '"-1e0"',
    '"-.1e1"',
    '1',
    '0',
    '"-Infinity"',
    'null',
    '[[-1]]',
    '[-1,0]',
    '{}',
  ];

  for (const r of requestIds)
    for (const z of zeros.slice(0, 12)) add(control(r, -1, '[' + z + ',1]'));
  for (const z of zeros)
    for (const b of [
      '1',
      '"1"',
      'true',
      '[1]',
      '2',
      '"x"',
      'null',
      '{}',
      '[{}]',
    ])
      add(control('"r"', -1, '[' + z + ',' + b + ']'));
  for (const o of ones)
    for (const c of ['"a"', '"a/b"', '""'])
      add(control('"r"', -1, '[' + o + ',' + c + ']'));
  for (const o of ones) add(control('"r"', -1, '[0,' + o + ']'));
  for (const t of twos)
    for (const r of ['null', '"r"']) add(control(r, -1, '[' + t + ',"a"]'));
  for (const c of channels)
    for (const [r, k] of [
      ['"r"', '1'],
      ['null', '2'],
      ['"r"', '2'],
      ['null', '1'],
    ])
      add(control(r, -1, '[' + k + ',' + c + ']'));
  for (const m of minusOnes)
    for (const [r, cb] of [
      ['"r"', '[0,1]'],
      ['"r"', '[1,"a"]'],
      ['null', '[2,"a"]'],
    ])
      add(control(r, m, cb));
  for (const r of requestIds) add(control(r, -1, '[1,"chan"]'));
  for (const extra of ['[0,1]', '[0]', '[0,1,2]', '{}', '"x"', 'null', '[]'])
    add(control('"r"', -1, extra));
  add('S\n["r",-1,[0,1],1]');
  add('S\n["r",-1]');
  add('S\n{"a":1}');
  add('S\n');
  add('S');
  add('s\n["r",-1,[0,1]]');
  add(' S\n["r",-1,[0,1]]');
  add('S \n["r",-1,[0,1]]');
  add('S\n["r",-1,[0,1]] ');
  add('S\n ["r" , -1 , [ 0 , 1 ] ]\n');
  add('S\n["r",-1,[0,1]]x');
  add('S\n["r",-1,[0,1e400]]');
  add('S\n["r",1e400,[0,1]]');
  add('S\n["r",-1,[0,1],]');
  add('S\n[null,1,""]');
  add('S\n["r",0,[1,2]]');
  add('S\n["r",-1,[0,1]]\n');
  add('S\n["r",-1,[0,1.00000000000000000000001]]');
  for (const c of [
    'chan',
    'a/b',
    '',
    'a//b',
    './x',
    'a/..',
    'a?b',
    'a#b',
    'a\rb',
    'x'.repeat(1024),
    'x'.repeat(1025),
    'é'.repeat(513),
    '..'.repeat(513),
    'S',
    'M',
  ])
    for (const p of ['payload', '', 'line1\nline2', 'S\n[null,1,""]'])
      add('M\n' + c + '\n' + p);
  add('M\nchan');
  add('M\n' + 'x'.repeat(1025));
  add('M');
  add('M\n');
  add('m\nchan\nx');
  add('\nchan\nx');
  add('MM\nchan\nx');
  add('other\n[null,1,""]');
  add('');

  const out = [...cases].map((c) => JSON.stringify(c)).join('\n') + '\n';
  writeFileSync(join(here, 'multiplex.jsonl'), out);
  const counts = {};
  for (const [, r] of cases) {
    const k =
      typeof r == 'string'
        ? r
        : Object.keys(r)[0] + (r.control ? ':' + r.control[0] : '');
    counts[k] = (counts[k] ?? 0) + 1;
  }
  console.error(cases.size, counts, out.length);
};

const captured = await capture();
messages(captured);
fragments(captured);
payloads();
multiplex();
process.exit(0);
