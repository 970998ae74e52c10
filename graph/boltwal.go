package graph

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// This file holds the write-ahead log mode of BoltStore (BoltOptions.WAL):
// the writer's group commit to the log, the checkpointer that moves the
// overlay into bbolt, and recovery.

// commitWAL is commit in log mode: HAM against the batch's own winners,
// then the overlay, then the file; one log record with every accepted
// durable field, fdatasync'd unless every merge of the batch is Derived;
// then the fields join the overlay.
func (s *BoltStore) commitWAL(live []*mergeReq) {
	info := CommitInfo{Merges: len(live)}
	start := time.Now()
	pend := make(map[string]map[string]Field)
	// The frozen map is taken before the read transaction opens: if the
	// checkpoint of that map commits in between, the transaction sees it.
	frozen := s.ov.frozenMap()
	var tx *bolt.Tx
	stored := func(soul, name string, state float64) (Field, bool, error) {
		if f, ok := pend[soul][name]; ok {
			return f, true, nil
		}
		if f, ok := lookupOverlay(s.ov.cur, frozen, soul, name); ok {
			return f, true, nil
		}
		if tx == nil {
			var err error
			if tx, err = s.db.Begin(false); err != nil {
				return Field{}, false, err
			}
		}
		s.key = appendKey(s.key[:0], soul, name)
		v := tx.Bucket(graphBucket).Get(s.key)
		if v == nil {
			return Field{}, false, nil
		}
		f, err := decodeField(v, state)
		return f, err == nil, err
	}
	volatile := make([]Graph, len(live))
	var err error
	var names []string
judge:
	for i, r := range live {
		var durable Graph
		durable, volatile[i] = s.split(r.diff)
		for soul, node := range durable {
			names = names[:0]
			for name, f := range node.Fields {
				info.Fields++
				cur, ok, gerr := stored(soul, name, f.State)
				if gerr != nil {
					err = gerr
					break judge
				}
				if ok && HAM(math.Inf(1), f.State, cur.State, f.Value, cur.Value, true) != Accept {
					continue
				}
				p := pend[soul]
				if p == nil {
					p = make(map[string]Field)
					pend[soul] = p
				}
				p[name] = f
				names = append(names, name)
			}
			if len(names) == 0 {
				continue
			}
			info.Accepted += len(names)
			part := node
			if len(names) < len(node.Fields) {
				part = &Node{Soul: soul, Fields: make(map[string]Field, len(names))}
				for _, name := range names {
					part.Fields[name] = node.Fields[name]
				}
			}
			if r.accepted == nil {
				r.accepted = make(Graph, len(durable))
			}
			r.accepted[soul] = part
		}
	}
	if tx != nil {
		_ = tx.Rollback() // before the fsync: a long read transaction would delay a checkpoint's remap
	}
	logged := false
	if err == nil && len(pend) > 0 {
		sync := false
		for _, r := range live {
			sync = sync || !r.derived
		}
		if err = s.wal.append(pend, sync); err == nil {
			s.ov.add(pend)
			s.records++
			logged = true
		}
	}
	if err == nil {
		err = s.mergeVolatile(live, volatile, &info)
	}
	info.Duration = time.Since(start)
	s.finishCommit(live, info, err, "wal commit", logged)
}

// walBatchBytes bounds (roughly) the log record of one group commit, far
// below walMaxRecord: the writer stops taking merges into a batch once
// their fields reach it.
const walBatchBytes = 64 << 20

// walSize estimates the log bytes of r's fields (0 without the log).
func (s *BoltStore) walSize(r *mergeReq) int {
	if s.wal == nil {
		return 0
	}
	n := 0
	for soul, node := range r.diff {
		for name, f := range node.Fields {
			n += len(soul) + len(name) + f.Value.size() + 16
		}
	}
	return n
}

// setFailed makes err the sticky failure of the store (unless one is set
// already) and returns the failure.
func (s *BoltStore) setFailed(what string, err error) error {
	failure := fmt.Errorf("%w: %s: %w", ErrStoreFailed, what, err)
	if !s.failed.CompareAndSwap(nil, &failure) {
		return *s.failed.Load()
	}
	s.log.Error("graph: bolt store failed; refusing all further writes", "op", what, "err", err, "path", s.db.Path())
	return failure
}

// maybeCheckpoint starts a checkpoint when one is due (tick: the interval
// passed; or CheckpointRecords records; or half of MaxOverlayBytes). When
// the overlay is full and a checkpoint is still running, it waits for it
// (backpressure on the writer, hence on the queue).
func (s *BoltStore) maybeCheckpoint(tick bool) {
	if s.failed.Load() != nil {
		return
	}
	cur, _ := s.ov.bytes()
	full := cur >= s.opt.MaxOverlayBytes/2
	if !tick && !full && s.records < s.opt.CheckpointRecords {
		return
	}
	if s.inflight {
		if !full {
			return // the next trigger will do
		}
		s.checkpointed(<-s.ckptDone)
		s.stalls.Add(1)
		if s.failed.Load() != nil {
			return
		}
	}
	s.startCheckpoint()
}

// startCheckpoint freezes the overlay and hands it to the checkpointer,
// which deletes the segments before the current one once the file holds
// the frozen fields (the current segment goes at a later checkpoint, after
// the writer has moved on from it; replaying what it holds is harmless).
// No checkpoint may be in flight.
func (s *BoltStore) startCheckpoint() {
	if cur, _ := s.ov.bytes(); cur == 0 {
		return
	}
	frozen := s.ov.freeze()
	s.records = 0
	s.inflight = true
	s.ckptJobs <- ckptJob{frozen: frozen, seq: s.wal.seq - 1}
}

// checkpointed records the end of the checkpoint in flight.
func (s *BoltStore) checkpointed(error) { s.inflight = false }

// checkpointSync runs a checkpoint of everything accepted so far and waits
// for it (writer goroutine; for tests through Checkpoint).
func (s *BoltStore) checkpointSync() error {
	if s.inflight {
		s.checkpointed(<-s.ckptDone)
	}
	if f := s.failed.Load(); f != nil {
		return *f
	}
	s.startCheckpoint()
	if s.inflight {
		s.checkpointed(<-s.ckptDone)
	}
	if f := s.failed.Load(); f != nil {
		return *f
	}
	return nil
}

// Checkpoint writes every field accepted so far into the bbolt file (one
// synced transaction) and deletes the log segments before the current
// one. Without BoltOptions.WAL it does nothing.
func (s *BoltStore) Checkpoint(ctx context.Context) error {
	if s.wal == nil {
		return nil
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	reply := make(chan error, 1)
	select {
	case s.force <- reply:
	case <-ctx.Done():
		s.mu.RUnlock()
		return ctx.Err()
	}
	s.mu.RUnlock()
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// checkpointer is the goroutine that writes frozen overlays to bbolt.
func (s *BoltStore) checkpointer() {
	defer close(s.ckptExited)
	for job := range s.ckptJobs {
		s.ckptDone <- s.runCheckpoint(job)
	}
}

func (s *BoltStore) runCheckpoint(job ckptJob) error {
	if s.ckptHook != nil {
		s.ckptHook()
	}
	if s.crashed.Load() {
		return nil // simulated crash (tests): the log keeps everything
	}
	start := time.Now()
	if err := s.writeFrozen(job.frozen); err != nil {
		return s.setFailed("checkpoint", err)
	}
	s.ov.drop()
	s.checkpoints.Add(1)
	s.lastCheckpoint.Store(int64(time.Since(start)))
	if err := removeSegmentsThrough(s.wal.dir, job.seq); err != nil {
		// The fields are in the file; a leftover segment is replayed
		// harmlessly on open and removed by the next checkpoint.
		s.log.Warn("graph: removing write-ahead log segments", "err", err)
	}
	return nil
}

// writeFrozen writes the fields of a frozen overlay to bbolt in one
// synced transaction, in key order. Every field in the overlay won HAM
// against what the file holds, so they are written as they are.
func (s *BoltStore) writeFrozen(frozen map[string]map[string]Field) error {
	type kv struct{ k, v []byte }
	n, size := 0, 0
	for soul, fields := range frozen {
		n += len(fields)
		for name, f := range fields {
			size += 2*len(soul) + 2 + len(name) + 17 + f.Value.size()
		}
	}
	kvs := make([]kv, 0, n)
	arena := make([]byte, 0, size)
	for soul, fields := range frozen {
		for name, f := range fields {
			// Should the estimate fall short, append reallocates; slices
			// taken earlier keep their old backing array, still valid.
			at := len(arena)
			arena = appendKey(arena, soul, name)
			k := arena[at:len(arena):len(arena)]
			at = len(arena)
			arena = appendField(arena, f)
			kvs = append(kvs, kv{k, arena[at:len(arena):len(arena)]})
		}
	}
	slices.SortFunc(kvs, func(a, b kv) int { return bytes.Compare(a.k, b.k) })
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(graphBucket)
		for _, e := range kvs {
			if err := b.Put(e.k, e.v); err != nil {
				return err
			}
		}
		return nil
	})
}

// finishWAL runs when the writer stops: it waits for the checkpoint in
// flight, checkpoints the rest (unless the store failed) and removes the
// log, so that a clean close leaves only the bbolt file.
func (s *BoltStore) finishWAL() {
	if s.inflight {
		s.checkpointed(<-s.ckptDone)
	}
	clean := !s.crashed.Load() && s.failed.Load() == nil
	if clean {
		s.startCheckpoint()
		if s.inflight {
			s.checkpointed(<-s.ckptDone)
		}
		clean = s.failed.Load() == nil
	}
	close(s.ckptJobs)
	<-s.ckptExited
	_ = s.wal.close()
	if clean {
		if err := removeSegmentsThrough(s.wal.dir, s.wal.seq); err != nil {
			s.log.Warn("graph: removing write-ahead log segments", "err", err)
		}
	}
}

// recoverWAL replays the log left in <path>-wal (by a crash, or by a run
// with BoltOptions.WAL) into the file with HAM, in one synced transaction,
// then deletes it. It returns the highest segment number seen (0 if none).
func (s *BoltStore) recoverWAL() (last uint64, err error) {
	dir := walDir(s.db.Path())
	seqs, err := listSegments(dir)
	if err != nil {
		return 0, err
	}
	if err := os.Remove(filepath.Join(dir, walSpare)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, err
	}
	if len(seqs) == 0 {
		return 0, nil
	}
	var recs []walRecord
	for i, seq := range seqs {
		name := filepath.Join(dir, segmentName(seq))
		data, err := os.ReadFile(name)
		if err != nil {
			return 0, err
		}
		r, _, err := parseWAL(data, i == len(seqs)-1)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}
		recs = append(recs, r...)
	}
	if len(recs) > 0 {
		err = s.db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(graphBucket)
			s.arena = s.arena[:0]
			for _, rec := range recs {
				g := Graph{}
				for _, e := range rec {
					g.Set(e.soul, e.name, e.field)
				}
				if _, _, _, err := s.apply(b, g); err != nil {
					return err
				}
			}
			return nil
		})
		s.arena = nil
		if err != nil {
			return 0, fmt.Errorf("wal replay: %w", err)
		}
	}
	last = seqs[len(seqs)-1]
	if err := removeSegmentsThrough(dir, last); err != nil {
		return 0, err
	}
	return last, nil
}
