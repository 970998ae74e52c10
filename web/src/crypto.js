// crypto.js: keys, the signed-message domain and signatures, matching the Go
// package keys byte for byte.
//
//   - Public key text: secp256k1 "k1:" + base64url(33-byte compressed point)
//     (47 chars); P-256 SEA "x.y" (43 + 1 + 43 chars, unpadded base64url).
//   - Private key text (secp256k1): "k1priv:" + base64url(32-byte scalar).
//   - Signed bytes: message(label, ...parts) = UTF-8 "luminary/v1/" + label,
//     0x00, then per part a 4-byte big-endian length and the bytes.
//   - Signature: 64 bytes r‖s over SHA-256(message), low-S. Verification is
//     strict (low-S required) unless {lax: true}, which Go's VerifyLax allows
//     only for SEA signatures made by WebCrypto.
//
// No primitive is written here: ECDSA, RFC 6979 and SHA-256 come from noble.

import { secp256k1 } from '@noble/curves/secp256k1.js';
import { p256 } from '@noble/curves/nist.js';
import { utf8ToBytes } from '@noble/hashes/utils.js';

const K1_PREFIX = 'k1:';
const K1_PRIV_PREFIX = 'k1priv:';
const MESSAGE_PREFIX = 'luminary/v1/';

/** b64url encodes bytes as unpadded base64url. */
export function b64url(bytes) {
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/**
 * unb64url decodes canonical unpadded base64url; it returns null for any
 * other text (padding, '+', '/', stray bits in the last character).
 */
export function unb64url(text) {
  if (typeof text !== 'string' || !/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) return null;
  let bin;
  try {
    bin = atob(text.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (text.length % 4)) % 4));
  } catch {
    return null;
  }
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return b64url(out) === text ? out : null;
}

/** bytes turns a string (as UTF-8) or a Uint8Array into a Uint8Array. */
export function bytes(part) {
  if (part instanceof Uint8Array) return part;
  if (typeof part === 'string') return utf8ToBytes(part);
  throw new TypeError('crypto: message part must be a string or Uint8Array');
}

/** concat joins byte arrays. */
export function concat(...arrays) {
  let n = 0;
  for (const a of arrays) n += a.length;
  const out = new Uint8Array(n);
  let off = 0;
  for (const a of arrays) {
    out.set(a, off);
    off += a.length;
  }
  return out;
}

/**
 * message builds the exact bytes that a Luminary-native signature covers
 * (Go: keys.Message). Parts are Uint8Arrays or strings (UTF-8).
 */
export function message(label, ...parts) {
  if (typeof label !== 'string' || label.includes('\0')) throw new TypeError('crypto: bad label');
  const ps = parts.map(bytes);
  const chunks = [utf8ToBytes(MESSAGE_PREFIX + label), new Uint8Array([0])];
  for (const p of ps) {
    const len = new Uint8Array(4);
    new DataView(len.buffer).setUint32(0, p.length, false);
    chunks.push(len, p);
  }
  return concat(...chunks);
}

/**
 * parsePublic parses a public key text strictly (exact length, canonical
 * base64url, a point on the curve). It returns {curve, point, text} or
 * throws a TypeError starting with "invalid: public key".
 */
export function parsePublic(text) {
  const bad = (why) => new TypeError(`invalid: public key: ${why}`);
  if (typeof text !== 'string') throw bad('not a string');
  if (text.length === 47 && text.startsWith(K1_PREFIX)) {
    const raw = unb64url(text.slice(3));
    if (!raw || raw.length !== 33 || (raw[0] !== 2 && raw[0] !== 3)) throw bad('secp256k1 encoding');
    try {
      secp256k1.Point.fromBytes(raw).assertValidity();
    } catch {
      throw bad('secp256k1 point');
    }
    return { curve: 'secp256k1', point: raw, text };
  }
  if (text.length === 87 && text[43] === '.') {
    const x = unb64url(text.slice(0, 43));
    const y = unb64url(text.slice(44));
    if (!x || !y || x.length !== 32 || y.length !== 32) throw bad('p256 encoding');
    const raw = concat(new Uint8Array([4]), x, y);
    try {
      p256.Point.fromBytes(raw).assertValidity();
    } catch {
      throw bad('p256 point');
    }
    return { curve: 'p256', point: raw, text };
  }
  throw bad(`unrecognised form (length ${text.length})`);
}

/**
 * verify reports whether sig (64 bytes r‖s) signs SHA-256(msg) for the key
 * with text form pubText. Low-S is required unless opts.lax.
 */
export function verify(pubText, msg, sig, opts = {}) {
  if (!(sig instanceof Uint8Array) || sig.length !== 64) return false;
  let key;
  try {
    key = parsePublic(pubText);
  } catch {
    return false;
  }
  const curve = key.curve === 'secp256k1' ? secp256k1 : p256;
  try {
    return curve.verify(sig, bytes(msg), key.point, { prehash: true, lowS: !opts.lax, format: 'compact' });
  } catch {
    return false;
  }
}

/**
 * Key is a secp256k1 signing key. Create one with Key.generate() or
 * Key.parse(text); key.pub is the public text form.
 */
export class Key {
  #secret;

  constructor(secret) {
    if (!(secret instanceof Uint8Array) || !secp256k1.utils.isValidSecretKey(secret)) {
      throw new TypeError('invalid: private key');
    }
    this.#secret = secret;
    /** The public key text form, "k1:...". */
    this.pub = K1_PREFIX + b64url(secp256k1.getPublicKey(secret, true));
  }

  /** generate makes a new random key (CSPRNG from noble / WebCrypto). */
  static generate() {
    return new Key(secp256k1.utils.randomSecretKey());
  }

  /** parse reads "k1priv:" + base64url(scalar). */
  static parse(text) {
    if (typeof text !== 'string' || text.length !== 50 || !text.startsWith(K1_PRIV_PREFIX)) {
      throw new TypeError('invalid: private key');
    }
    const d = unb64url(text.slice(K1_PRIV_PREFIX.length));
    if (!d || d.length !== 32) throw new TypeError('invalid: private key');
    return new Key(d);
  }

  /** encode returns the secret text form. Never log or send it. */
  encode() {
    return K1_PRIV_PREFIX + b64url(this.#secret);
  }

  /** sign returns the 64-byte low-S r‖s signature of SHA-256(msg). */
  sign(msg) {
    return secp256k1.sign(bytes(msg), this.#secret, { prehash: true, lowS: true, format: 'compact' });
  }

  /** toString hides the secret. */
  toString() {
    return `private key for ${this.pub}`;
  }

  toJSON() {
    return this.toString();
  }
}

/**
 * sessionKey returns this tab's key, kept in sessionStorage so that two tabs
 * are two identities and a reload keeps its identity. storage defaults to
 * globalThis.sessionStorage; without one a fresh key is made each call.
 */
export function sessionKey(storage = globalThis.sessionStorage, slot = 'luminary.key') {
  if (storage) {
    const saved = storage.getItem(slot);
    if (saved) {
      try {
        return Key.parse(saved);
      } catch {
        // A damaged entry is replaced below.
      }
    }
  }
  const k = Key.generate();
  if (storage) storage.setItem(slot, k.encode());
  return k;
}
