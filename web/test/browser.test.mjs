// browser.test.mjs: the demo world in headless Chromium (Debian's
// /usr/bin/chromium driven by playwright-core; never a downloaded browser).
//
// Relay mode (the real test): start `luminary serve --demo` (LUMINARY_BIN, a
// built binary; or LUMINARY_URL, a server that is already running), open two
// pages, drag a shape in one, and wait until both show the same state hash
// with the drag applied (deadline LUMINARY_SAME_HASH_MS, default 1000 ms);
// then open a third page and wait until it shows the same hash too. Every
// (time, hash) pair two pages both computed must agree. Screenshots of the
// world and of /status go to web/test/artifacts/.
//
// Local mode (LUMINARY_BROWSER_MODE=local): serve web/dist with a tiny static
// server and check one page on its own clock (?local): it loads, runs, a drag
// moves a shape, and a screenshot is saved. It exercises the harness and the
// page without any relay.
//
// Both modes also run the simulation inside Chromium and compare its hashes
// with node's: the same code must give the same bits on both engines.
//
// Run via go test ./web -run TestBrowser (builds the binary), or directly:
//   LUMINARY_BIN=/tmp/luminary node --test web/test/browser.test.mjs
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const web = path.dirname(here);
const root = path.dirname(web);
const artifacts = process.env.LUMINARY_ARTIFACTS || path.join(here, 'artifacts');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const MODE = process.env.LUMINARY_BROWSER_MODE || 'relay';
const SAME_HASH_MS = Number(process.env.LUMINARY_SAME_HASH_MS || 1000);
/** Prefix of screenshot file names (the Go harness test sets 'harness-'). */
const SHOT = process.env.LUMINARY_SHOT_PREFIX || '';
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** until polls cond until it returns a truthy value or the deadline passes. */
async function until(cond, what, ms) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    last = await cond();
    if (last && last.ok !== false) return last;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}; last: ${JSON.stringify(last?.why ?? last)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** startServe runs `luminary serve --demo` on a free loopback port. */
async function startServe(t) {
  if (process.env.LUMINARY_URL) return process.env.LUMINARY_URL.replace(/\/$/, '');
  const bin = process.env.LUMINARY_BIN;
  assert.ok(bin, 'set LUMINARY_BIN to a built luminary binary (or LUMINARY_URL, or LUMINARY_BROWSER_MODE=local)');
  const dir = mkdtempSync(path.join(tmpdir(), 'luminary-browser-'));
  const args = (process.env.LUMINARY_SERVE_ARGS || 'serve --demo --listen 127.0.0.1:0 --data {dir}')
    .split(' ')
    .map((a) => a.replace('{dir}', dir));
  const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, MULTICAST: 'false' } });
  let out = '';
  t.after(() => {
    proc.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`luminary serve did not report its address in 20 s:\n${out}`)), 20000);
    const scan = (d) => {
      out += d;
      const m = /(?:https?:\/\/)?127\.0\.0\.1:(\d+)/.exec(out);
      if (m && m[1] !== '0') {
        clearTimeout(timer);
        resolve(`http://127.0.0.1:${m[1]}`);
      }
    };
    proc.stdout.on('data', scan);
    proc.stderr.on('data', scan);
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`luminary serve exited (${code}):\n${out}`));
    });
  });
}

/** startStatic serves web/dist on a free loopback port (local mode). */
async function startStatic(t) {
  const dist = path.join(web, 'dist');
  const types = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css' };
  const server = createServer((req, res) => {
    const p = new URL(req.url, 'http://x').pathname;
    const name = p === '/' ? 'index.html' : p === '/status' ? 'status.html' : p.slice(1);
    const file = path.join(dist, path.basename(name));
    if (!existsSync(file)) {
      res.writeHead(404, { 'Content-Type': 'application/json' });
      res.end('{"error":"not found"}');
      return;
    }
    res.writeHead(200, { 'Content-Type': types[path.extname(file)] || 'application/octet-stream' });
    res.end(readFileSync(file));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => server.close());
  return `http://127.0.0.1:${server.address().port}`;
}

async function launch(t) {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium`);
  const profile = mkdtempSync(path.join(tmpdir(), 'luminary-chromium-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    viewport: { width: 1100, height: 860 },
  });
  t.after(async () => {
    await ctx.close();
    rmSync(profile, { recursive: true, force: true });
  });
  return ctx;
}

/** open opens a page and collects its console errors. */
async function open(ctx, url) {
  const page = await ctx.newPage();
  page.errors = [];
  page.on('pageerror', (err) => page.errors.push(String(err)));
  page.on('console', (m) => m.type() === 'error' && page.errors.push(m.text()));
  await page.goto(url);
  return page;
}

function readout(page) {
  return page.evaluate(() => {
    const l = window.luminary;
    return {
      state: document.body.dataset.state,
      hash: document.getElementById('hash').dataset.full || null,
      shown: document.getElementById('hash').textContent,
      clock: document.getElementById('clock').textContent,
      seq: l.seq,
      timeMs: l.timeMs,
      pub: l.pub,
      sent: l.sent,
      appliedFrom: l.appliedFrom,
      errors: l.errors,
      history: l.history,
    };
  });
}

async function waitLive(page, name) {
  return until(
    async () => {
      const r = await readout(page);
      if (r.errors.length) throw new Error(`${name} shows an error: ${r.errors.join('; ')}`);
      return { ...r, ok: r.state === 'live' && r.hash !== null, why: r.state };
    },
    `${name} to show a live world`,
    30000,
  );
}

/**
 * dragShape grabs a shape (preferring shape i; shapes keep moving, so under
 * load the pointer may miss and another is tried) and drags it by (dx, dy)
 * CSS pixels with real mouse events. It returns the index grabbed.
 */
async function dragShape(page, i, dx, dy) {
  for (let attempt = 0; attempt < 40; attempt++) {
    const s = (i + attempt) % 7;
    const p = await page.evaluate((s) => window.luminary.screenPos(s), s);
    await page.mouse.move(p.x, p.y);
    await page.mouse.down();
    if ((await page.evaluate(() => window.luminary.dragging)) === s) {
      await page.mouse.move(p.x + dx, p.y + dy, { steps: 12 });
      await page.mouse.up();
      return s;
    }
    await page.mouse.up(); // the shape moved away under the pointer; try again
  }
  throw new Error('could not grab any shape in 40 tries');
}

/**
 * agree checks that every stream position both pages computed (seq and
 * virtual time: several ticks can share one integer millisecond) has the
 * same hash; it returns how many positions they share.
 */
function agree(a, b) {
  const key = (h) => `${h.seq}@${h.timeMs}`;
  const m = new Map(a.history.map((h) => [key(h), h]));
  let common = 0;
  for (const h of b.history) {
    const o = m.get(key(h));
    if (!o) continue;
    common++;
    assert.equal(h.hash, o.hash, `hash differs at seq ${h.seq}, virtual time ${h.timeMs} ms`);
  }
  return common;
}

/** simInPage runs the sim test script in the page and returns its hashes. */
async function simHashes(page) {
  const res = await build({
    stdin: {
      contents: `import { World } from './web/src/sim.js';
        const w = new World('cross-engine');
        const out = [w.hash()];
        for (let i = 1; i <= 40; i++) {
          w.apply({ seq: i, timeMs: i * 97, from: 'k1:' + (i % 3), body: { t: i % 5 ? 'drag' : 'drop', s: i % 7, x: (i * 53) % 800, y: (i * 31) % 480 } });
          w.advance(i * 97 + 45);
          out.push(w.hash());
        }
        w.advance(60000);
        out.push(w.hash());
        globalThis.__simHashes = out;`,
      resolveDir: root,
    },
    bundle: true,
    format: 'iife',
    write: false,
    absWorkingDir: root,
    logLevel: 'silent',
  });
  const code = res.outputFiles[0].text;
  const inPage = await page.evaluate(`${code}; globalThis.__simHashes`);
  const inNode = await import(`data:text/javascript,${encodeURIComponent(code)}`).then(() => globalThis.__simHashes);
  return { inPage, inNode };
}

test(`demo world in headless Chromium (${MODE} mode)`, { timeout: 180000 }, async (t) => {
  mkdirSync(artifacts, { recursive: true });
  const base = MODE === 'local' ? await startStatic(t) : await startServe(t);
  const ctx = await launch(t);

  if (MODE === 'local') {
    const page = await open(ctx, `${base}/?local`);
    await waitLive(page, 'local page');
    const before = await readout(page);
    await dragShape(page, 2, 160, 90);
    const after = await until(
      async () => {
        const r = await readout(page);
        return { ok: r.appliedFrom.local === r.sent && r.sent >= 2 && r.timeMs > before.timeMs, why: r };
      },
      'the local drag to be applied',
      5000,
    );
    assert.notEqual(after.hash, before.hash);
    await page.screenshot({ path: path.join(artifacts, `${SHOT}world-local.png`) });
    const { inPage, inNode } = await simHashes(page);
    assert.deepEqual(inPage, inNode, 'Chromium and node compute different sim hashes');
    assert.deepEqual(page.errors, []);
    return;
  }

  // Relay mode.
  const p1 = await open(ctx, `${base}/`);
  const p2 = await open(ctx, `${base}/`);
  const [r1, r2] = [await waitLive(p1, 'page 1'), await waitLive(p2, 'page 2')];
  assert.ok(r1.pub && r2.pub && r1.pub !== r2.pub, `two tabs are two identities: ${r1.pub} ${r2.pub}`);

  await dragShape(p1, 0, 180, 120);
  const sent = (await readout(p1)).sent;
  assert.ok(sent >= 2, `page 1 sent ${sent} messages`);
  const t0 = Date.now();
  const same = await until(
    async () => {
      const [a, b] = await Promise.all([readout(p1), readout(p2)]);
      const applied = (a.appliedFrom[a.pub] || 0) === sent && (b.appliedFrom[a.pub] || 0) === sent;
      const why = { a: [a.seq, a.shown], b: [b.seq, b.shown], sent, applied: [a.appliedFrom[a.pub] || 0, b.appliedFrom[a.pub] || 0] };
      return { ok: applied && a.hash === b.hash && a.seq === b.seq, why, a, b };
    },
    'both pages to show the same hash with the drag applied',
    SAME_HASH_MS,
  );
  t.diagnostic(`same hash on both pages ${Date.now() - t0} ms after the drop: ${same.a.shown} at seq ${same.a.seq}`);
  assert.ok(agree(same.a, same.b) > 0, 'the two pages share some ticks');

  // Page 2 drags too, then a third page joins late and catches up.
  await dragShape(p2, 3, -150, -60);
  const p3 = await open(ctx, `${base}/`);
  await waitLive(p3, 'page 3');
  const all = await until(
    async () => {
      const rs = await Promise.all([readout(p1), readout(p2), readout(p3)]);
      const ok = rs.every((r) => r.hash === rs[0].hash && r.seq === rs[0].seq) && rs[2].seq >= same.a.seq + 2;
      return { ok, why: rs.map((r) => [r.seq, r.shown]), rs };
    },
    'the late page to show the same hash',
    10000,
  );
  t.diagnostic(`late page agrees: ${all.rs[2].shown} at seq ${all.rs[2].seq}, time ${all.rs[2].clock} s`);
  agree(all.rs[0], all.rs[2]);
  agree(all.rs[1], all.rs[2]);

  await p1.screenshot({ path: path.join(artifacts, `${SHOT}world.png`) });
  const status = await open(ctx, `${base}/status`);
  await until(async () => ({ ok: Number(await status.evaluate(() => document.body.dataset.points || 0)) >= 4 }), 'the status page to chart 4 points', 15000)
    .then(() => status.screenshot({ path: path.join(artifacts, `${SHOT}status.png`) }))
    .catch((err) => t.diagnostic(`status page not checked: ${err.message}`));

  const { inPage, inNode } = await simHashes(p1);
  assert.deepEqual(inPage, inNode, 'Chromium and node compute different sim hashes');
  for (const [i, p] of [p1, p2, p3].entries()) assert.deepEqual(p.errors, [], `page ${i + 1} errors`);
});
