// Seeded fuzz tests of the parsers that read untrusted bytes: log entries,
// ticks, field wrappers, Gun frames and message bodies. Each mutates valid
// inputs (made by Go, web/testdata/vectors.json) a bounded number of times
// and checks that nothing throws and that nothing tampered is accepted
// unless it decodes to the same thing. Run: node --test web/test/fuzz.test.mjs
// LUMINARY_FUZZ_ITERS raises the iteration count.
import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as P from '../src/protocol.js';
import { GunWire } from '../src/gunwire.js';
import { World, xorshift32 } from '../src/sim.js';

const V = JSON.parse(readFileSync(new URL('../testdata/vectors.json', import.meta.url), 'utf8'));
const ITERS = Number(process.env.LUMINARY_FUZZ_ITERS || 1500);
const ALPHABET = '{}[]":,\\0123456789abcdefABCDEF-_.e+ \u00e9\u2713\ud83d\ude00';

/** mutate returns a random variant of s: flips, inserts, deletes, truncations, splices. */
function mutator(seed) {
  const rnd = xorshift32(seed);
  const pick = (n) => rnd() % n;
  return (s, other) => {
    const a = [...s];
    const n = 1 + pick(4);
    for (let i = 0; i < n; i++) {
      const at = pick(a.length + 1);
      switch (pick(6)) {
        case 0:
          a[at] = ALPHABET[pick(ALPHABET.length)];
          break;
        case 1:
          a.splice(at, 0, ALPHABET[pick(ALPHABET.length)]);
          break;
        case 2:
          a.splice(at, 1 + pick(8));
          break;
        case 3:
          a.length = at;
          break;
        case 4: {
          const o = [...other];
          const from = pick(o.length + 1);
          a.splice(at, pick(16), ...o.slice(from, from + pick(32)));
          break;
        }
        default:
          if (a[at] >= '0' && a[at] <= '9') a[at] = String((Number(a[at]) + 1) % 10);
      }
    }
    return a.join('');
  };
}

test('fuzz parseEntry: never throws; accepts only what decodes to a known entry', () => {
  const m = mutator(1);
  const known = new Set(V.heartbeat.entries.map((t) => P.parseEntry(t).entry.hash));
  for (let i = 0; i < ITERS; i++) {
    const src = V.heartbeat.entries[i % V.heartbeat.entries.length];
    const text = m(src, V.heartbeat.entries[(i * 7) % V.heartbeat.entries.length]);
    const r = P.parseEntry(text);
    if (r.entry) assert.ok(known.has(r.entry.hash), `accepted a new entry from ${JSON.stringify(text)}`);
    else assert.equal(typeof r.error, 'string');
  }
});

test('fuzz parseTick: never throws; accepts only known ticks', () => {
  const m = mutator(2);
  const texts = [...V.heartbeat.ticks.map((t) => t.json), ...V.heartbeat.round];
  const known = new Set(texts.map((t) => JSON.stringify(P.parseTick(t).tick)));
  for (let i = 0; i < ITERS; i++) {
    const text = m(texts[i % texts.length], texts[(i * 5) % texts.length]);
    const r = P.parseTick(text);
    if (r.tick) assert.ok(known.has(JSON.stringify(r.tick)), `accepted a new tick from ${JSON.stringify(text)}`);
    else assert.equal(typeof r.error, 'string');
  }
});

test('fuzz unwrap and verifyWrapper: never throw; tampered wrappers do not verify', () => {
  const m = mutator(3);
  for (let i = 0; i < ITERS; i++) {
    const w = V.wrappers[i % V.wrappers.length];
    const text = m(w.wrapped, V.wrappers[(i + 1) % V.wrappers.length].wrapped);
    const u = P.unwrap(text);
    if (!u) continue;
    if (P.verifyWrapper(u, w.instance, w.soul, w.field, w.state)) {
      assert.deepEqual(u.value, w.value, `a tampered wrapper verified: ${text}`);
    }
  }
});

test('fuzz Gun frames: the wire client never throws', () => {
  class StubSocket {
    constructor() {
      this.readyState = 1;
      StubSocket.last = this;
      this.sent = [];
    }
    send(s) {
      this.sent.push(s);
    }
    close() {}
  }
  const errors = [];
  const c = new GunWire('ws://stub/gun', { WebSocket: StubSocket, onError: (e) => errors.push(e) }).connect();
  const seen = [];
  c.on('s', (d) => seen.push(d));
  const ws = StubSocket.last;
  ws.onopen();
  const frames = [
    '[]',
    '{"#":"a","dam":"?","pid":"p"}',
    '{"#":"b","put":{"s":{"_":{"#":"s",">":{"f":1}},"f":"v"}}}',
    '[{"#":"c","@":"zz","ok":true},{"#":"d","put":{"s":{"_":{"#":"s",">":{"g":2}},"g":{"#":"x"}}}}]',
  ];
  const m = mutator(4);
  for (let i = 0; i < ITERS; i++) {
    ws.onmessage({ data: m(frames[i % frames.length], frames[(i + 1) % frames.length]) });
  }
  c.close();
  for (const d of seen) for (const k of Object.keys(d)) if (k !== '_') assert.notEqual(typeof d[k], 'undefined');
});

test('fuzz message bodies: the world never throws and stays deterministic', () => {
  const rnd = xorshift32(5);
  const bodies = [];
  const values = [null, true, 0, -1, 1.5, 1e300, -0, 'x', '', [], {}, 799, 480, 6, 7, 2 ** 53];
  for (let i = 0; i < 400; i++) {
    const b = {};
    for (const k of ['t', 's', 'x', 'y']) if (rnd() % 4) b[k] = values[rnd() % values.length];
    if (rnd() % 2) b.t = ['drag', 'drop', 'spin'][rnd() % 3];
    bodies.push(rnd() % 10 ? b : values[rnd() % values.length]);
  }
  const run = () => {
    const w = new World('fuzz');
    bodies.forEach((body, i) => w.apply({ seq: i + 1, timeMs: i * 13, from: `k1:${i % 3}`, body }));
    w.advance(10000);
    return w.hash();
  };
  assert.equal(run(), run());
});
