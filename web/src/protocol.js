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
  certs: `lum/${instance}/certs`,
  revoked: `lum/${instance}/revoked`,
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

// --- certificates (auth/cert.go, auth/instance.go) -------------------------

/** The roles a certificate can delegate (auth.Role). */
export const ROLES = Object.freeze(['tick', 'message', 'snapshot', 'admin']);
/** ANY_SUBJECT grants a certificate's roles to every key (auth.AnySubject). */
export const ANY_SUBJECT = '*';
/** MAX_CHAIN is the longest certificate chain accepted (auth.DefaultMaxChainDepth). */
export const MAX_CHAIN = 3;
const MAX_CERT_TEXT = 4096;
const MAX_CERT_MS = 2 ** 53;

/**
 * certBytes returns the bytes a certificate's issuer signs
 * (auth.Cert.SignedBytes): keys.Message("cert", instance, subject, roles
 * joined by ",", notBefore ms, expiry ms, serial, issuer).
 */
export function certBytes(c) {
  return message(LABEL.cert, c.instance, c.subject, c.roles.join(','), String(c.notBefore), String(c.expiry), c.serial, c.issuer);
}

/**
 * parseCert reads a certificate (its JSON text or the parsed object, as
 * auth.Cert.MarshalJSON writes it) and returns {cert} or {error}. It
 * checks the shape as auth does (roles known and not repeated, no admin
 * role for "*", serial, times); the signature and the chain are judged by
 * CertBook.authorize.
 */
export function parseCert(v) {
  const o = typeof v === 'string' ? parseObject(v, MAX_CERT_TEXT) : v;
  if (!o || typeof o !== 'object' || Array.isArray(o)) return { error: 'cert: not an object' };
  const r = new Reader(o);
  const c = {
    instance: r.str('instance', true),
    subject: r.str('subject', true),
    roles: r.get('roles', true),
    notBefore: r.uint('notBefore', true),
    expiry: r.uint('expiry', true),
    serial: r.str('serial', true),
    issuer: r.str('issuer', true),
  };
  const sigText = r.str('sig', true);
  const err = r.done();
  if (err) return { error: `cert: ${err}` };
  if (!keyText(c.instance) || !keyText(c.issuer) || (c.subject !== ANY_SUBJECT && !keyText(c.subject))) {
    return { error: 'cert: key text' };
  }
  if (!Array.isArray(c.roles) || c.roles.length === 0 || c.roles.length > ROLES.length) return { error: 'cert: roles' };
  for (const [i, role] of c.roles.entries()) {
    if (!ROLES.includes(role) || c.roles.indexOf(role) !== i) return { error: 'cert: roles' };
  }
  if (c.subject === ANY_SUBJECT && c.roles.includes('admin')) return { error: 'cert: admin role for "*"' };
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(c.serial)) return { error: 'cert: serial' };
  if (c.expiry <= 0 || c.notBefore > MAX_CERT_MS || c.expiry > MAX_CERT_MS || c.expiry <= c.notBefore) {
    return { error: 'cert: times' };
  }
  c.sig = decodeSig(sigText);
  if (!c.sig) return { error: 'cert: signature encoding' };
  return { cert: c };
}

/**
 * CertBook knows an instance's published certificates (the values of
 * lum/<I>/certs) and revocations (the fields of lum/<I>/revoked) and
 * decides who holds a role at a time, by package auth's rules: the owner
 * holds every role; anyone else needs a chain of at most MAX_CHAIN
 * certificates, the first issued by the owner, each next one by the
 * subject of the one before (which must hold the admin role), every
 * signature valid (strict low-S), every certificate valid at that time
 * (notBefore <= at <= expiry) and not revoked, the last naming the key (or
 * "*") with the role.
 *
 * Certificates authenticate themselves, so the page need not trust the
 * relay that delivers them: a relay can withhold or revoke (deny), never
 * grant. Revocation fields are not verified for the same reason: a
 * forged one only denies.
 */
export class CertBook {
  constructor(instance) {
    this.instance = instance;
    this.bySerial = new Map(); // serial → cert
    this.revoked = new Set();
    this.verified = new Map(); // serial + sig → signature valid
  }

  /**
   * addField registers the certificate stored at a field of lum/<I>/certs
   * (a signed wrapper whose value is the certificate's JSON text, or the
   * bare text). It reports whether a certificate was registered.
   */
  addField(value) {
    const w = unwrap(value);
    const { cert } = parseCert(w ? w.value : value);
    if (!cert || cert.instance !== this.instance) return false;
    this.bySerial.set(cert.serial, cert);
    return true;
  }

  /** revoke marks a serial revoked (a non-null field of lum/<I>/revoked). */
  revoke(serial) {
    this.revoked.add(serial);
  }

  /** authorize reports whether key holds role at atMs (HAM milliseconds). */
  authorize(key, role, atMs) {
    if (key === this.instance) return true;
    for (const chain of this.#chains(key)) {
      if (this.#valid(chain, key, role, atMs)) return true;
    }
    return false;
  }

  // #chains lists candidate chains (owner-issued first) ending at key, as
  // auth's registry does: at most MAX_CHAIN long, at most 16 of them.
  #chains(key) {
    const bySubject = new Map();
    for (const c of this.bySerial.values()) {
      if (!bySubject.has(c.subject)) bySubject.set(c.subject, []);
      bySubject.get(c.subject).push(c);
    }
    const out = [];
    const walk = (subject, tail) => {
      if (tail.length >= MAX_CHAIN || out.length >= 16) return;
      let cands = bySubject.get(subject) || [];
      if (tail.length === 0) cands = cands.concat(bySubject.get(ANY_SUBJECT) || []);
      for (const c of cands) {
        const chain = [c, ...tail];
        if (c.issuer === this.instance) out.push(chain);
        else if (c.issuer !== subject) walk(c.issuer, chain);
      }
    };
    walk(key, []);
    return out;
  }

  #valid(chain, key, role, atMs) {
    for (const [i, c] of chain.entries()) {
      if (c.instance !== this.instance) return false;
      if (i === 0 && c.issuer !== this.instance) return false;
      if (i > 0 && c.issuer !== chain[i - 1].subject) return false;
      if (i < chain.length - 1 && !c.roles.includes('admin')) return false;
      if (!this.#signed(c)) return false;
      if (c.notBefore && atMs < c.notBefore) return false;
      if (atMs > c.expiry) return false;
      if (this.revoked.has(c.serial)) return false;
    }
    const leaf = chain[chain.length - 1];
    return (leaf.subject === key || leaf.subject === ANY_SUBJECT) && leaf.roles.includes(role);
  }

  #signed(c) {
    // Keyed by everything signed and the signature (not by serial: a
    // certificate altered under a verified one's serial must not pass).
    const msg = certBytes(c);
    const k = b64url(sha256(concat(msg, c.sig)));
    let ok = this.verified.get(k);
    if (ok === undefined) {
      ok = verify(c.issuer, msg, c.sig);
      if (this.verified.size > 4096) this.verified.clear();
      this.verified.set(k, ok);
    }
    return ok;
  }
}

/** validInstance reports whether instance has the syntax of an instance id. */
export function validInstance(instance) {
  return keyText(instance);
}

export { concat };
