// Tests of protocol.js against texts made by the Go packages heartbeat and
// auth (web/testdata/vectors.json, written by go test ./web -run TestVectors
// -update). Run: node --test web/test/protocol.test.mjs
import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as P from '../src/protocol.js';
import { Key } from '../src/crypto.js';

const V = JSON.parse(readFileSync(new URL('../testdata/vectors.json', import.meta.url), 'utf8'));
const hb = V.heartbeat;

test('Go entries parse, hash and chain', () => {
  assert.ok(hb.entries.length >= 5);
  let prev = P.ZERO_HASH_TEXT;
  const kinds = [];
  for (const [i, text] of hb.entries.entries()) {
    const { entry, error } = P.parseEntry(text);
    assert.equal(error, undefined, `entry ${i + 1}: ${error}`);
    assert.equal(entry.seq, i + 1);
    assert.equal(entry.instance, hb.instance);
    assert.equal(entry.prev, prev, `entry ${entry.seq} chains`);
    prev = entry.hash;
    kinds.push(entry.kind);
  }
  assert.deepEqual(kinds.slice(0, 3), ['epoch', 'join', 'msg']);
  assert.ok(kinds.includes('leave'));
});

test('Go ticks verify; times match Go; heads match entries', () => {
  const hashes = hb.entries.map((t) => P.parseEntry(t).entry.hash);
  let last = -1;
  for (const v of hb.ticks) {
    const { tick, error } = P.parseTick(v.json);
    assert.equal(error, undefined, error);
    assert.equal(tick.signer, hb.signer);
    assert.equal(tick.timeMs, v.time_ms);
    assert.ok(tick.timeMs > last);
    last = tick.timeMs;
    assert.equal(tick.head, tick.seq === 0 ? P.ZERO_HASH_TEXT : hashes[tick.seq - 1], `tick ${tick.n} head`);
  }
});

test('a round over five instances: every Merkle path verifies', () => {
  assert.equal(hb.round.length, 5);
  for (const text of hb.round) {
    const { tick, error } = P.parseTick(text);
    assert.equal(error, undefined, error);
    assert.equal(tick.count, 5);
  }
});

test('tampered entries and ticks are refused', () => {
  assert.ok(hb.bad.length >= 5);
  for (const b of hb.bad) {
    const r = b.what === 'entry' ? P.parseEntry(b.json) : P.parseTick(b.json);
    assert.ok(r.error, `${b.what} with ${b.why} was accepted`);
  }
  assert.ok(P.parseEntry('nope').error);
  assert.ok(P.parseEntry('[]').error);
  assert.ok(P.parseTick('{}').error);
});

test('JS signs messages exactly as Go does', () => {
  for (const v of hb.messages) {
    const go = JSON.parse(v.json);
    const key = Key.parse(v.author_priv);
    const m = P.signMessage(go.instance, key, go.ts, go.nonce ?? '', go.payload);
    assert.equal(JSON.stringify(m), v.json);
    assert.equal(m.id, v.id);
    assert.equal(P.messageID(go.instance, go.author, go.ts, go.nonce ?? '', go.payload), v.id);
  }
});

test('JS wraps signed fields exactly as auth.SignField does', () => {
  assert.ok(V.wrappers.length >= 3);
  for (const w of V.wrappers) {
    const key = Key.parse(w.writer_priv);
    const chain = w.chain ?? [];
    const got = P.wrap(key, w.instance, w.soul, w.field, w.value, w.state, chain);
    assert.equal(got, w.wrapped, w.name);
    const u = P.unwrap(w.wrapped);
    assert.ok(u, w.name);
    assert.deepEqual(u.value, w.value);
    assert.ok(P.verifyWrapper(u, w.instance, w.soul, w.field, w.state), w.name);
    assert.equal(P.verifyWrapper(u, w.instance, w.soul, w.field + 'x', w.state), false);
    assert.equal(P.verifyWrapper(u, w.instance, w.soul, w.field, w.state + 1), false);
  }
  assert.equal(P.unwrap('plain'), null);
  assert.equal(P.unwrap('{":":1}'), null);
  assert.equal(P.unwrap('{":":1,"~":"x"}'), null);
  assert.equal(P.fieldText('plain'), 'plain');
});

test('outbound writes the inbox exactly as heartbeat.InboxPuts', () => {
  const v = V.inbox;
  const key = Key.parse(v.author_priv);
  const out = P.outbound(v.instance, key, v.payload, { ts: v.ts, nonce: v.nonce, state: v.state });
  assert.equal(out.soul, v.soul);
  const node = out.graph[v.soul];
  assert.equal(node._['#'], v.soul);
  assert.deepEqual(Object.keys(node).filter((k) => k !== '_'), Object.keys(v.fields));
  for (const [f, value] of Object.entries(v.fields)) {
    assert.equal(JSON.stringify(node[f]), JSON.stringify(value), f);
    assert.equal(node._['>'][f], v.state);
  }
  assert.throws(() => P.outbound(v.instance, key, 'x', { ts: 1, nonce: 'n'.repeat(65), state: 1 }), RangeError);
});

test('time in integer ms', () => {
  assert.equal(P.timeMs(1000.75, 1000, 1), 0);
  assert.equal(P.timeMs(1050.5, 1000, 2), 101);
  assert.equal(P.seqKey(42), '00000000000000000042');
  assert.equal(P.blockOf(1023), 0);
  assert.equal(P.blockOf(1024), 1);
});

test('certificates: CertBook agrees with package auth on who may tick and send', () => {
  const v = V.certs;
  const book = new P.CertBook(v.instance);
  let registered = 0;
  for (const value of Object.values(v.certs)) if (book.addField(value)) registered++;
  assert.equal(registered, Object.keys(v.certs).length, 'every published certificate parses');
  for (const serial of v.revoked) book.revoke(serial);
  assert.ok(v.checks.length >= 15);
  for (const c of v.checks) {
    assert.equal(book.authorize(c.key, c.role, c.at), c.ok, `${c.name}: ${c.role} at ${c.at}`);
  }
});

test('certificates: altered, foreign and malformed ones grant nothing', () => {
  const v = V.certs;
  const direct = v.checks.find((c) => c.name === 'direct tick certificate');
  const stranger = v.checks.find((c) => c.name === 'anyone may not tick');
  const certOf = (serial) => JSON.parse(P.unwrap(v.certs[serial]).value);

  // A relay re-publishing the direct certificate (verified first) with the
  // stranger as subject, same serial and signature: refused.
  const book = new P.CertBook(v.instance);
  assert.ok(book.addField(v.certs.direct));
  assert.ok(book.authorize(direct.key, 'tick', direct.at));
  const stolen = { ...certOf('direct'), subject: stranger.key };
  assert.ok(book.addField(JSON.stringify(stolen)));
  assert.equal(book.authorize(stranger.key, 'tick', direct.at), false);
  // The same with a longer expiry.
  const book2 = new P.CertBook(v.instance);
  book2.addField(v.certs.expired);
  const expired = v.checks.find((c) => c.name === 'expired');
  const extended = { ...certOf('expired'), expiry: certOf('expired').expiry + 10 * 86400000 };
  book2.addField(JSON.stringify(extended));
  assert.equal(book2.authorize(expired.key, 'tick', expired.at), false);

  // Certificates of another instance are not registered.
  const other = new P.CertBook(direct.key);
  assert.equal(other.addField(v.certs.direct), false);

  // Shapes auth refuses.
  const good = certOf('direct');
  const bad = [
    'nope', '[]', '{}',
    { ...good, roles: [] }, { ...good, roles: ['tick', 'tick'] }, { ...good, roles: ['god'] },
    { ...good, subject: '*', roles: ['admin'] }, { ...good, serial: '' }, { ...good, serial: 'a/b' },
    { ...good, expiry: 0 }, { ...good, notBefore: good.expiry }, { ...good, expiry: 2 ** 53 + 2 },
    { ...good, sig: 'AA' }, { ...good, extra: 1 }, { ...good, notBefore: -1 },
  ];
  for (const b of bad) assert.ok(P.parseCert(b).error, `accepted ${JSON.stringify(b).slice(0, 80)}`);
  assert.equal(P.parseCert(good).error, undefined);
});
