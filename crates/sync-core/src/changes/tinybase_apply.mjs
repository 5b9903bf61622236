// The oracle for the merge's property test: applies ContentDiff payloads to TinyBase's own
// MergeableStore, as a path's server client would, and reports the store it ends with.
// Reads one JSON array of cases on stdin, each {start, sequence, merged} (lists of payloads
// `fromClientId\n[requestId, 3, changes]`), and writes one line per case: the content after
// start + sequence and after start + merged: the mergeable content as it is, stamps in order,
// and the plain content with its keys sorted, since TinyBase lists a row or table there from
// when its first cell was set, which merging may change.
import {createMergeableStore} from 'tinybase';

const UNDEFINED = '\uFFFC';

// As the server client does before its synchronizer sees a message.
const restoreUndefined = (value) =>
  value === UNDEFINED
    ? undefined
    : Array.isArray(value)
      ? value.map(restoreUndefined)
      : value !== null && typeof value == 'object'
        ? Object.fromEntries(
            Object.entries(value).map(([key, nested]) => [
              key,
              restoreUndefined(nested),
            ]),
          )
        : value;

const sortKeys = (value) =>
  Array.isArray(value)
    ? value.map(sortKeys)
    : value !== null && typeof value == 'object'
      ? Object.fromEntries(
          Object.keys(value)
            .sort()
            .map((key) => [key, sortKeys(value[key])]),
        )
      : value;

const applyAll = (payloads) => {
  // A fixed clock: every HLC the test makes is judged against the same "now".
  const store = createMergeableStore('s', () => Number(process.argv[2]));
  for (const payload of payloads) {
    const [, , changes] = JSON.parse(payload.slice(payload.indexOf('\n') + 1));
    store.applyMergeableChanges(restoreUndefined(changes));
  }
  return JSON.stringify([
    store.getMergeableContent(),
    store.getMergeableContentHashes(),
    sortKeys(store.getContent()),
  ]);
};

let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => (input += chunk));
process.stdin.on('end', () => {
  for (const {start, sequence, merged} of JSON.parse(input)) {
    process.stdout.write(
      JSON.stringify([
        applyAll([...start, ...sequence]),
        applyAll([...start, ...merged]),
      ]) + '\n',
    );
  }
});
