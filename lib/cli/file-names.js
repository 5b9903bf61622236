import {createHash} from 'node:crypto';

// Only these characters are kept as they are. Uppercase letters are escaped
// too, because on case-insensitive file systems (macOS, Windows) `petShop` and
// `petshop` would otherwise share one file, and so one path's data.
const KEPT = /[a-z0-9_-]/;

// File systems commonly allow 255 bytes a name; the file persister also
// writes `<name>.<unique id>.tmp` beside it, so leave plenty of room.
const MAX_ENCODED_LENGTH = 180;
const HASHED_PREFIX_LENGTH = 120;

// Windows refuses these as file names whatever the extension.
const WINDOWS_RESERVED = /^(con|prn|aux|nul|com\d|lpt\d)$/;

const EXTENSION = '.json';

// `~` is never produced by escaping, so hashed names cannot collide with
// plain ones.
const HASH_MARK = '~';

const escapeByte = (byte) =>
  '%' + byte.toString(16).toUpperCase().padStart(2, '0');

const escapePathId = (pathId) => {
  let escaped = '';
  for (const char of pathId) {
    escaped += KEPT.test(char)
      ? char
      : [...Buffer.from(char, 'utf8')].map(escapeByte).join('');
  }
  return WINDOWS_RESERVED.test(escaped)
    ? escapeByte(escaped.charCodeAt(0)) + escaped.slice(1)
    : escaped;
};

// Never cut an escape sequence in half, so the prefix stays readable.
const truncateEscaped = (escaped, length) => {
  const cut = escaped.slice(0, length);
  const lastEscape = cut.lastIndexOf('%');
  return lastEscape > length - 3 ? cut.slice(0, lastEscape) : cut;
};

// UTF-16 code units keep lone surrogates apart, which UTF-8 would merge into
// one replacement character.
const hashPathId = (pathId) =>
  createHash('sha256')
    .update(Buffer.from(pathId, 'utf16le'))
    .digest('hex')
    .slice(0, 32);

/**
 * Maps a TinyBase path id (any string: it comes straight from the client's
 * URL or multiplexed channel) to one file name that stays inside its folder,
 * is valid on Linux, macOS and Windows, and differs for every distinct id,
 * even when compared case-insensitively.
 *
 * Most ids are percent-encoded, so `decodeURIComponent` on the name without
 * its extension gives the id back. Empty, very long and malformed (lone
 * surrogate) ids instead get a readable prefix, `~` and a hash.
 */
export const pathIdToFileName = (pathId) => {
  const wellFormed = pathId.isWellFormed();
  const escaped = escapePathId(wellFormed ? pathId : pathId.toWellFormed());
  return (
    (wellFormed && escaped != '' && escaped.length <= MAX_ENCODED_LENGTH
      ? escaped
      : truncateEscaped(escaped, HASHED_PREFIX_LENGTH) +
        HASH_MARK +
        hashPathId(pathId)) + EXTENSION
  );
};
