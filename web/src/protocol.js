// protocol.js: every Luminary wire format the page reads or writes, in one
// place, matching the Go packages heartbeat (entries, ticks, messages) and
// auth (signed field wrappers, certificates). The rest of the page deals in
// plain objects:
//
//   Tick   {instance, epoch, n, seq, head, state, start, rate, signer, ..., timeMs}
//   Entry  {instance, epoch, seq, state, prev, kind, author, ts, nonce,
//           payload, sig, ref, ref_hash, hash, timeMs}
//
// Binary fields are unpadded base64url; hashes are SHA-256 as 43 base64url
// characters. Hashes and signatures never cover JSON: they cover
// keys.Message(label, parts...) rebuilt from the parsed fields, with
// integers as 8-byte big-endian and HAM states as their IEEE-754 bits.
//
// web/README.md ("Protocol") lists which parts are checked against Go
// vectors (web/testdata/vectors.json) and which are still assumptions.

import { sha256 } from '@noble/hashes/sha2.js';
import { message, verify, b64url, unb64url, concat } from './crypto.js';

/** keys.Message labels of package heartbeat and package auth. */
export const LABEL = Object.freeze({
  message: 'heartbeat.message',
  entry: 'heartbeat.entry',
  leaf: 'heartbeat.tick',
  node: 'heartbeat.node',
  round: 'heartbeat.round',
  put: 'put',
  cert: 'cert',
});

/** Entry kinds and their numeric values (part of the entry hash). */
export const KIND = Object.freeze({ msg: 1, join: 2, leave: 3, epoch: 4, snapshot: 5 });

/** Bounds, as in package heartbeat. */
export const MAX_KEY_TEXT = 128;
export const MAX_NONCE = 64;
export const MAX_PAYLOAD = 1 << 20;
export const MAX_PATH = 40;
const MAX_SAFE = Number.MAX_SAFE_INTEGER;

/**
 * Log block layout (heartbeat/layout.go): entry seq lives in
 * lum/<I>/log/<floor(seq / BLOCK)>, field = seq zero-padded to SEQ_DIGITS.
 */
export const BLOCK = 1024;
export const SEQ_DIGITS = 20;

/** Souls of one instance (heartbeat/layout.go, auth/souls.go). */
export const souls = (instance) => ({
  root: `lum/${instance}`,
  hb: `lum/${instance}/hb`,
  clients: `lum/${instance}/clients`,
  inbound: (id) => `lum/${instance}/in/${id}`,
  block: (b) => `lum/${instance}/log/${b}`,
});

/** seqKey is the zero-padded field name of seq in its log block. */
export function seqKey(seq) {
  return String(seq).padStart(SEQ_DIGITS, '0');
}

/** blockOf returns the log block that holds seq. */
export function blockOf(seq) {
  return Math.floor(seq / BLOCK);
}

/**
 * timeMs turns a HAM state into integer virtual milliseconds:
 * floor((state − start) × rate). It is Go's heartbeat.VTime × 1000 before
 * the division, floored; every engine computes the same IEEE doubles.
 */
export function timeMs(state, start, rate) {
  return Math.floor((state - start) * rate);
}

// --- byte helpers ----------------------------------------------------------

export function u64(n) {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n), false);
  return b;
}

export function f64(x) {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setFloat64(0, x, false);
  return b;
}

const ZERO_HASH = new Uint8Array(32);
/** The text of the all-zero hash (prev of seq 1). */
export const ZERO_HASH_TEXT = b64url(ZERO_HASH);

function hashOf(label, ...parts) {
  return sha256(message(label, ...parts));
}

/** decodeHash parses a 43-character base64url hash, or returns null. */
export function decodeHash(text) {
  if (typeof text !== 'string' || text.length !== 43) return null;
  const b = unb64url(text);
  return b && b.length === 32 ? b : null;
}

function decodeSig(text) {
  if (typeof text !== 'string' || text.length !== 86) return null;
  const b = unb64url(text);
  return b && b.length === 64 ? b : null;
}

// --- strict object reading (mirrors heartbeat/codec.go's reader) ------------

class Reader {
  constructor(o) {
    this.o = o;
    this.read = new Set();
    this.err = null;
  }
  get(k, required) {
    if (!Object.prototype.hasOwnProperty.call(this.o, k)) {
      if (required && !this.err) this.err = `missing member "${k}"`;
      return undefined;
    }
    this.read.add(k);
    return this.o[k];
  }
  fail(k, want) {
    if (!this.err) this.err = `member "${k}" must be ${want}`;
  }
  str(k, required) {
    const v = this.get(k, required);
    if (v === undefined) return '';
    if (typeof v !== 'string') this.fail(k, 'a string');
    return typeof v === 'string' ? v : '';
  }
  num(k, required) {
    const v = this.get(k, required);
    if (v === undefined) return 0;
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(k, 'a finite number');
    return typeof v === 'number' ? v : 0;
  }
  uint(k, required) {
    const v = this.get(k, required);
    if (v === undefined) return 0;
    if (!Number.isSafeInteger(v) || v < 0 || Object.is(v, -0)) this.fail(k, 'an integer in [0, 2^53)');
    return Number.isSafeInteger(v) ? v : 0;
  }
  done() {
    if (this.err) return this.err;
    for (const k of Object.keys(this.o)) if (!this.read.has(k)) return `unknown member "${k}"`;
    return null;
  }
}

/** parseObject parses JSON text that must be an object (bounded size). */
function parseObject(text, max = MAX_PAYLOAD + 65536) {
  if (typeof text !== 'string' || text.length > max) return null;
  let v;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? v : null;
}

/** keyText reports whether s has the syntax of a key text in souls. */
export function keyText(s) {
  return typeof s === 'string' && s.length > 0 && s.length <= MAX_KEY_TEXT && /^[A-Za-z0-9_:.-]+$/.test(s);
}

function goodState(s) {
  return Number.isFinite(s) && s > 0 && s < MAX_SAFE;
}

const utf8 = new TextEncoder();

// --- messages ---------------------------------------------------------------

/**
 * messageBytes is what an author signs (heartbeat.Message.SignedBytes):
 * keys.Message("heartbeat.message", instance, author, ts (8 bytes BE), nonce, payload).
 */
export function messageBytes(instance, author, ts, nonce, payload) {
  return message(LABEL.message, instance, author, u64(ts), nonce, payload);
}

/** messageID is SHA-256 of the signed bytes, as hash text. */
export function messageID(instance, author, ts, nonce, payload) {
  return b64url(sha256(messageBytes(instance, author, ts, nonce, payload)));
}

/**
 * signMessage makes a signed external message (heartbeat.Message JSON
 * form, with its id): {instance, author, ts, nonce?, payload, sig, id}.
 */
export function signMessage(instance, key, ts, nonce, payload) {
  if (!Number.isSafeInteger(ts) || ts < 0) throw new RangeError('protocol: bad ts');
  if (utf8.encode(nonce).length > MAX_NONCE) throw new RangeError('protocol: nonce too long');
  const bytes = messageBytes(instance, key.pub, ts, nonce, payload);
  const m = { instance, author: key.pub, ts };
  if (nonce !== '') m.nonce = nonce;
  m.payload = payload;
  m.sig = b64url(key.sign(bytes));
  m.id = b64url(sha256(bytes));
  return m;
}

// --- entries ----------------------------------------------------------------

/** entryHash recomputes heartbeat.Entry.Hash from parsed fields (Uint8Array). */
export function entryHash(e) {
  const sig = e.sig ? decodeSig(e.sig) : new Uint8Array(0);
  return hashOf(
    LABEL.entry,
    e.instance,
    u64(e.epoch),
    u64(e.seq),
    f64(e.state),
    decodeHash(e.prev),
    new Uint8Array([KIND[e.kind]]),
    e.author,
    u64(e.ts),
    e.nonce,
    e.payload,
    sig,
    u64(e.ref),
    e.ref_hash ? decodeHash(e.ref_hash) : ZERO_HASH,
  );
}

/**
 * parseEntry decodes an entry's JSON text (heartbeat.ParseEntry): strict
 * members, its "hash" must equal the recomputed hash, and a message entry's
 * author signature must verify unless opts.skipAuthor (the entry is then
 * trusted through the hash chain that a verified tick signs, like Go's
 * FollowerConfig.SkipAuthorSignatures). It returns {entry} or {error}.
 */
export function parseEntry(text, opts = {}) {
  const o = parseObject(text);
  if (!o) return { error: 'entry is not a JSON object' };
  const r = new Reader(o);
  const e = {
    instance: r.str('instance', true),
    epoch: r.uint('epoch', true),
    seq: r.uint('seq', true),
    state: r.num('state', true),
    prev: r.str('prev', true),
    kind: r.str('kind', true),
    author: r.str('author', false),
    ts: r.uint('ts', false),
    nonce: r.str('nonce', false),
    payload: r.str('payload', false),
    sig: r.str('sig', false),
    ref: r.uint('ref', false),
    ref_hash: r.str('ref_hash', false),
    hash: r.str('hash', true),
  };
  const err = r.done();
  if (err) return { error: `entry: ${err}` };
  if (!keyText(e.instance)) return { error: 'entry: instance' };
  if (e.seq === 0 || e.epoch === 0 || !goodState(e.state)) return { error: 'entry: seq/epoch/state out of range' };
  if (!(e.kind in KIND)) return { error: `entry: unknown kind ${JSON.stringify(e.kind)}` };
  if (!decodeHash(e.prev) || !decodeHash(e.hash)) return { error: 'entry: prev/hash encoding' };
  if (e.ref_hash && !decodeHash(e.ref_hash)) return { error: 'entry: ref_hash encoding' };
  if (e.sig && !decodeSig(e.sig)) return { error: 'entry: sig encoding' };
  if (e.seq === 1 && e.prev !== ZERO_HASH_TEXT) return { error: 'entry: seq 1 must have a zero prev' };
  if (utf8.encode(e.nonce).length > MAX_NONCE) return { error: 'entry: nonce too long' };
  if (b64url(entryHash(e)) !== e.hash) return { error: `entry ${e.seq}: hash mismatch` };
  switch (e.kind) {
    case 'msg':
      if (!keyText(e.author) || !e.sig) return { error: `entry ${e.seq}: message fields` };
      if (!opts.skipAuthor && !verify(e.author, messageBytes(e.instance, e.author, e.ts, e.nonce, e.payload), decodeSig(e.sig))) {
        return { error: `entry ${e.seq}: author signature does not verify` };
      }
      break;
    case 'join':
    case 'leave':
    case 'epoch':
      if (!keyText(e.author)) return { error: `entry ${e.seq}: author` };
      break;
    case 'snapshot':
      if (e.ref === 0 || e.ref >= e.seq) return { error: `entry ${e.seq}: snapshot ref` };
      break;
  }
  return { entry: e };
}

// --- ticks ------------------------------------------------------------------

/** tickLeaf recomputes heartbeat.TickRecord.Leaf. */
export function tickLeaf(t) {
  return hashOf(LABEL.leaf, t.instance, u64(t.epoch), u64(t.n), u64(t.seq), decodeHash(t.head), f64(t.state), f64(t.start), f64(t.rate));
}

function nodeHash(l, r) {
  return hashOf(LABEL.node, l, r);
}

/** tickRoot recomputes the Merkle root from leaf and path (heartbeat.Tick.Root), or null. */
export function tickRoot(t) {
  if (t.count === 0 || t.index >= t.count) return null;
  let h = tickLeaf(t);
  let idx = t.index;
  let n = t.count;
  let used = 0;
  const path = t.path.map(decodeHash);
  while (n > 1) {
    if (idx % 2 === 1) {
      if (used >= path.length) return null;
      h = nodeHash(path[used++], h);
    } else if (idx + 1 < n) {
      if (used >= path.length) return null;
      h = nodeHash(h, path[used++]);
    }
    idx = Math.floor(idx / 2);
    n = Math.floor((n + 1) / 2);
  }
  return used === path.length ? h : null;
}

/** roundBytes is what a sequencer signs for one round of ticks. */
export function roundBytes(signer, count, root) {
  return message(LABEL.round, signer, u64(count), root);
}

/**
 * parseTick decodes a tick's JSON text (heartbeat.ParseTick) and verifies
 * its Merkle path and round signature (heartbeat.VerifyTick). Whether the
 * signer may tick is the caller's decision. It returns {tick} or {error}.
 */
export function parseTick(text) {
  const o = parseObject(text, 65536);
  if (!o) return { error: 'tick is not a JSON object' };
  const r = new Reader(o);
  const t = {
    instance: r.str('instance', true),
    epoch: r.uint('epoch', true),
    n: r.uint('n', true),
    seq: r.uint('seq', true),
    head: r.str('head', true),
    state: r.num('state', true),
    start: r.num('start', true),
    rate: r.num('rate', true),
    signer: r.str('signer', true),
    index: r.uint('index', true),
    count: r.uint('count', true),
    path: r.get('path', true),
    sig: r.str('sig', true),
  };
  const err = r.done();
  if (err) return { error: `tick: ${err}` };
  if (!keyText(t.instance) || !keyText(t.signer)) return { error: 'tick: key text' };
  if (t.epoch === 0 || t.n === 0 || !goodState(t.state) || !goodState(t.start) || t.start > t.state) {
    return { error: 'tick: epoch/n/state out of range' };
  }
  if (!(t.rate >= 1 / 64 && t.rate <= 64)) return { error: 'tick: rate out of range' };
  if (t.count === 0 || t.count > 0xffffffff || t.index >= t.count) return { error: 'tick: proof index/count' };
  if (!Array.isArray(t.path) || t.path.length > MAX_PATH || !t.path.every((h) => decodeHash(h))) {
    return { error: 'tick: path' };
  }
  if (!decodeHash(t.head)) return { error: 'tick: head encoding' };
  const sig = decodeSig(t.sig);
  if (!sig) return { error: 'tick: sig encoding' };
  const root = tickRoot(t);
  if (!root) return { error: `tick ${t.epoch}/${t.n}: proof path does not fit` };
  if (!verify(t.signer, roundBytes(t.signer, t.count, root), sig)) {
    return { error: `tick ${t.epoch}/${t.n}: round signature does not verify` };
  }
  t.timeMs = timeMs(t.state, t.start, t.rate);
  return { tick: t };
}

// --- signed field wrappers (package auth) -------------------------------------

/**
 * putBytes is what a writer signs for one field of an instance namespace
 * (auth.PutMessage): keys.Message("put", soul, field, JSON.stringify(value),
 * state as JavaScript prints it).
 */
export function putBytes(soul, field, value, state) {
  return message(LABEL.put, soul, field, JSON.stringify(value), String(state));
}

/**
 * wrap signs value for soul/field at state and returns the wrapper string
 * {":": value, "~": sig, "*": writer, "+": chain} to put in the field.
 * The writer is omitted when key is the instance owner; chain (certificate
 * JSON objects, owner-issued first) when empty.
 */
export function wrap(key, instance, soul, field, value, state, chain = []) {
  const w = { ':': value, '~': b64url(key.sign(putBytes(soul, field, value, state))) };
  if (key.pub !== instance) w['*'] = key.pub;
  if (chain.length) w['+'] = chain;
  return JSON.stringify(w);
}

/**
 * unwrap reads a wrapper string and returns {value, sig, writer, chain}, or
 * null when v is not a wrapper. It checks shapes only; see verifyWrapper.
 */
export function unwrap(v) {
  if (typeof v !== 'string' || v[0] !== '{') return null;
  const o = parseObject(v);
  if (!o || !('~' in o) || !(':' in o)) return null;
  for (const k of Object.keys(o)) if (![':', '~', '*', '+'].includes(k)) return null;
  const sig = decodeSig(o['~']);
  if (!sig) return null;
  if ('*' in o && !keyText(o['*'])) return null;
  if ('+' in o && (!Array.isArray(o['+']) || o['+'].length === 0)) return null;
  return { value: o[':'], sig, writer: o['*'] || null, chain: o['+'] || [] };
}

/**
 * verifyWrapper checks the put signature of a wrapper read from
 * soul/field at HAM state; it does not judge certificates (the relay did,
 * and ticks and entries carry their own proofs).
 */
export function verifyWrapper(w, instance, soul, field, state) {
  return verify(w.writer || instance, putBytes(soul, field, w.value, state), w.sig);
}

// --- outbound ---------------------------------------------------------------

/** The inbox fields of a message, in heartbeat.InboxPuts order. */
export const INBOX_FIELDS = Object.freeze(['instance', 'author', 'ts', 'nonce', 'payload', 'sig', 'id']);

/**
 * outbound builds the graph diff that submits an external message exactly
 * as heartbeat.InboxPuts does: soul lum/<I>/in/<message id> with the plain
 * fields instance, author, ts, nonce, payload, sig and id, all at one HAM
 * state. The node authenticates itself (the id hashes the signed bytes); the
 * relay judges it whole (auth.Config.Inbox = heartbeat.InboxMessage) and
 * requires the author to hold the message role through a certificate
 * published at lum/<I>/certs.
 */
export function outbound(instance, key, payload, { ts, nonce, state }) {
  const m = signMessage(instance, key, ts, nonce, payload);
  const soul = souls(instance).inbound(m.id);
  const values = { ...m, nonce };
  const node = { _: { '#': soul, '>': {} } };
  for (const f of INBOX_FIELDS) {
    node._['>'][f] = state;
    node[f] = values[f];
  }
  return { id: m.id, soul, graph: { [soul]: node } };
}

/** entriesOf returns the [seq, value] log fields of a block node, ascending. */
export function entriesOf(node) {
  const out = [];
  if (!node) return out;
  for (const k of Object.keys(node)) {
    if (k === '_' || !/^\d+$/.test(k)) continue;
    out.push([Number(k), node[k]]);
  }
  return out.sort((a, b) => a[0] - b[0]);
}

/** fieldText returns the inner value of a field: unwrapped when wrapped. */
export function fieldText(v) {
  const w = unwrap(v);
  return w ? w.value : v;
}

/** validInstance reports whether instance has the syntax of an instance id. */
export function validInstance(instance) {
  return keyText(instance);
}

export { concat };
