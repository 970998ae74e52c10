// Tests of the stream follower with a fake transport fed the Go-made stream
// (web/testdata/vectors.json) in different delivery orders.
// Run: node --test web/test/stream.test.mjs
import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as P from '../src/protocol.js';
import { Follower, StreamError } from '../src/stream.js';
import { World } from '../src/sim.js';

const hb = JSON.parse(readFileSync(new URL('../testdata/vectors.json', import.meta.url), 'utf8')).heartbeat;
const S = P.souls(hb.instance);

/** FakeWire delivers what the test pushes to the subscribers of a soul. */
class FakeWire {
  constructor() {
    this.subs = new Map();
    this.state = 1;
  }
  on(soul, cb) {
    if (!this.subs.has(soul)) this.subs.set(soul, new Set());
    this.subs.get(soul).add(cb);
    return () => this.subs.get(soul).delete(cb);
  }
  push(soul, fields) {
    const node = { _: { '#': soul, '>': {} } };
    for (const [k, v] of Object.entries(fields)) {
      node._['>'][k] = this.state++;
      node[k] = v;
    }
    for (const cb of this.subs.get(soul) || []) cb(node, node);
  }
  tick(i) {
    this.push(S.hb, { tick: hb.ticks[i].json });
  }
  entry(seq) {
    this.push(S.block(P.blockOf(seq)), { [P.seqKey(seq)]: hb.entries[seq - 1] });
  }
}

/** Recorder is a model that records what the follower does. */
class Recorder {
  constructor() {
    this.seq = 0;
    this.calls = [];
  }
  apply(m) {
    this.seq = m.seq;
    this.calls.push(['apply', m.seq, m.kind, m.timeMs, m.body]);
  }
  advance(t) {
    this.calls.push(['advance', t]);
  }
}

const lastTickSeq = () => JSON.parse(hb.ticks[hb.ticks.length - 1].json).seq;

function follow(model, opts = {}) {
  const wire = new FakeWire();
  const errors = [];
  const f = new Follower(wire, hb.instance, model, { isSigner: (k) => k === hb.signer, onError: (e) => errors.push(e), ...opts });
  f.start();
  return { wire, f, errors };
}

test('entries then ticks: applies in order, advances per tick', () => {
  const rec = new Recorder();
  const { wire, f, errors } = follow(rec);
  wire.tick(0); // subscribes to block 0
  for (let s = 1; s <= hb.entries.length; s++) wire.entry(s);
  for (let i = 1; i < hb.ticks.length; i++) wire.tick(i);
  assert.deepEqual(errors, []);
  assert.equal(f.applied, lastTickSeq());
  const applies = rec.calls.filter((c) => c[0] === 'apply');
  assert.deepEqual(applies.map((c) => c[1]), [...Array(lastTickSeq()).keys()].map((i) => i + 1));
  const advances = rec.calls.filter((c) => c[0] === 'advance').map((c) => c[1]);
  assert.deepEqual(advances, hb.ticks.map((t) => t.time_ms));
  const drag = applies.find((c) => c[2] === 'msg');
  assert.deepEqual(drag[4], { t: 'drag', s: 0, x: 100, y: 120 });
  const notJSON = applies.filter((c) => c[2] === 'msg').at(-1);
  assert.equal(notJSON[4], null);
});

test('ticks first, entries late and reversed: same result', () => {
  const a = new Recorder();
  const x = follow(a);
  x.wire.tick(0);
  for (let s = 1; s <= hb.entries.length; s++) x.wire.entry(s);
  for (let i = 1; i < hb.ticks.length; i++) x.wire.tick(i);

  const b = new Recorder();
  const y = follow(b);
  for (let i = 0; i < hb.ticks.length; i++) y.wire.tick(i);
  assert.equal(b.calls.length, 0, 'nothing happens before the entries arrive');
  for (let s = hb.entries.length; s >= 1; s--) y.wire.entry(s);
  y.wire.entry(2); // a duplicate changes nothing
  assert.deepEqual(y.errors, []);
  // Intermediate ticks may be skipped when they arrive late, but the end
  // state is the same and time only moves forward.
  assert.deepEqual(b.calls.filter((c) => c[0] === 'apply'), a.calls.filter((c) => c[0] === 'apply'));
  assert.equal(b.calls.at(-1)[1], a.calls.at(-1)[1]);
});

test('two followers build the same world whatever the delivery order', () => {
  const w1 = new World(hb.instance);
  const one = follow(w1);
  const w2 = new World(hb.instance);
  const two = follow(w2);
  one.wire.tick(0);
  for (let s = 1; s <= hb.entries.length; s++) one.wire.entry(s);
  for (let i = 1; i < hb.ticks.length; i++) one.wire.tick(i);
  for (const s of [5, 1, 3, 2, 4, 6, 7]) if (s <= hb.entries.length) two.wire.entry(s); // before any subscription: lost
  for (let i = 0; i < hb.ticks.length; i++) two.wire.tick(i);
  for (const s of [4, 2, 6, 1, 3, 5, 7]) if (s <= hb.entries.length) two.wire.entry(s);
  assert.deepEqual(one.errors, []);
  assert.deepEqual(two.errors, []);
  assert.equal(w1.hash(), w2.hash());
  assert.equal(w1.seq, lastTickSeq());
});

test('bad ticks are dropped; wrong signer is dropped', () => {
  const rec = new Recorder();
  const { wire, f, errors } = follow(rec, { isSigner: () => false });
  wire.tick(0);
  assert.equal(f.stats.badTicks, 1);
  wire.push(S.hb, { tick: 'garbage' });
  wire.push(S.hb, { tick: hb.bad.find((b) => b.what === 'tick').json });
  assert.equal(f.stats.badTicks, 3);
  assert.deepEqual(errors, []);
  assert.equal(rec.calls.length, 0);
});

test('isSigner judges each tick: it gets the signer and the tick (its state)', () => {
  const rec = new Recorder();
  const asked = [];
  const from = JSON.parse(hb.ticks[1].json).state; // a signer certified from the second tick on
  const { wire, f } = follow(rec, {
    isSigner: (k, tick) => {
      asked.push([k, tick.state]);
      return k === hb.signer && tick.state >= from;
    },
  });
  wire.tick(0);
  wire.tick(1);
  for (let seq = 1; seq <= hb.entries.length; seq++) wire.entry(seq);
  assert.deepEqual(asked.map(([k]) => k), [hb.signer, hb.signer]);
  assert.deepEqual(asked.map(([, s]) => s), [JSON.parse(hb.ticks[0].json).state, from]);
  assert.equal(f.stats.badTicks, 1);
  assert.equal(f.stats.ticks, 1);
});

test('a tampered entry stops the stream with a clear error', () => {
  const rec = new Recorder();
  const { wire, errors } = follow(rec);
  wire.tick(1);
  wire.entry(1);
  wire.entry(2);
  const bad = hb.bad.find((b) => b.why === 'payload changed');
  wire.push(S.block(0), { [P.seqKey(3)]: bad.json });
  assert.equal(errors.length, 1);
  assert.ok(errors[0] instanceof StreamError);
  assert.match(errors[0].message, /entry 3/);
});

test('entries that do not chain stop the stream', () => {
  const rec = new Recorder();
  const { wire, errors } = follow(rec);
  wire.tick(1);
  // Entry 2 placed under seq 1: misplaced.
  wire.push(S.block(0), { [P.seqKey(1)]: hb.entries[1] });
  assert.equal(errors.length, 1);
  assert.match(errors[0].message, /misplaced/);
});

test('history is trusted through the signed chain; a forged author signature still breaks it', () => {
  const forged = hb.bad.find((b) => b.why.startsWith('author signature broken'));
  const seq = JSON.parse(forged.json).seq;
  // As history (covered by the first tick): caught by the chain check.
  {
    const rec = new Recorder();
    const { wire, errors } = follow(rec);
    wire.tick(hb.ticks.length - 1);
    for (let s = 1; s <= hb.entries.length; s++) {
      if (s === seq) wire.push(S.block(0), { [P.seqKey(s)]: forged.json });
      else wire.entry(s);
    }
    assert.equal(errors.length, 1);
    assert.match(errors[0].message, /does not chain|head does not match/);
  }
  // As a live entry (after the first tick): refused by its signature.
  {
    const rec = new Recorder();
    const { wire, errors } = follow(rec);
    wire.tick(0);
    assert.ok(JSON.parse(hb.ticks[0].json).seq < seq);
    wire.push(S.block(0), { [P.seqKey(seq)]: forged.json });
    assert.equal(errors.length, 1);
    assert.match(errors[0].message, /signature/);
  }
});
