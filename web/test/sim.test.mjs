// Unit tests of the deterministic demo world. Run: node --test web/test/sim.test.mjs
import test from 'node:test';
import assert from 'node:assert/strict';
import { World, STEP_MS, BODIES, FP, WIDTH, HEIGHT, VMAX, isqrt, xorshift32, fnv1a32 } from '../src/sim.js';

// A fixed script of stamped messages: two users drag bodies around.
function script() {
  const msgs = [];
  let seq = 0;
  const add = (timeMs, from, body) => msgs.push({ seq: ++seq, timeMs, from, body });
  add(130, 'k1:alice', { t: 'drag', s: 0, x: 100, y: 100 });
  add(170, 'k1:alice', { t: 'drag', s: 0, x: 300, y: 200 });
  add(190, 'k1:bob', { t: 'drag', s: 3, x: 700, y: 400 });
  add(250, 'k1:alice', { t: 'drop', s: 0 });
  add(260, 'k1:bob', { t: 'drop', s: 0 }); // not bob's: ignored
  add(400, 'k1:bob', { t: 'drag', s: 3, x: 10, y: 10 });
  add(400, 'k1:mallory', { t: 'drag', s: 99, x: 1, y: 1 }); // bad index: ignored
  add(410, 'k1:mallory', { t: 'spin', s: 1 }); // unknown: ignored
  add(420, 'k1:mallory', null);
  add(900, 'k1:bob', { t: 'drop', s: 3 });
  return msgs;
}

function run(instance, msgs, endMs) {
  const w = new World(instance);
  for (const m of msgs) w.apply(m);
  w.advance(endMs);
  return w;
}

test('same inputs give the same hash', () => {
  const a = run('demo', script(), 5000);
  const b = run('demo', script(), 5000);
  assert.equal(a.hash(), b.hash());
  assert.equal(a.step, 5000 / STEP_MS);
  assert.equal(a.seq, script().length);
  assert.match(a.hash(), /^[0-9a-f]{64}$/);
});

test('known answer: the rules have not changed unnoticed', () => {
  // If this fails after an intended change of the rules, bump VERSION in
  // sim.js (old snapshots must not load) and update the hashes here.
  assert.equal(new World('demo').hash(), KNOWN.initial);
  assert.equal(run('demo', script(), 5000).hash(), KNOWN.scripted);
});

test('the instance id seeds the layout', () => {
  assert.notEqual(new World('demo').hash(), new World('other').hash());
  const w = new World('demo');
  assert.equal(w.bodies.length, BODIES);
  for (const b of w.bodies) {
    assert.ok(b.x >= b.r && b.x <= WIDTH * FP - b.r);
    assert.ok(b.y >= b.r && b.y <= HEIGHT * FP - b.r);
  }
});

test('message order matters', () => {
  const base = [
    { seq: 1, timeMs: 100, from: 'k1:a', body: { t: 'drag', s: 2, x: 50, y: 50 } },
    { seq: 2, timeMs: 100, from: 'k1:b', body: { t: 'drag', s: 2, x: 750, y: 430 } },
  ];
  const swapped = [
    { ...base[1], seq: 1 },
    { ...base[0], seq: 2 },
  ];
  assert.notEqual(run('demo', base, 1000).hash(), run('demo', swapped, 1000).hash());
});

test('message time matters', () => {
  const m = (timeMs) => [{ seq: 1, timeMs, from: 'k1:a', body: { t: 'drag', s: 1, x: 400, y: 40 } }];
  assert.notEqual(run('demo', m(100), 300).hash(), run('demo', m(200), 300).hash());
  // Within one step the time does not matter: physics runs in STEP_MS steps.
  assert.equal(run('demo', m(100), 300).hash(), run('demo', m(100 + STEP_MS - 1), 300).hash());
});

test('snapshot plus suffix replays to the same hash', () => {
  const msgs = script();
  const full = run('demo', msgs, 7000);
  for (let cut = 0; cut <= msgs.length; cut++) {
    const w = new World('demo');
    for (const m of msgs.slice(0, cut)) w.apply(m);
    const snapTime = cut < msgs.length ? msgs[cut].timeMs : 6000;
    w.advance(snapTime);
    // Through JSON, as a snapshot travels.
    const restored = World.restore(JSON.parse(JSON.stringify(w.snapshot())));
    assert.equal(restored.hash(), w.hash());
    for (const m of msgs.slice(cut)) restored.apply(m);
    restored.advance(7000);
    assert.equal(restored.hash(), full.hash(), `cut at ${cut}`);
  }
});

test('time never goes back and seq must grow', () => {
  const w = new World('demo');
  w.advance(1000);
  const h = w.hash();
  w.advance(500);
  assert.equal(w.hash(), h);
  w.apply({ seq: 5, timeMs: 1000, from: 'x', body: null });
  assert.throws(() => w.apply({ seq: 5, timeMs: 1000, from: 'x', body: null }), RangeError);
  assert.throws(() => w.advance(1.5), TypeError);
});

test('restore rejects malformed snapshots', () => {
  const good = new World('demo').snapshot();
  const cases = [
    null,
    {},
    { ...good, v: 'other' },
    { ...good, step: -1 },
    { ...good, seq: 1.5 },
    { ...good, bodies: good.bodies.slice(1) },
    { ...good, bodies: good.bodies.map((b, i) => (i === 0 ? [...b.slice(0, 8)] : b)) },
    { ...good, bodies: good.bodies.map((b, i) => (i === 0 ? ['blob', ...b.slice(1)] : b)) },
    { ...good, bodies: good.bodies.map((b, i) => (i === 0 ? [b[0], 1e300, ...b.slice(2)] : b)) },
    { ...good, bodies: good.bodies.map((b, i) => (i === 0 ? [...b.slice(0, 6), 7, ...b.slice(7)] : b)) },
  ];
  for (const c of cases) assert.throws(() => World.restore(c), TypeError, JSON.stringify(c)?.slice(0, 80));
});

test('bodies stay inside the box and below the speed limit', () => {
  const w = run('demo', script(), 0);
  for (let i = 0; i < 3000; i++) {
    w.tick();
    for (const b of w.bodies) {
      assert.ok(b.x >= b.r && b.x <= WIDTH * FP - b.r, `x at step ${w.step}`);
      assert.ok(b.y >= b.r && b.y <= HEIGHT * FP - b.r, `y at step ${w.step}`);
      assert.ok(Math.abs(b.vx) <= VMAX && Math.abs(b.vy) <= VMAX);
    }
  }
});

test('a dragged body follows the pointer', () => {
  const w = new World('demo');
  w.apply({ seq: 1, timeMs: 0, from: 'k1:a', body: { t: 'drag', s: 0, x: 400, y: 240 } });
  w.advance(2000);
  const b = w.bodies[0];
  assert.ok(Math.abs(b.x - 400 * FP) < 40 * FP && Math.abs(b.y - 240 * FP) < 40 * FP, `at ${b.x / FP},${b.y / FP}`);
  assert.equal(w.bodyAt(b.x / FP, b.y / FP), 0);
});

test('integer helpers', () => {
  for (const n of [0, 1, 2, 3, 4, 15, 16, 17, 99, 100, 2 ** 40 - 1, 2 ** 40, 2 ** 52 - 1]) {
    const r = isqrt(n);
    assert.ok(r * r <= n && (r + 1) * (r + 1) > n, `isqrt(${n})`);
  }
  const g = xorshift32(1);
  assert.deepEqual([g(), g(), g()], [270369, 67634689, 2647435461]);
  assert.equal(fnv1a32(''), 0x811c9dc5);
  assert.equal(fnv1a32('a'), 0xe40c292c);
});

const KNOWN = {
  initial: 'c2f04dfd4dcaf83503cff32233a630a45ee0136bf649fe0779814054ff4e654b',
  scripted: '3e42424e888654e368eb7dcee8e8724d6d661fc8f089bf9b371e8764ca9ace8a',
};
