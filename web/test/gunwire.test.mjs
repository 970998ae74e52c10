// Tests of the Gun wire client: against a scripted fake relay (exact frames)
// and against a stock gun.js relay (npm gun, in its own process).
// Run: node --test web/test/gunwire.test.mjs
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws'; // ws 7, installed with gun

const WebSocketServer = WebSocket.Server;
import { GunWire, WireError, stateOf, newID } from '../src/gunwire.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');

/** until polls cond every few ms until it is truthy or the deadline passes. */
async function until(cond, what, ms = 5000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** fakeRelay starts a WebSocket server whose behaviour the test scripts. */
async function fakeRelay(onMessage) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, path: '/gun' });
  await new Promise((r) => wss.on('listening', r));
  const conns = [];
  const got = [];
  wss.on('connection', (ws) => {
    conns.push(ws);
    ws.send(JSON.stringify({ '#': newID(), dam: '?', pid: 'relaypid' }));
    ws.on('message', (data) => {
      const m = JSON.parse(String(data));
      got.push(m);
      onMessage(ws, m);
    });
  });
  return {
    url: `ws://127.0.0.1:${wss.address().port}/gun`,
    conns,
    got,
    close: () => new Promise((r) => wss.close(r)),
  };
}

const node = (soul, fields, state) => {
  const n = { _: { '#': soul, '>': {} } };
  for (const [k, v] of Object.entries(fields)) {
    n._['>'][k] = state;
    n[k] = v;
  }
  return n;
};

test('handshake, get, batched frames, keep-alive and dedup', async (t) => {
  const relay = await fakeRelay((ws, m) => {
    if (m.get) {
      // Two chunks chained by "%", in one array frame, then a duplicate.
      const a = { '#': 'r1aaaaaaa', '@': m['#'], '%': 'r2aaaaaaa', put: { s: node('s', { a: 1 }, 5) } };
      const b = { '#': 'r2aaaaaaa', '@': m['#'], put: { s: node('s', { b: 'x' }, 6) } };
      ws.send('[]');
      ws.send(JSON.stringify([a, b]));
      ws.send(JSON.stringify(b));
    }
  });
  t.after(() => relay.close());
  const c = new GunWire(relay.url, { WebSocket }).connect();
  t.after(() => c.close());
  const n = await c.get('s');
  assert.equal(n.a, 1);
  assert.equal(n.b, 'x');
  assert.equal(stateOf(n, 'b'), 6);
  const hello = await until(() => relay.got.find((m) => m.dam === '?'), 'handshake');
  assert.equal(hello.pid, c.pid);
  assert.ok(typeof hello['@'] === 'string');
});

test('not found resolves undefined', async (t) => {
  const relay = await fakeRelay((ws, m) => {
    if (m.get) ws.send(JSON.stringify({ '#': newID(), '@': m['#'] }));
  });
  t.after(() => relay.close());
  const c = new GunWire(relay.url, { WebSocket }).connect();
  t.after(() => c.close());
  assert.equal(await c.get('nothing'), undefined);
});

test('put resolves on ok and rejects on err', async (t) => {
  const relay = await fakeRelay((ws, m) => {
    if (!m.put) return;
    if (m.put.bad) ws.send(JSON.stringify({ '#': newID(), '@': m['#'], err: 'invalid: signature' }));
    else ws.send(JSON.stringify({ '#': newID(), '@': m['#'], ok: true }));
  });
  t.after(() => relay.close());
  const c = new GunWire(relay.url, { WebSocket }).connect();
  t.after(() => c.close());
  const ack = await c.put({ good: node('good', { v: 1 }, 1) });
  assert.equal(ack.ok, true);
  await assert.rejects(c.put({ bad: node('bad', { v: 1 }, 1) }), (err) => err instanceof WireError && err.reason === 'invalid: signature');
});

test('HAM merge: older states do not reach subscribers', async (t) => {
  let conn;
  const relay = await fakeRelay((ws, m) => {
    conn = ws;
    if (m.get) ws.send(JSON.stringify({ '#': newID(), '@': m['#'], put: { hb: node('hb', { tick: 't2' }, 200) } }));
  });
  t.after(() => relay.close());
  const c = new GunWire(relay.url, { WebSocket }).connect();
  t.after(() => c.close());
  const seen = [];
  c.on('hb', (diff) => seen.push(diff.tick));
  await until(() => seen.length === 1, 'first reply');
  conn.send(JSON.stringify({ '#': newID(), put: { hb: node('hb', { tick: 't1' }, 100) } })); // older: dropped
  conn.send(JSON.stringify({ '#': newID(), put: { hb: node('hb', { tick: 't3' }, 300) } }));
  conn.send(JSON.stringify({ '#': newID(), put: { hb: { _: { '#': 'other', '>': { tick: 1 } }, tick: 'x' } } })); // soul mismatch
  conn.send(JSON.stringify({ '#': newID(), put: { hb: node('hb', { tick: [1] }, 400) } })); // invalid value
  conn.send('not json');
  await until(() => seen.length === 2, 'newer tick');
  assert.deepEqual(seen, ['t2', 't3']);
});

test('reconnects with backoff and re-sends subscriptions', async (t) => {
  let gets = 0;
  const relay = await fakeRelay((ws, m) => {
    if (m.get) gets++;
  });
  t.after(() => relay.close());
  const statuses = [];
  const c = new GunWire(relay.url, { WebSocket, backoffMinMs: 20, onStatus: (s) => statuses.push(s) }).connect();
  t.after(() => c.close());
  const seen = [];
  c.on('hb', (diff) => seen.push(diff.tick));
  await until(() => gets === 1, 'first get');
  relay.conns[0].terminate();
  await until(() => gets === 2 && relay.conns.length === 2, 'get after reconnect');
  relay.conns[1].send(JSON.stringify({ '#': newID(), put: { hb: node('hb', { tick: 'after' }, 1) } }));
  await until(() => seen.includes('after'), 'push after reconnect');
  assert.ok(statuses.filter((s) => s === 'open').length >= 2, statuses.join(','));
});

test('against a stock gun.js relay: put, get, subscription push', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'gunwire-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const proc = spawn(process.execPath, [path.join(root, 'internal/nodetest/js/gunrelay.mjs'), JSON.stringify({ radisk: true, file: dir })], {
    env: { ...process.env, MULTICAST: 'false' },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  t.after(() => proc.kill('SIGTERM'));
  const port = await new Promise((resolve, reject) => {
    let buf = '';
    proc.stdout.on('data', (d) => {
      buf += d;
      const m = /READY (\d+)/.exec(buf);
      if (m) resolve(Number(m[1]));
    });
    proc.on('exit', (code) => reject(new Error(`relay exited ${code}`)));
  });
  const url = `http://127.0.0.1:${port}/gun`;
  const a = new GunWire(url, { WebSocket }).connect();
  const b = new GunWire(url, { WebSocket }).connect();
  t.after(() => {
    a.close();
    b.close();
  });
  const pushed = [];
  a.on('lum/test/hb', (diff) => pushed.push(diff.tick));
  // A get answered by the relay (not found) means it has seen a's interest.
  assert.equal(await a.get('lum/test/hb'), undefined);
  const ack = await b.put({ 'lum/test/hb': node('lum/test/hb', { tick: 'one', rate: 1 }, Date.now()) });
  assert.equal(ack.ok, true);
  await until(() => pushed.includes('one'), 'push of tick one');
  const n = await a.get('lum/test/hb');
  assert.equal(n.tick, 'one');
  assert.equal(n.rate, 1);
  const f = await b.get('lum/test/hb', 'rate');
  assert.equal(f.rate, 1);
});

test('a get pending across a reconnect is asked again under a new id', async (t) => {
  const gets = [];
  const relay = await fakeRelay((ws, m) => {
    if (!m.get) return;
    gets.push(m['#']);
    if (gets.length === 2) ws.send(JSON.stringify({ '#': newID(), '@': m['#'], put: { s: node('s', { v: 2 }, 1) } }));
  });
  t.after(() => relay.close());
  const c = new GunWire(relay.url, { WebSocket, backoffMinMs: 20 }).connect();
  t.after(() => c.close());
  const p = c.get('s');
  await until(() => gets.length === 1, 'first get');
  relay.conns[0].terminate();
  const n = await p;
  assert.equal(n.v, 2);
  assert.notEqual(gets[0], gets[1]);
  assert.equal(c.pending.size, 0);
});
