// app.js: the demo world page.
//
// Flow: make (or reuse) this tab's key → POST /api/worlds/{world}/join with
// the public key → open the Gun wire at /gun → follow the instance's stream
// (stream.js) into a World (sim.js) → draw it. Dragging a shape sends signed
// messages; the shape moves only when the stream brings them back stamped,
// so what every tab shows is the same function of the stream.
//
// ?world=NAME picks a world (default "demo"). ?local runs the world on this
// tab's own clock with no relay at all: useful to try the page, never shared.

import { GunWire } from './gunwire.js';
import { sessionKey } from './crypto.js';
import { World, WIDTH, HEIGHT, FP } from './sim.js';
import { Follower } from './stream.js';
import * as P from './protocol.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const worldName = params.get('world') || 'demo';
const localMode = params.has('local');
/** Minimum spacing of drag messages while the pointer moves. */
const DRAG_EVERY_MS = 50;
/** How many (time, hash) pairs window.luminary.history keeps. */
const HISTORY = 400;

const PALETTE = ['#ff6b6b', '#ffd166', '#06d6a0', '#4cc9f0', '#b388ff', '#f78c6b', '#9be564'];

const ui = {
  canvas: $('world'),
  clock: $('clock'),
  seq: $('seq'),
  hash: $('hash'),
  peers: $('peers'),
  conn: $('conn'),
  me: $('me'),
  error: $('error'),
  worldLabel: $('world-name'),
};

/** state exposed for people poking at the console and for the browser test. */
const lum = {
  world: worldName,
  instance: null,
  mode: localMode ? 'local' : 'relay',
  timeMs: null,
  seq: 0,
  hash: null,
  history: [], // [{timeMs, seq, hash}] newest last
  errors: [],
  sent: 0, // messages this tab sent
  appliedFrom: {}, // sender key → messages of it applied so far
  dragging: -1, // index of the shape this tab drags, or -1
  pub: null,
  /** screenPos returns the client (CSS pixel) position of shape i. */
  screenPos(i) {
    const b = world && world.bodies[i];
    if (!b) return null;
    const rect = ui.canvas.getBoundingClientRect();
    return { x: rect.left + ((b.x / FP) * rect.width) / WIDTH, y: rect.top + ((b.y / FP) * rect.height) / HEIGHT };
  },
};
window.luminary = lum;

function showError(text) {
  lum.errors.push(text);
  ui.error.textContent = text;
  ui.error.hidden = false;
  document.body.dataset.state = 'error';
}

function setConn(s) {
  ui.conn.textContent = s;
  ui.conn.dataset.status = s;
}

let world = null;
let key = null;
let nonce = 0;
/** Makes nonces unique across reloads of this tab (ts alone could repeat). */
const nonceTag = Array.from(crypto.getRandomValues(new Uint8Array(4)), (b) => b.toString(16).padStart(2, '0')).join('');
let send = () => {};

/** counted wraps the world to count applied messages (not presence) per sender. */
function counted(w) {
  return {
    get seq() {
      return w.seq;
    },
    apply(m) {
      if (m.kind === undefined || m.kind === 'msg') lum.appliedFrom[m.from] = (lum.appliedFrom[m.from] || 0) + 1;
      w.apply(m);
    },
    advance(t) {
      w.advance(t);
    },
  };
}

/** onTick updates the read-outs after the world reached a tick. */
function onTick(timeMs, seq) {
  lum.timeMs = timeMs;
  lum.seq = seq;
  lum.hash = world.hash();
  lum.history.push({ timeMs, seq, hash: lum.hash });
  if (lum.history.length > HISTORY) lum.history.splice(0, lum.history.length - HISTORY);
  ui.clock.textContent = (timeMs / 1000).toFixed(2);
  ui.seq.textContent = String(seq);
  ui.hash.textContent = lum.hash.slice(0, 12);
  ui.hash.dataset.full = lum.hash;
  ui.hash.title = lum.hash;
  document.body.dataset.state = 'live';
}

// --- drawing -------------------------------------------------------------

const ctx = ui.canvas.getContext('2d');
let pointer = null; // {x, y} in world pixels while this tab drags

function ownerColor(owner) {
  let h = 0;
  for (let i = 0; i < owner.length; i++) h = (h * 31 + owner.charCodeAt(i)) | 0;
  return `hsl(${Math.abs(h) % 360} 90% 70%)`;
}

function resize() {
  const dpr = window.devicePixelRatio || 1;
  const w = ui.canvas.clientWidth;
  ui.canvas.width = Math.round(w * dpr);
  ui.canvas.height = Math.round(((w * HEIGHT) / WIDTH) * dpr);
}

function draw() {
  requestAnimationFrame(draw);
  const c = ui.canvas;
  const s = c.width / WIDTH;
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.fillStyle = '#10141c';
  ctx.fillRect(0, 0, c.width, c.height);
  ctx.setTransform(s, 0, 0, s, 0, 0);
  ctx.strokeStyle = '#1d2433';
  ctx.lineWidth = 1;
  for (let x = 40; x < WIDTH; x += 40) {
    ctx.beginPath();
    ctx.moveTo(x, 0);
    ctx.lineTo(x, HEIGHT);
    ctx.stroke();
  }
  for (let y = 40; y < HEIGHT; y += 40) {
    ctx.beginPath();
    ctx.moveTo(0, y);
    ctx.lineTo(WIDTH, y);
    ctx.stroke();
  }
  if (!world) return;
  world.bodies.forEach((b, i) => {
    const x = b.x / FP;
    const y = b.y / FP;
    const r = b.r / FP;
    ctx.fillStyle = PALETTE[i % PALETTE.length];
    ctx.beginPath();
    if (b.kind === 'square') ctx.rect(x - r * 0.8, y - r * 0.8, r * 1.6, r * 1.6);
    else if (b.kind === 'diamond') {
      ctx.moveTo(x, y - r);
      ctx.lineTo(x + r, y);
      ctx.lineTo(x, y + r);
      ctx.lineTo(x - r, y);
      ctx.closePath();
    } else ctx.arc(x, y, r, 0, Math.PI * 2);
    ctx.fill();
    if (b.drag !== null) {
      ctx.lineWidth = 4;
      ctx.strokeStyle = ownerColor(b.drag);
      ctx.stroke();
      ctx.setLineDash([4, 4]);
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      ctx.moveTo(x, y);
      ctx.lineTo(b.tx / FP, b.ty / FP);
      ctx.stroke();
      ctx.setLineDash([]);
    }
  });
  if (pointer) {
    ctx.strokeStyle = '#ffffff';
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    ctx.arc(pointer.x, pointer.y, 6, 0, Math.PI * 2);
    ctx.stroke();
  }
}

// --- dragging ------------------------------------------------------------

function worldPoint(ev) {
  const rect = ui.canvas.getBoundingClientRect();
  return {
    x: Math.round(((ev.clientX - rect.left) * WIDTH) / rect.width),
    y: Math.round(((ev.clientY - rect.top) * HEIGHT) / rect.height),
  };
}

let dragging = -1;
let lastSent = 0;
let moveTimer = null;

function sendDrag() {
  moveTimer = null;
  if (dragging < 0 || !pointer) return;
  lastSent = performance.now();
  send({ t: 'drag', s: dragging, x: pointer.x, y: pointer.y });
}

ui.canvas.addEventListener('pointerdown', (ev) => {
  if (!world) return;
  const p = worldPoint(ev);
  const s = world.bodyAt(p.x, p.y);
  if (s < 0) return;
  ui.canvas.setPointerCapture(ev.pointerId);
  dragging = s;
  lum.dragging = s;
  pointer = p;
  sendDrag();
});
ui.canvas.addEventListener('pointermove', (ev) => {
  if (dragging < 0) return;
  pointer = worldPoint(ev);
  if (moveTimer) return;
  const wait = Math.max(0, DRAG_EVERY_MS - (performance.now() - lastSent));
  moveTimer = setTimeout(sendDrag, wait);
});
const endDrag = () => {
  if (dragging < 0) return;
  if (moveTimer) {
    clearTimeout(moveTimer);
    sendDrag();
  }
  send({ t: 'drop', s: dragging });
  dragging = -1;
  lum.dragging = -1;
  pointer = null;
};
ui.canvas.addEventListener('pointerup', endDrag);
ui.canvas.addEventListener('pointercancel', endDrag);

// --- joining -------------------------------------------------------------

/**
 * join asks the relay to admit this tab's key to the world. The answer names
 * the instance and carries what the page needs to write (see web/README.md).
 */
async function join(pub) {
  const url = `/api/worlds/${encodeURIComponent(worldName)}/join`;
  let res;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ pub }),
    });
  } catch (err) {
    throw new Error(`cannot reach the relay (POST ${url}): ${err.message}`);
  }
  const text = await res.text();
  if (!res.ok) {
    // Show the relay's reason when it gave one ({"error": ...} or plain
    // text); never dump an HTML error page into the banner.
    let reason = '';
    try {
      const j = JSON.parse(text);
      if (j && typeof j.error === 'string') reason = j.error;
    } catch {
      if (!text.trimStart().startsWith('<')) reason = text.trim().slice(0, 200);
    }
    const what = `POST ${url} → ${res.status}${reason ? `: ${reason}` : ''}`;
    if (res.status === 404 || res.status === 405 || res.status === 501) {
      throw new Error(`This server has no world "${worldName}" or no join API (${what}). The demo world needs luminary serve --demo.`);
    }
    throw new Error(`Join refused (${what}).`);
  }
  let j;
  try {
    j = JSON.parse(text);
  } catch {
    throw new Error(`join answer is not JSON (POST ${url})`);
  }
  if (!j || typeof j.instance !== 'string' || !P.validInstance(j.instance)) {
    throw new Error(`join answer has no valid "instance" (POST ${url})`);
  }
  return j;
}

async function startRelay() {
  key = sessionKey();
  lum.pub = key.pub;
  ui.me.textContent = key.pub.slice(0, 14) + '…';
  ui.me.title = key.pub;
  setConn('joining');
  const grant = await join(key.pub);
  lum.instance = grant.instance;
  world = new World(grant.instance);
  const wire = new GunWire(`${location.origin}/gun`, { onStatus: setConn });
  wire.connect();
  lum.wire = wire;
  // Who may sign ticks: the owner, and keys holding a tick certificate
  // from the owner (directly or through admins), published at
  // lum/<I>/certs and not revoked at lum/<I>/revoked. The page checks the
  // certificates itself (CertBook, package auth's rules), so a relay can
  // withhold ticks but not make the page accept a key the owner did not
  // certify. Ticks that arrive before their signer's certificate are
  // dropped; the next ones count.
  const book = new P.CertBook(grant.instance);
  const fields = (diff, f) => { for (const k of Object.keys(diff)) if (k !== '_') f(k, diff[k]); };
  wire.on(P.souls(grant.instance).certs, (diff) => fields(diff, (_, v) => book.addField(v)));
  wire.on(P.souls(grant.instance).revoked, (diff) => fields(diff, (serial, v) => v !== null && book.revoke(serial)));
  const present = new Set();
  const follower = new Follower(wire, grant.instance, counted(world), {
    isSigner: (k, tick) => book.authorize(k, 'tick', tick.state),
    onTick: ({ tick, applied }) => onTick(tick.timeMs, applied),
    onEntry: (e) => {
      // Presence is part of the stream: every tab counts the same peers.
      if (e.kind === 'join') present.add(e.author);
      if (e.kind === 'leave') present.delete(e.author);
      ui.peers.textContent = String(present.size);
    },
    onError: (err) => showError(err.message),
  });
  follower.start();
  lum.follower = follower;
  send = (body) => {
    nonce++;
    const now = Date.now();
    let out;
    try {
      out = P.outbound(grant.instance, key, JSON.stringify(body), { ts: now, nonce: `${nonceTag}.${nonce}`, state: now });
    } catch (err) {
      showError(err.message);
      return;
    }
    lum.sent++;
    wire.put(out.graph).catch((err) => {
      // "duplicate:" acknowledges a message the relay already sequenced.
      if (!String(err.reason ?? err.message).startsWith('duplicate:')) showError(`message refused: ${err.message}`);
    });
  };
}

/** startLocal runs the world on this tab's clock; nothing is shared. */
function startLocal() {
  ui.error.textContent = 'Local mode: this tab runs its own clock. Nothing is shared with other tabs.';
  ui.error.hidden = false;
  ui.error.classList.add('note');
  setConn('local');
  lum.instance = `local/${worldName}`;
  world = new World(lum.instance);
  lum.pub = 'local';
  const model = counted(world);
  const t0 = performance.now();
  const now = () => Math.floor(performance.now() - t0);
  let seq = 0;
  const queue = [];
  send = (body) => {
    lum.sent++;
    queue.push({ seq: ++seq, timeMs: now(), from: 'local', body });
  };
  setInterval(() => {
    const t = now();
    for (const m of queue.splice(0)) model.apply(m);
    world.advance(t);
    onTick(t, seq);
  }, 50);
}

ui.worldLabel.textContent = worldName;
window.addEventListener('resize', resize);
resize();
requestAnimationFrame(draw);
if (localMode) startLocal();
else startRelay().catch((err) => {
  setConn('offline');
  showError(err.message);
});
