import assert from 'node:assert/strict';
import test from 'node:test';
import {
  TEST_TIMEOUT_MS,
  errorMessages,
  openClient,
  openRaw,
  startServer,
  waitFor,
  waitForEqual,
  withTimeout,
} from './support/harness.js';
import {createMemoryPersister} from './support/persisters.js';

const options = {timeout: TEST_TIMEOUT_MS};

// About 60 KB of tables, with two-, three- and four-byte characters so that
// fragment boundaries fall next to multi-byte code points.
const fillLargeStore = (store) =>
  store.transaction(() => {
    for (let row = 0; row < 300; row++) {
      store.setRow('big', `row${row}`, {
        text: `é😀漢字 ${row} `.repeat(8),
        number: row,
      });
    }
  });

const FRAGMENT_PARTS =
  /^([^\n]*)\n([-0-9A-Z_a-z]{16})\n(\d+)\n(\d+)\n([\s\S]*)$/;

const fragmentsOf = (messages, from) =>
  messages.flatMap((message) => {
    const [, sender, messageId, index, total, fragment] =
      message.match(FRAGMENT_PARTS) ?? [];
    return sender === from
      ? [{messageId, index: +index, total: +total, fragment}]
      : [];
  });

// Joins the complete fragmented messages among `fragments`, parsed.
const reassemble = (fragments) => {
  const byId = new Map();
  for (const fragment of fragments) {
    byId.set(fragment.messageId, [
      ...(byId.get(fragment.messageId) ?? []),
      fragment,
    ]);
  }
  return [...byId.values()]
    .filter((group) => group.length === group[0].total)
    .map((group) =>
      JSON.parse(
        group
          .sort((a, b) => a.index - b.index)
          .map(({fragment}) => fragment)
          .join(''),
      ),
    );
};

test(
  'a large store syncs with small fragment sizes on the server and on clients',
  options,
  async (t) => {
    const server = await startServer(t, {
      fragmentSize: 1000,
      createPersisterForPath: (pathId) => createMemoryPersister({pathId}),
    });
    const observer = await openRaw(t, server, 'large');
    const writer = await openClient(t, server.url('large'), {
      fragmentSize: 512,
    });
    const [writerId] = server.wsServer
      .getClientIds('large')
      .filter((clientId) => clientId !== observer.id);
    fillLargeStore(writer.store);
    const expected = JSON.parse(JSON.stringify(writer.store.getTables()));
    const reader = await openClient(t, server.url('large'), {
      fragmentSize: 256,
    });
    await waitForEqual(() => reader.store.getTables(), expected, 'the reader');

    // The writer's broadcast of its changes reached the observer in fragments.
    const fromWriter = await waitFor(() => {
      const fragments = fragmentsOf(observer.messages, writerId);
      return (
        reassemble(fragments).some(([, message]) => message === 3) && fragments
      );
    }, "the writer's fragmented changes");
    assert.ok(
      fromWriter.every(({fragment}) => Buffer.byteLength(fragment) <= 512),
    );

    // With the writer and reader gone, only the server holds the data.
    await writer.synchronizer.destroy();
    await reader.synchronizer.destroy();
    const late = await openClient(t, server.url('large'));
    await waitForEqual(
      () => late.store.getTables(),
      expected,
      'the late client',
    );

    observer.send('S\n["ask",4,{}]');
    const fromServer = await waitFor(() => {
      const fragments = fragmentsOf(observer.messages, 'S');
      return (
        reassemble(fragments).some(([requestId]) => requestId === 'ask') &&
        fragments
      );
    }, "the server's fragmented answer");
    assert.ok(fromServer.length > 1);
    assert.ok(
      fromServer.every(({fragment}) => Buffer.byteLength(fragment) <= 1000),
    );
  },
);

test('fragmented clients of a relay-only path converge', options, async (t) => {
  const server = await startServer(t, {fragmentSize: 100});
  const [client1, client2] = await Promise.all([
    openClient(t, server.url('relay'), {fragmentSize: 300}),
    openClient(t, server.url('relay'), {fragmentSize: 700}),
  ]);
  fillLargeStore(client1.store);
  client2.store.setValue('small', 'value');
  const tables = JSON.parse(JSON.stringify(client1.store.getTables()));
  await waitForEqual(
    () => client2.store.getTables(),
    tables,
    'client 2 tables',
  );
  await waitForEqual(
    () => client1.store.getValues(),
    {small: 'value'},
    'client 1 values',
  );
});

test(
  'fragments sent out of order are relayed in order once all have arrived',
  options,
  async (t) => {
    const server = await startServer(t);
    const sender = await openRaw(t, server, 'order');
    const receiver = await openRaw(t, server, 'order');
    const id = 'Out-Of-Order_Id0';
    const fragments = ['["ooo",', '2,[12', '3,456]]'];
    sender.send(`\n${id}\n2\n3\n${fragments[2]}`);
    sender.send(`\n${id}\n0\n3\n${fragments[0]}`);
    // Nothing is relayed while a fragment is missing.
    receiver.send(`${receiver.id}\n["marker",1,""]`);
    await receiver.receive(({requestId}) => requestId === 'marker', 'marker');
    sender.send(`${receiver.id}\n["marker2",1,""]`);
    await receiver.receive(
      ({requestId}) => requestId === 'marker2',
      'second marker',
    );
    assert.equal(receiver.messages.length, 2);

    sender.send(`\n${id}\n1\n3\n${fragments[1]}`);
    await waitFor(() => receiver.messages.length === 5, 'the three fragments');
    assert.deepEqual(
      receiver.messages.slice(2),
      fragments.map(
        (fragment, index) => `${sender.id}\n${id}\n${index}\n3\n${fragment}`,
      ),
    );
    assert.deepEqual(server.errors, []);
  },
);

test(
  'interleaved fragments of two messages are reassembled separately',
  options,
  async (t) => {
    const server = await startServer(t);
    const sender = await openRaw(t, server, 'interleaved');
    const receiver = await openRaw(t, server, 'interleaved');
    const [a, b] = ['Message-A-000000', 'Message-B-000000'];
    sender.send(`${receiver.id}\n${a}\n0\n2\n["a",`);
    sender.send(`${receiver.id}\n${b}\n1\n2\n2,[1,2]]`);
    sender.send(`${receiver.id}\n${b}\n0\n2\n["b",`);
    sender.send(`${receiver.id}\n${a}\n1\n2\n1,""]`);
    await waitFor(() => receiver.messages.length === 4, 'both messages');
    assert.deepEqual(receiver.messages, [
      `${sender.id}\n${b}\n0\n2\n["b",`,
      `${sender.id}\n${b}\n1\n2\n2,[1,2]]`,
      `${sender.id}\n${a}\n0\n2\n["a",`,
      `${sender.id}\n${a}\n1\n2\n1,""]`,
    ]);
  },
);

test(
  'a single-fragment message is relayed as that fragment',
  options,
  async (t) => {
    const server = await startServer(t);
    const sender = await openRaw(t, server, 'single');
    const receiver = await openRaw(t, server, 'single');
    const id = 'Single-Fragment0';
    sender.send(`\n${id}\n0\n1\n["one",1,""]`);
    await waitFor(() => receiver.messages.length === 1, 'the fragment');
    assert.deepEqual(receiver.messages, [
      `${sender.id}\n${id}\n0\n1\n["one",1,""]`,
    ]);
  },
);

const INVALID_FRAGMENTS = {
  'a repeated fragment index': ['0\n3\n["r",', '0\n3\n["r",'],
  'a changed total': ['0\n3\n["r",', '1\n2\n1,""]'],
  'fragments joining into an invalid message': ['0\n2\n["r",', '1\n2\n1,"x"]'],
};

for (const [name, [first, second]] of Object.entries(INVALID_FRAGMENTS)) {
  test(
    `${name} closes the sender with 1007 tinybase:14`,
    options,
    async (t) => {
      const server = await startServer(t);
      const sender = await openRaw(t, server, 'bad');
      const receiver = await openRaw(t, server, 'bad');
      const id = 'Bad-Fragments-00';
      sender.send(`\n${id}\n${first}`);
      sender.send(`\n${id}\n${second}`);
      assert.deepEqual(
        await withTimeout(sender.closed, 'the sender to be closed'),
        {
          code: 1007,
          reason: 'tinybase:14',
        },
      );
      assert.deepEqual(errorMessages(server.errors), ['tinybase:14']);
      receiver.send(`${receiver.id}\n["marker",1,""]`);
      await receiver.receive(({requestId}) => requestId === 'marker', 'marker');
      assert.equal(receiver.messages.length, 1);
    },
  );
}

test(
  'fragments from different senders with the same message id do not mix',
  options,
  async (t) => {
    const server = await startServer(t);
    const first = await openRaw(t, server, 'same-id');
    const second = await openRaw(t, server, 'same-id');
    const receiver = await openRaw(t, server, 'same-id');
    const id = 'Shared-Message-0';
    first.send(`${receiver.id}\n${id}\n0\n2\n["1",`);
    second.send(`${receiver.id}\n${id}\n0\n2\n["2",`);
    second.send(`${receiver.id}\n${id}\n1\n2\n1,""]`);
    await waitFor(
      () => receiver.messages.length === 2,
      "the second sender's message",
    );
    first.send(`${receiver.id}\n${id}\n1\n2\n1,""]`);
    await waitFor(
      () => receiver.messages.length === 4,
      "the first sender's message",
    );
    assert.deepEqual(receiver.messages, [
      `${second.id}\n${id}\n0\n2\n["2",`,
      `${second.id}\n${id}\n1\n2\n1,""]`,
      `${first.id}\n${id}\n0\n2\n["1",`,
      `${first.id}\n${id}\n1\n2\n1,""]`,
    ]);
  },
);
