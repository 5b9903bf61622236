// The command's access control: each client brings a signed JWT in the `token` query parameter,
// whose `tinybase` claim names the path patterns it may write and those it may only read.
//
//   {"tinybase": {"write": ["rooms/*"], "read": ["public/**"]}, "exp": 1767225600}
//
// A pattern matches a whole path id: `*` stands for any run of characters but `/`, `**` for any
// run at all, and everything else for itself. Write wins over read. A client without a token, or
// whose token is expired, badly signed or without such a claim, is denied.

import {createPublicKey, createSecretKey} from 'node:crypto';
import {readFile} from 'node:fs/promises';
import {jwtVerify} from 'jose';

export const TOKEN_PARAMETER = 'token';
export const CLAIM = 'tinybase';

const HMAC_ALGORITHMS = ['HS256', 'HS384', 'HS512'];
const PUBLIC_KEY_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
];

const SPECIAL = /[.+?^${}()|[\]\\]/g;

/** A path pattern of the claim as an anchored regular expression. */
export const patternToRegExp = (pattern) =>
  new RegExp(
    '^' +
      pattern
        .split('**')
        .map((part) => part.replace(SPECIAL, '\\$&').replaceAll('*', '[^/]*'))
        .join('.*') +
      '$',
    'u',
  );

const isPatternList = (list) =>
  list === undefined ||
  (Array.isArray(list) && list.every((pattern) => typeof pattern == 'string'));

/** What a token's payload grants on `pathId`: 'write', 'read' or false. */
export const accessFromClaims = (payload, pathId) => {
  const claim = payload[CLAIM];
  if (
    typeof claim != 'object' ||
    claim === null ||
    !isPatternList(claim.write) ||
    !isPatternList(claim.read)
  ) {
    throw new Error(
      `token has no valid '${CLAIM}' claim of write and read path patterns`,
    );
  }
  const matches = (patterns = []) =>
    patterns.some((pattern) => patternToRegExp(pattern).test(pathId));
  return matches(claim.write) ? 'write' : matches(claim.read) ? 'read' : false;
};

// A secret file usually ends with the newline its editor added; that is not part of the secret.
const readSecret = async (file) => {
  const secret = (await readFile(file)).toString('utf8').replace(/\r?\n$/, '');
  if (secret === '') {
    throw new Error(`the JWT secret in ${file} is empty`);
  }
  return createSecretKey(Buffer.from(secret, 'utf8'));
};

/**
 * An `authorize` hook checking JWTs with the HMAC secret in `secretFile` and/or the PEM public
 * key in `publicKeyFile`; undefined when neither is given. A multiplexed socket's token is
 * verified once for all of its channels.
 */
export const createJwtAuthorize = async ({secretFile, publicKeyFile}) => {
  if (secretFile === undefined && publicKeyFile === undefined) {
    return undefined;
  }
  const secret =
    secretFile === undefined ? undefined : await readSecret(secretFile);
  const publicKey =
    publicKeyFile === undefined
      ? undefined
      : createPublicKey(await readFile(publicKeyFile));
  const algorithms = [
    ...(secret ? HMAC_ALGORITHMS : []),
    ...(publicKey ? PUBLIC_KEY_ALGORITHMS : []),
  ];
  const keyFor = ({alg}) =>
    HMAC_ALGORITHMS.includes(alg) ? secret : publicKey;
  // request -> its verified payload (a promise), for as long as the request is around
  const verified = new WeakMap();

  return async ({request, pathId}) => {
    const token = new URL(request.url, 'http://localhost').searchParams.get(
      TOKEN_PARAMETER,
    );
    if (token === null) {
      return false;
    }
    let payload = verified.get(request);
    if (payload === undefined) {
      payload = jwtVerify(token, keyFor, {algorithms}).then(
        (result) => result.payload,
      );
      verified.set(request, payload);
    }
    return accessFromClaims(await payload, pathId);
  };
};
