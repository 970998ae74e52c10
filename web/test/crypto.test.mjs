// Tests of keys, message domain bytes and signatures, including vectors made
// by the Go package keys (web/testdata/vectors.json; see its README).
// Run: node --test web/test/crypto.test.mjs
import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { p256 } from '@noble/curves/nist.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { Key, message, verify, parsePublic, b64url, unb64url, sessionKey } from '../src/crypto.js';

const vectors = JSON.parse(readFileSync(new URL('../testdata/vectors.json', import.meta.url), 'utf8'));

test('message matches the documented layout', () => {
  const m = message('tick', 'ab', new Uint8Array([0, 255]), '');
  const want = [
    ...new TextEncoder().encode('luminary/v1/tick'),
    0,
    0, 0, 0, 2, 0x61, 0x62,
    0, 0, 0, 2, 0, 255,
    0, 0, 0, 0,
  ];
  assert.deepEqual([...m], want);
  assert.throws(() => message('a\0b'), TypeError);
  assert.throws(() => message('x', 5), TypeError);
});

test('sign and verify round trip; low-S; tamper fails', () => {
  const k = Key.generate();
  assert.match(k.pub, /^k1:[A-Za-z0-9_-]{44}$/);
  const msg = message('in', 'world', 'hello');
  const sig = k.sign(msg);
  assert.equal(sig.length, 64);
  assert.ok(verify(k.pub, msg, sig));
  const s = BigInt('0x' + bytesToHex(sig.slice(32)));
  assert.ok(s <= secp256k1.Point.CURVE().n / 2n, 'low-S');
  const bad = message('in', 'world', 'hellp');
  assert.equal(verify(k.pub, bad, sig), false);
  // The high-S twin is refused, unless lax.
  const n = secp256k1.Point.CURVE().n;
  const hi = hexToBytes((n - s).toString(16).padStart(64, '0'));
  const twin = new Uint8Array([...sig.slice(0, 32), ...hi]);
  assert.equal(verify(k.pub, msg, twin), false);
  assert.equal(verify(k.pub, msg, twin, { lax: true }), true);
  assert.equal(verify(k.pub, msg, sig.slice(1)), false);
  assert.equal(verify('k1:nope', msg, sig), false);
  assert.equal(String(k).includes(k.encode()), false);
  assert.equal(JSON.stringify({ k }).includes(k.encode()), false);
});

test('private key text round trip', () => {
  const k = Key.generate();
  const t = k.encode();
  assert.match(t, /^k1priv:[A-Za-z0-9_-]{43}$/);
  assert.equal(Key.parse(t).pub, k.pub);
  for (const bad of ['', 'k1priv:', t + 'A', t.replace('k1priv:', 'k2priv:'), 'k1priv:' + 'A'.repeat(43)]) {
    assert.throws(() => Key.parse(bad), TypeError, bad);
  }
});

test('sessionKey keeps one key per storage', () => {
  const store = new Map();
  const storage = { getItem: (k) => store.get(k) ?? null, setItem: (k, v) => store.set(k, v) };
  const a = sessionKey(storage);
  assert.equal(sessionKey(storage).pub, a.pub);
  store.set('luminary.key', 'garbage');
  assert.notEqual(sessionKey(storage).pub, a.pub);
  const other = new Map();
  assert.notEqual(sessionKey({ getItem: (k) => other.get(k) ?? null, setItem: (k, v) => other.set(k, v) }).pub, a.pub);
});

test('public key parsing is strict', () => {
  const k = Key.generate();
  assert.equal(parsePublic(k.pub).curve, 'secp256k1');
  const p = p256.keygen();
  const raw = p.publicKey.length === 33 ? p256.Point.fromBytes(p.publicKey).toBytes(false) : p.publicKey;
  const sea = b64url(raw.slice(1, 33)) + '.' + b64url(raw.slice(33));
  assert.equal(parsePublic(sea).curve, 'p256');
  const cases = [
    '',
    'k1:' + 'A'.repeat(44),
    k.pub.slice(0, -1) + (k.pub.endsWith('A') ? 'B' : 'A'), // likely off-curve or non-canonical
    k.pub + '=',
    'k2' + k.pub.slice(2),
    sea.replace('.', ','),
    sea.slice(0, 43) + '.' + 'A'.repeat(43),
  ];
  for (const c of cases) {
    let ok = true;
    try {
      parsePublic(c);
    } catch (err) {
      ok = false;
      assert.match(err.message, /^invalid: public key/);
    }
    // The flipped last character may still be a valid point; all others must fail.
    if (c !== cases[2]) assert.equal(ok, false, c);
  }
});

test('base64url is canonical', () => {
  assert.equal(b64url(new Uint8Array([255, 254])), '__4');
  assert.deepEqual([...unb64url('__4')], [255, 254]);
  assert.equal(unb64url('__5'), null); // stray bits
  assert.equal(unb64url('__4='), null);
  assert.equal(unb64url('+/4'), null);
  assert.equal(unb64url('A'), null);
});

test('Go vectors: message bytes and signatures verify; JS signs the same', () => {
  assert.ok(vectors.signatures.length >= 2);
  for (const v of vectors.signatures) {
    const parts = v.parts_hex.map((h) => hexToBytes(h));
    const msg = message(v.label, ...parts);
    assert.equal(bytesToHex(msg), v.message_hex, v.name);
    assert.equal(bytesToHex(sha256(msg)), v.sha256_hex, v.name);
    const sig = hexToBytes(v.sig_hex);
    assert.equal(verify(v.pub, msg, sig), v.valid, v.name);
    if (v.priv && v.valid) {
      const k = Key.parse(v.priv);
      assert.equal(k.pub, v.pub, v.name);
      // RFC 6979 on both sides: the same key and bytes give the same signature.
      assert.equal(bytesToHex(k.sign(msg)), v.sig_hex, v.name);
    }
  }
});
