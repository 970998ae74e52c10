// stream.js: follow one instance's Luminary stream and drive a model with it.
//
// The model (the demo World) sees only two calls, in stream order:
//
//   model.apply(entry)      an ordered, stamped message (entry.seq = last+1)
//   model.advance(timeMs)   a tick: virtual time moves forward to timeMs
//
// A tick names the last seq issued before it. The follower applies entries
// only up to a tick's seq and then advances to the tick's time, so after every
// tick the model is the same function of (seq, time) in every tab, whatever
// order the network delivered things in. Entries that are missing are fetched
// from their log block; entries beyond the newest tick wait for the next one.
//
// Every format detail goes through protocol.js.

import * as P from './protocol.js';

/** StreamError is a stream that cannot be followed safely (broken chain, bad data). */
export class StreamError extends Error {
  constructor(msg) {
    super(msg);
    this.name = 'StreamError';
  }
}

/**
 * Follower follows instance over a GunWire-like transport (get/on).
 *
 * Options: onTick({tick, applied}) after each tick is applied; onEntry(entry)
 * for every applied entry; onError(err); isSigner(key, tick) decides
 * whose round signatures count for that tick (default: only the instance
 * owner; the page uses a CertBook of the world's certificates); maxPendingEntries
 * bounds the entries held ahead of ticks; verifyHistory (default false):
 * also verify the author signature of every entry that the first tick
 * already covers. By default those (the history a late joiner replays) are
 * trusted through the hash chain that the verified tick signs, which makes
 * catching up cheap; every later entry's author signature is verified.
 */
export class Follower {
  constructor(wire, instance, model, opts = {}) {
    this.wire = wire;
    this.instance = instance;
    this.model = model;
    this.opts = { maxPendingEntries: 100000, isSigner: (k) => k === instance, ...opts };
    this.souls = P.souls(instance);
    this.base = null; // {start, rate} from the first tick; never changes
    this.applied = model.seq || 0; // last applied seq
    this.head = P.ZERO_HASH_TEXT; // hash of entry `applied`
    this.lastTick = null;
    this.ticks = []; // verified ticks waiting for entries, ascending
    this.entries = new Map(); // seq → Entry, not yet applied
    this.blocks = new Map(); // block → unsubscribe
    this.unsubs = [];
    this.failed = null;
    this.holders = new Map(); // epoch → holder key, from KindEpoch entries
    this.historySeq = null; // seq of the first verified tick: entries up to it are history
    this.stats = { ticks: 0, entries: 0, badTicks: 0 };
  }

  /** start subscribes to the heartbeat; ticks then drive everything. */
  start() {
    this.unsubs.push(this.wire.on(this.souls.hb, (diff) => this.#onHeartbeat(diff)));
    return this;
  }

  /** stop ends all subscriptions. */
  stop() {
    for (const u of this.unsubs) u();
    for (const u of this.blocks.values()) u();
    this.unsubs = [];
    this.blocks.clear();
  }

  #fail(err) {
    if (this.failed) return;
    this.failed = err;
    this.stop();
    if (this.opts.onError) this.opts.onError(err);
  }

  #onHeartbeat(diff) {
    if (this.failed || diff.tick === undefined) return;
    const { tick, error } = P.parseTick(P.fieldText(diff.tick));
    if (error || tick.instance !== this.instance || !this.opts.isSigner(tick.signer, tick)) {
      // A bad tick is dropped (and counted); the next good one will do.
      this.stats.badTicks++;
      return;
    }
    if (!this.base) {
      this.base = { start: tick.start, rate: tick.rate };
      this.historySeq = tick.seq;
    }
    else if (tick.start !== this.base.start || tick.rate !== this.base.rate) {
      this.#fail(new StreamError('stream: the instance time base changed; reload to rejoin'));
      return;
    }
    const newest = this.ticks.length ? this.ticks[this.ticks.length - 1] : this.lastTick;
    if (newest && (tick.state <= newest.state || tick.seq < newest.seq)) return; // old or out of order
    this.ticks.push(tick);
    this.#want(tick.seq);
    this.#drain();
  }

  /** #want makes sure every block from the next needed seq to seq is followed. */
  #want(seq) {
    if (seq <= this.applied) return;
    const first = P.blockOf(this.applied + 1);
    const last = P.blockOf(seq);
    for (let b = first; b <= last; b++) {
      if (this.blocks.has(b)) continue;
      this.blocks.set(
        b,
        this.wire.on(this.souls.block(b), (diff) => this.#onBlock(diff)),
      );
    }
  }

  #onBlock(diff) {
    if (this.failed) return;
    for (const [seq, value] of P.entriesOf(diff)) {
      if (seq <= this.applied || this.entries.has(seq)) continue;
      if (this.entries.size >= this.opts.maxPendingEntries) {
        this.#fail(new StreamError('stream: too many entries ahead of ticks'));
        return;
      }
      const skipAuthor = !this.opts.verifyHistory && this.historySeq !== null && seq <= this.historySeq;
      const { entry, error } = P.parseEntry(P.fieldText(value), { skipAuthor });
      if (error || entry.seq !== seq || entry.instance !== this.instance) {
        this.#fail(new StreamError(`stream: log entry ${seq}: ${error || 'misplaced'}`));
        return;
      }
      this.entries.set(seq, entry);
    }
    this.#drain();
  }

  #drain() {
    while (this.ticks.length && !this.failed) {
      const tick = this.ticks[0];
      for (let s = this.applied + 1; s <= tick.seq; s++) {
        if (!this.entries.has(s)) return; // wait for the block to bring it
      }
      this.ticks.shift();
      try {
        this.#applyTo(tick);
      } catch (err) {
        this.#fail(err instanceof StreamError ? err : new StreamError(`stream: ${err.message}`));
        return;
      }
    }
    // Stop following blocks that are fully applied.
    const keep = P.blockOf(this.applied + 1);
    for (const [b, unsub] of this.blocks) {
      if (b < keep) {
        unsub();
        this.blocks.delete(b);
      }
    }
  }

  #applyTo(tick) {
    let last = this.lastEntryState ?? 0;
    while (this.applied < tick.seq) {
      const e = this.entries.get(this.applied + 1);
      this.entries.delete(e.seq);
      if (e.prev !== this.head) throw new StreamError(`stream: entry ${e.seq} does not chain to entry ${this.applied}`);
      if (e.state <= last) throw new StreamError(`stream: entry ${e.seq} goes back in time`);
      if (e.state > tick.state) throw new StreamError(`stream: entry ${e.seq} is later than its tick`);
      last = e.state;
      let body = null;
      if (e.kind === 'msg') {
        try {
          body = JSON.parse(e.payload);
        } catch {
          body = null; // not JSON: the world ignores it, the same everywhere
        }
      }
      const t = Math.max(0, P.timeMs(e.state, this.base.start, this.base.rate));
      this.model.apply({ seq: e.seq, timeMs: t, from: e.author, kind: e.kind, body });
      if (e.kind === 'epoch') this.holders.set(e.epoch, e.author);
      this.applied = e.seq;
      this.head = e.hash;
      this.lastEntryState = e.state;
      this.stats.entries++;
      if (this.opts.onEntry) this.opts.onEntry(e);
    }
    if (tick.head !== this.head) throw new StreamError(`stream: tick ${tick.epoch}/${tick.n} head does not match entry ${tick.seq}`);
    const holder = this.holders.get(tick.epoch);
    if (holder !== undefined && holder !== tick.signer) {
      throw new StreamError(`stream: tick ${tick.epoch}/${tick.n} is not signed by the holder of epoch ${tick.epoch}`);
    }
    this.model.advance(Math.max(0, tick.timeMs));
    this.lastTick = tick;
    this.stats.ticks++;
    if (this.opts.onTick) this.opts.onTick({ tick, applied: this.applied });
  }
}
