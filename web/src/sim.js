// sim.js: the deterministic demo world.
//
// A World is a box with a few bodies that bounce off the walls and off each
// other, and that users drag. Every tab computes the same World from the
// Luminary stream alone: the virtual time of ticks and the ordered, stamped
// messages. To make that true on every JavaScript engine the simulation
//
//   - uses integers only (fixed point, FP sub-units per pixel), so no value
//     depends on how an engine rounds floats or computes sqrt/sin/cos;
//   - advances in fixed steps of STEP_MS virtual milliseconds, counted from
//     virtual time 0, never from the wall clock (no Date, no performance.now);
//   - draws its initial layout from a PRNG seeded with the instance id (no
//     Math.random);
//   - treats every message field as untrusted: a message that does not parse
//     is ignored, and it is ignored the same way everywhere.
//
// Use: const w = new World(instanceId); w.advance(timeMs); w.apply(msg);
// w.hash(). Snapshots: w.snapshot() is plain JSON; World.restore(snap).

import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js';

/** Virtual milliseconds per physics step. */
export const STEP_MS = 20;
/** Fixed-point sub-units per pixel. */
export const FP = 256;
/** World size in pixels. */
export const WIDTH = 800;
export const HEIGHT = 480;
/** Number of bodies in a world. */
export const BODIES = 7;
/** Largest velocity component, sub-units per step. */
export const VMAX = 10 * FP;
/** Velocity components above CRUISE decay slowly back towards it. */
const CRUISE = 3 * FP;
/** Divisor of the drag spring: a dragged body closes 1/SPRING of the gap per step. */
const SPRING = 4;
/** Format tag of hashes and snapshots; change it whenever the rules change. */
export const VERSION = 'luminary-demo/v1';

const W = WIDTH * FP;
const H = HEIGHT * FP;
export const KINDS = ['circle', 'square', 'diamond'];
/** The longest sender name a world keeps (drag owner). */
const MAX_OWNER = 256;

/** div is integer division rounding towards zero. */
function div(a, b) {
  return Math.trunc(a / b);
}

function clamp(v, lo, hi) {
  return v < lo ? lo : v > hi ? hi : v;
}

function abs(v) {
  return v < 0 ? -v : v;
}

/** isqrt returns floor(sqrt(n)) exactly for 0 <= n < 2^52. */
export function isqrt(n) {
  if (n < 2) return n;
  let x = Math.floor(Math.sqrt(n));
  while (x * x > n) x--;
  while ((x + 1) * (x + 1) <= n) x++;
  return x;
}

/** fnv1a32 hashes the UTF-8 bytes of s. */
export function fnv1a32(s) {
  let h = 0x811c9dc5;
  for (const b of utf8ToBytes(s)) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** xorshift32 returns a generator of uint32 values for a nonzero seed. */
export function xorshift32(seed) {
  let s = seed >>> 0 || 0x9e3779b9;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

/** A Body is one shape. Positions and velocities are in sub-units. */
class Body {
  constructor(kind, r, x, y, vx, vy) {
    this.kind = kind;
    this.r = r;
    this.x = x;
    this.y = y;
    this.vx = vx;
    this.vy = vy;
    this.drag = null; // sender name while dragged
    this.tx = 0;
    this.ty = 0;
  }
}

/**
 * World is the simulated state. All fields are integers or strings; the
 * same construction and the same calls give the same hash on every engine.
 */
export class World {
  /** @param {string} instance the instance id; seeds the layout. */
  constructor(instance) {
    if (typeof instance !== 'string') throw new TypeError('sim: instance must be a string');
    this.instance = instance;
    this.step = 0; // physics steps done; virtual time = step * STEP_MS
    this.seq = 0; // seq of the last applied message (0: none)
    this.bodies = [];
    const rnd = xorshift32(fnv1a32(instance));
    const int = (lo, hi) => lo + (rnd() % (hi - lo + 1));
    // Bodies start in the cells of a 4x2 grid so that none overlap.
    const cw = div(W, 4);
    const ch = div(H, 2);
    for (let i = 0; i < BODIES; i++) {
      const r = int(22, 38) * FP;
      const cx = (i % 4) * cw + div(cw, 2) + int(-20, 20) * FP;
      const cy = div(i, 4) * ch + div(ch, 2) + int(-20, 20) * FP;
      let vx = int(-CRUISE, CRUISE);
      let vy = int(-CRUISE, CRUISE);
      if (abs(vx) < FP) vx = vx < 0 ? -FP : FP;
      if (abs(vy) < FP) vy = vy < 0 ? -FP : FP;
      this.bodies.push(new Body(KINDS[i % KINDS.length], r, cx, cy, vx, vy));
    }
  }

  /** time returns the virtual time of the state in milliseconds. */
  get timeMs() {
    return this.step * STEP_MS;
  }

  /**
   * advance runs physics steps up to virtual time timeMs (integer ms). It
   * never goes back: an earlier time is a no-op.
   */
  advance(timeMs) {
    if (!Number.isSafeInteger(timeMs)) throw new TypeError('sim: time must be an integer number of ms');
    const target = Math.floor(timeMs / STEP_MS);
    while (this.step < target) this.tick();
  }

  /**
   * apply runs one stamped message: the world first advances to the
   * message's time, then the message acts. msg is {seq, timeMs, from, body}
   * where body is the decoded, untrusted payload. An invalid body changes
   * nothing but seq; that too is the same on every engine.
   */
  apply(msg) {
    if (!Number.isSafeInteger(msg.seq) || msg.seq <= this.seq) {
      throw new RangeError(`sim: message seq ${msg.seq} after ${this.seq}`);
    }
    this.advance(msg.timeMs);
    this.seq = msg.seq;
    const from = typeof msg.from === 'string' ? msg.from.slice(0, MAX_OWNER) : '';
    const b = msg.body;
    if (b === null || typeof b !== 'object') return false;
    const s = b.s;
    if (!Number.isInteger(s) || s < 0 || s >= this.bodies.length) return false;
    const body = this.bodies[s];
    switch (b.t) {
      case 'drag': {
        if (!Number.isInteger(b.x) || !Number.isInteger(b.y)) return false;
        body.drag = from;
        body.tx = clamp(clamp(b.x, 0, WIDTH) * FP, body.r, W - body.r);
        body.ty = clamp(clamp(b.y, 0, HEIGHT) * FP, body.r, H - body.r);
        return true;
      }
      case 'drop': {
        if (body.drag !== from) return false;
        body.drag = null;
        body.tx = 0;
        body.ty = 0;
        return true;
      }
      default:
        return false;
    }
  }

  /** tick runs one physics step. */
  tick() {
    const bs = this.bodies;
    for (const b of bs) {
      if (b.drag !== null) {
        b.vx = clamp(div(b.tx - b.x, SPRING), -VMAX, VMAX);
        b.vy = clamp(div(b.ty - b.y, SPRING), -VMAX, VMAX);
      } else {
        if (abs(b.vx) > CRUISE) b.vx -= div(b.vx, 64);
        if (abs(b.vy) > CRUISE) b.vy -= div(b.vy, 64);
      }
      b.x += b.vx;
      b.y += b.vy;
      if (b.x < b.r) {
        b.x = b.r;
        if (b.vx < 0) b.vx = -b.vx;
      } else if (b.x > W - b.r) {
        b.x = W - b.r;
        if (b.vx > 0) b.vx = -b.vx;
      }
      if (b.y < b.r) {
        b.y = b.r;
        if (b.vy < 0) b.vy = -b.vy;
      } else if (b.y > H - b.r) {
        b.y = H - b.r;
        if (b.vy > 0) b.vy = -b.vy;
      }
    }
    for (let i = 0; i < bs.length; i++) {
      for (let j = i + 1; j < bs.length; j++) collide(bs[i], bs[j]);
    }
    for (const b of bs) {
      b.vx = clamp(b.vx, -VMAX, VMAX);
      b.vy = clamp(b.vy, -VMAX, VMAX);
    }
    this.step++;
  }

  /** canonical returns the text that hash() digests. */
  canonical() {
    let s = `${VERSION}\n${JSON.stringify(this.instance)}\nstep ${this.step} seq ${this.seq}\n`;
    for (const b of this.bodies) {
      s += `${b.kind} ${b.r} ${b.x} ${b.y} ${b.vx} ${b.vy} ${JSON.stringify(b.drag)} ${b.tx} ${b.ty}\n`;
    }
    return s;
  }

  /** hash returns the SHA-256 of canonical() as 64 lowercase hex digits. */
  hash() {
    return bytesToHex(sha256(utf8ToBytes(this.canonical())));
  }

  /** snapshot returns the state as a JSON-able object. */
  snapshot() {
    return {
      v: VERSION,
      instance: this.instance,
      step: this.step,
      seq: this.seq,
      bodies: this.bodies.map((b) => [b.kind, b.r, b.x, b.y, b.vx, b.vy, b.drag, b.tx, b.ty]),
    };
  }

  /** restore builds a World from snapshot(); it throws on anything malformed. */
  static restore(snap) {
    const bad = (what) => new TypeError(`sim: bad snapshot: ${what}`);
    if (snap === null || typeof snap !== 'object') throw bad('not an object');
    if (snap.v !== VERSION) throw bad('version');
    const w = new World(snap.instance);
    if (!Number.isSafeInteger(snap.step) || snap.step < 0) throw bad('step');
    if (!Number.isSafeInteger(snap.seq) || snap.seq < 0) throw bad('seq');
    if (!Array.isArray(snap.bodies) || snap.bodies.length !== BODIES) throw bad('bodies');
    w.step = snap.step;
    w.seq = snap.seq;
    w.bodies = snap.bodies.map((a, i) => {
      if (!Array.isArray(a) || a.length !== 9) throw bad(`body ${i}`);
      const [kind, r, x, y, vx, vy, drag, tx, ty] = a;
      if (!KINDS.includes(kind)) throw bad(`body ${i} kind`);
      for (const v of [r, x, y, vx, vy, tx, ty]) {
        if (!Number.isSafeInteger(v) || abs(v) > 4 * (W + H)) throw bad(`body ${i} number`);
      }
      if (drag !== null && (typeof drag !== 'string' || drag.length > MAX_OWNER)) throw bad(`body ${i} drag`);
      const b = new Body(kind, r, x, y, vx, vy);
      b.drag = drag;
      b.tx = tx;
      b.ty = ty;
      return b;
    });
    return w;
  }

  /** bodyAt returns the index of the topmost body under pixel (px, py), or -1. */
  bodyAt(px, py) {
    const x = Math.round(px * FP);
    const y = Math.round(py * FP);
    for (let i = this.bodies.length - 1; i >= 0; i--) {
      const b = this.bodies[i];
      const dx = x - b.x;
      const dy = y - b.y;
      if (dx * dx + dy * dy <= b.r * b.r) return i;
    }
    return -1;
  }
}

/**
 * collide resolves a contact between two bodies as an elastic collision of
 * equal masses; a dragged body acts as if it had infinite mass.
 */
function collide(a, b) {
  const dx = b.x - a.x;
  const dy = b.y - a.y;
  const rr = a.r + b.r;
  const d2 = dx * dx + dy * dy;
  if (d2 >= rr * rr) return;
  const d = isqrt(d2);
  let nx = FP;
  let ny = 0;
  if (d > 0) {
    nx = div(dx * FP, d);
    ny = div(dy * FP, d);
  }
  const fixedA = a.drag !== null;
  const fixedB = b.drag !== null;
  if (fixedA && fixedB) return;
  // Velocity of b relative to a along the normal; negative when approaching.
  const rvn = div((b.vx - a.vx) * nx + (b.vy - a.vy) * ny, FP);
  if (rvn < 0) {
    const ix = div(rvn * nx, FP);
    const iy = div(rvn * ny, FP);
    if (fixedA) {
      b.vx -= 2 * ix;
      b.vy -= 2 * iy;
    } else if (fixedB) {
      a.vx += 2 * ix;
      a.vy += 2 * iy;
    } else {
      a.vx += ix;
      a.vy += iy;
      b.vx -= ix;
      b.vy -= iy;
    }
  }
  // Push the bodies apart so they no longer overlap.
  const overlap = rr - d + 1;
  if (fixedA) {
    b.x += div(overlap * nx, FP);
    b.y += div(overlap * ny, FP);
  } else if (fixedB) {
    a.x -= div(overlap * nx, FP);
    a.y -= div(overlap * ny, FP);
  } else {
    const half = div(overlap, 2) + 1;
    a.x -= div(half * nx, FP);
    a.y -= div(half * ny, FP);
    b.x += div(half * nx, FP);
    b.y += div(half * ny, FP);
  }
}
