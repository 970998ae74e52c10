// gunwire.js: a small client of Gun's wire protocol (DAM) over one WebSocket.
//
// It speaks exactly what a Luminary page needs, with bytes we control:
//
//   - handshake: answers the relay's {"dam":"?"} with its own pid;
//   - get(soul[, field]) → Promise of the merged node (or undefined when the
//     relay has nothing), from the replies whose "@" is the get's "#";
//   - on(soul, cb) → unsubscribe; cb(diff, node) for every put that brings
//     fields newer than what we hold (pushed puts and get replies alike);
//   - put(graph) → Promise resolved on {"ok"} and rejected on {"err"};
//   - frames are one message or an array of them; the keep-alive "[]" is
//     ignored; messages are deduplicated by "#" (bounded and aged);
//   - on a lost connection it reconnects with exponential backoff and sends
//     a get for every live subscription again.
//
// Nodes are Gun nodes: {_: {'#': soul, '>': {field: state}}, field: value}.
// Incoming fields are merged with Gun's HAM rule for values we already hold:
// a higher state wins; at equal states the larger JSON text wins.

const ID_ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXZabcdefghijklmnopqrstuvwxyz';

/** newID returns a random 9-character id of gun's shape (no "Y"). */
export function newID() {
  const r = new Uint8Array(9);
  globalThis.crypto.getRandomValues(r);
  let s = '';
  for (const b of r) s += ID_ALPHABET[b % ID_ALPHABET.length];
  return s;
}

/** Defaults of the options of GunWire. */
export const DEFAULTS = Object.freeze({
  backoffMinMs: 250,
  backoffMaxMs: 5000,
  requestTimeoutMs: 10000,
  dedupMax: 10000,
  dedupAgeMs: 30000,
  maxFrameBytes: 8 << 20,
});

/** WireError is a rejection with a machine-readable reason (the relay's "err"). */
export class WireError extends Error {
  constructor(reason) {
    super(reason);
    this.name = 'WireError';
    this.reason = reason;
  }
}

/** validValue reports whether v is a value Gun allows in a field. */
function validValue(v) {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return true;
  if (typeof v === 'number') return Number.isFinite(v);
  if (typeof v === 'object' && !Array.isArray(v)) {
    const k = Object.keys(v);
    return k.length === 1 && k[0] === '#' && typeof v['#'] === 'string' && v['#'] !== '';
  }
  return false;
}

/** wins reports whether (state, value) beats the current (cs, cv) under HAM. */
function wins(state, value, cs, cv) {
  if (cs === undefined) return true;
  if (state !== cs) return state > cs;
  const a = JSON.stringify(value);
  const b = JSON.stringify(cv);
  return a > b;
}

/**
 * GunWire is one connection to a Gun relay at url ("ws://host/gun" or
 * "http(s)://host/gun"). Call connect(), then get/on/put; close() ends it.
 */
export class GunWire {
  /**
   * @param {string} url
   * @param {object} [opts] DEFAULTS plus WebSocket (constructor; default the
   *   global one), onStatus(status) ('connecting' | 'open' | 'closed'), and
   *   onError(err) for frames that do not parse.
   */
  constructor(url, opts = {}) {
    this.url = url.replace(/^http/, 'ws');
    this.opts = { ...DEFAULTS, ...opts };
    this.WebSocket = opts.WebSocket || globalThis.WebSocket;
    this.pid = newID();
    this.graph = new Map(); // soul → node (merged)
    this.subs = new Map(); // soul → {cbs: Set, field}
    this.pending = new Map(); // message id → request
    this.seen = new Map(); // message id → time first seen (insertion-ordered)
    this.ws = null;
    this.closed = true;
    this.status = 'closed';
    this.attempt = 0;
    this.timer = null;
    this.stats = { framesIn: 0, framesOut: 0, dropped: 0, reconnects: 0 };
  }

  /** connect opens the socket (and keeps reopening it until close()). */
  connect() {
    if (!this.closed) return this;
    this.closed = false;
    this.#open();
    return this;
  }

  /** close ends the connection and fails every request still waiting. */
  close() {
    this.closed = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close();
    this.ws = null;
    for (const [id, req] of this.pending) {
      clearTimeout(req.timer);
      req.reject(new WireError('closed'));
      this.pending.delete(id);
    }
    this.#setStatus('closed');
  }

  #setStatus(s) {
    if (this.status === s) return;
    this.status = s;
    if (this.opts.onStatus) this.opts.onStatus(s);
  }

  #open() {
    this.#setStatus('connecting');
    let ws;
    try {
      ws = new this.WebSocket(this.url);
    } catch (err) {
      this.#retry();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      this.attempt = 0;
      this.#setStatus('open');
      // Subscriptions first, so that a reconnect sees what it missed.
      for (const [soul, sub] of this.subs) this.#sendGet(soul, sub.field, newID());
      // Gets still waiting are asked again under a new id (the relay may
      // remember the old one as a duplicate); puts only if never sent.
      for (const [id, req] of [...this.pending]) {
        if (!req.frame) continue;
        if (req.frame.get) {
          req.id = newID();
          this.pending.delete(id);
          this.pending.set(req.id, req);
          req.frame = { ...req.frame, '#': req.id };
          this.#remember(req.id, Date.now());
        }
        if (this.#send(req.frame) && req.frame.put) req.frame = null;
      }
    };
    ws.onmessage = (ev) => {
      if (this.ws !== ws) return;
      this.#frame(typeof ev.data === 'string' ? ev.data : String(ev.data));
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.#retry();
    };
    ws.onerror = () => {
      // onclose follows.
    };
  }

  #retry() {
    if (this.closed) return;
    this.#setStatus('connecting');
    const { backoffMinMs, backoffMaxMs } = this.opts;
    const base = Math.min(backoffMaxMs, backoffMinMs * 2 ** Math.min(this.attempt, 16));
    const jitter = Math.floor(Math.random() * (base / 2)); // spreads reconnect storms; not used for state
    this.attempt++;
    this.stats.reconnects++;
    this.timer = setTimeout(() => this.#open(), base / 2 + jitter);
  }

  #send(obj) {
    const text = typeof obj === 'string' ? obj : JSON.stringify(obj);
    if (this.ws && this.ws.readyState === 1) {
      this.ws.send(text);
      this.stats.framesOut++;
      return true;
    }
    return false;
  }

  /** #remember records a message id; it returns false if it was seen already. */
  #remember(id, now) {
    if (this.seen.has(id)) return false;
    this.seen.set(id, now);
    const { dedupMax, dedupAgeMs } = this.opts;
    for (const [k, t] of this.seen) {
      if (this.seen.size <= dedupMax && now - t < dedupAgeMs) break;
      this.seen.delete(k);
    }
    return true;
  }

  #frame(text) {
    this.stats.framesIn++;
    if (text.length > this.opts.maxFrameBytes) {
      this.stats.dropped++;
      return;
    }
    let v;
    try {
      v = JSON.parse(text);
    } catch (err) {
      this.stats.dropped++;
      if (this.opts.onError) this.opts.onError(new Error(`gunwire: frame does not parse: ${err.message}`));
      return;
    }
    const msgs = Array.isArray(v) ? v : [v];
    for (const m of msgs) {
      if (m === null || typeof m !== 'object' || Array.isArray(m)) {
        this.stats.dropped++;
        continue;
      }
      this.#message(m);
    }
  }

  #message(m) {
    const id = typeof m['#'] === 'string' ? m['#'] : null;
    if (id !== null && !this.#remember(id, Date.now())) return;
    if (m.dam !== undefined) {
      // Answer a greeting that is not itself an answer; nothing else.
      if (m.dam === '?' && m['@'] === undefined && id !== null) {
        this.#send({ dam: '?', pid: this.pid, '@': id, '#': newID() });
      }
      return;
    }
    if (m.put !== undefined && m.put !== null && typeof m.put === 'object') this.#merge(m.put);
    const at = typeof m['@'] === 'string' ? m['@'] : null;
    if (at === null) return;
    const req = this.pending.get(at);
    if (!req) return;
    req.reply(m);
  }

  /**
   * #merge applies a graph diff to the cache and notifies subscribers with
   * the fields that changed.
   */
  #merge(put) {
    for (const soul of Object.keys(put)) {
      const node = put[soul];
      if (node === null || typeof node !== 'object') continue;
      const meta = node._;
      if (!meta || typeof meta !== 'object' || meta['#'] !== soul || !meta['>'] || typeof meta['>'] !== 'object') {
        continue;
      }
      let cur = this.graph.get(soul);
      if (!cur) {
        cur = { _: { '#': soul, '>': {} } };
        this.graph.set(soul, cur);
      }
      const diff = { _: { '#': soul, '>': {} } };
      let changed = false;
      for (const field of Object.keys(node)) {
        if (field === '_') continue;
        const state = meta['>'][field];
        const value = node[field];
        if (typeof state !== 'number' || !Number.isFinite(state) || !validValue(value)) continue;
        if (!wins(state, value, cur._['>'][field], cur[field])) continue;
        cur._['>'][field] = state;
        cur[field] = value;
        diff._['>'][field] = state;
        diff[field] = value;
        changed = true;
      }
      if (!changed) continue;
      const sub = this.subs.get(soul);
      if (!sub) continue;
      for (const cb of [...sub.cbs]) {
        try {
          cb(diff, cur);
        } catch (err) {
          if (this.opts.onError) this.opts.onError(err);
        }
      }
    }
  }

  #sendGet(soul, field, id) {
    const get = field === undefined ? { '#': soul } : { '#': soul, '.': field };
    const frame = { '#': id, get };
    this.#remember(id, Date.now());
    this.#send(frame); // if not open, sent on open (subscriptions and pending gets)
    return frame;
  }

  /**
   * get asks for a node (or one field of it) and resolves with the merged
   * node once a reply without a "%" continuation arrives, or undefined when
   * the relay has nothing and we hold nothing either.
   */
  get(soul, field, { timeoutMs = this.opts.requestTimeoutMs } = {}) {
    return new Promise((resolve, reject) => {
      const req = {
        id: newID(), // changes when the get is asked again after a reconnect
        frame: null,
        timer: setTimeout(() => {
          this.pending.delete(req.id);
          reject(new WireError(`timeout: get ${soul}`));
        }, timeoutMs),
        reply: (m) => {
          if (typeof m['%'] === 'string') return; // more chunks follow
          clearTimeout(req.timer);
          this.pending.delete(req.id);
          resolve(this.graph.get(soul));
        },
        reject,
      };
      this.pending.set(req.id, req);
      req.frame = this.#sendGet(soul, field, req.id);
    });
  }

  /**
   * on subscribes to a node: cb(diff, node) runs for every newer field. It
   * sends a get (which also subscribes us at the relay) now and after every
   * reconnect. It returns a function that ends the subscription locally.
   */
  on(soul, cb, field) {
    let sub = this.subs.get(soul);
    if (!sub) {
      sub = { cbs: new Set(), field };
      this.subs.set(soul, sub);
      this.#sendGet(soul, field, newID());
    }
    sub.cbs.add(cb);
    const have = this.graph.get(soul);
    if (have) queueMicrotask(() => sub.cbs.has(cb) && cb(have, have));
    return () => {
      sub.cbs.delete(cb);
      if (sub.cbs.size === 0 && this.subs.get(soul) === sub) this.subs.delete(soul);
    };
  }

  /**
   * put sends a graph diff ({soul: node}) and resolves with the ack message
   * on "ok", or rejects with a WireError carrying the relay's "err".
   */
  put(graph, { timeoutMs = this.opts.requestTimeoutMs } = {}) {
    return new Promise((resolve, reject) => {
      const id = newID();
      const frame = { '#': id, put: graph };
      const req = {
        id,
        frame,
        timer: setTimeout(() => {
          this.pending.delete(id);
          reject(new WireError(`timeout: put`));
        }, timeoutMs),
        reply: (m) => {
          if (m.err !== undefined && m.err !== null) {
            clearTimeout(req.timer);
            this.pending.delete(id);
            reject(new WireError(typeof m.err === 'string' ? m.err : JSON.stringify(m.err)));
          } else if (m.ok !== undefined) {
            clearTimeout(req.timer);
            this.pending.delete(id);
            resolve(m);
          }
        },
        reject,
      };
      this.pending.set(id, req);
      this.#remember(id, Date.now());
      // Once sent, a put is not re-sent on reconnect: it may have landed.
      if (this.#send(frame)) req.frame = null;
    });
  }
}

/** stateOf returns the HAM state of field in a Gun node, or undefined. */
export function stateOf(node, field) {
  return node && node._ && node._['>'] ? node._['>'][field] : undefined;
}
