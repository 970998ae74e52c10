package heartbeat

import (
	"context"
	"fmt"
	"slices"

	"github.com/krestianstvo/luminary/internal/jsjson"
)

// Snapshots. A member (a peer following the instance) serialises its
// application state at a snapshot point and submits a signed vote for
// (seq, hash of the data), with the data itself. The snapshot point seq S is
// exact: the state after applying entry S and before applying anything that
// follows it in the total order (the ticks positioned at S come after it).
// Every member computes the same bytes there, so honest members vote the
// same hash.
//
// The sequencer accepts (seq, hash) once K distinct members voted it, where
// K = min(SnapshotQuorum, number of present clients), and at least 1: with a
// single member present its own vote is enough (nobody else can confirm it;
// the snapshot is then only as trustworthy as that member, and the log
// still lets anyone re-verify it by replay). Acceptance also needs the data
// in the blob store under its hash. Accepting appends one KindSnapshot entry
// (Ref = S, RefHash = hash, Payload = the voters), so the choice itself is
// in the signed, hash-chained log, identical for every follower.
//
// A late joiner loads the latest accepted snapshot and every entry after S
// ([LoadJoin]); [NewJoiner] checks the data against the marker before any
// state is trusted.

// SnapshotVote is a member's signed claim that the state at Seq hashes to
// Hash.
type SnapshotVote struct {
	Instance string
	Seq      uint64
	Hash     Hash
	Author   string
	Sig      []byte
}

// SignedBytes returns keys.Message("heartbeat.snapshot", instance, seq,
// hash, author).
func (v *SnapshotVote) SignedBytes() []byte {
	return keysMessage(labelSnapshot, []byte(v.Instance), u64(v.Seq), v.Hash[:], []byte(v.Author))
}

// Sign sets Author to s's key and signs the vote.
func (v *SnapshotVote) Sign(s Signer) error {
	v.Author = s.Public()
	sig, err := s.Sign(v.SignedBytes())
	if err != nil {
		return fmt.Errorf("heartbeat: sign vote: %w", err)
	}
	v.Sig = sig
	return nil
}

// Vote records a member's snapshot vote, storing data (which may be nil if
// another vote carried it) under its hash. done is called once: when the
// vote completes the quorum, with the receipt of the KindSnapshot entry once
// it is durable; otherwise as soon as the vote is recorded (zero receipt,
// nil error), or with the reason it was refused.
func (h *Host) Vote(ctx context.Context, v SnapshotVote, data []byte, done func(Receipt, error)) {
	if done == nil {
		done = func(Receipt, error) {}
	}
	if err := checkKeyText("instance", v.Instance); err != nil {
		done(Receipt{}, err)
		return
	}
	if err := checkKeyText("author", v.Author); err != nil {
		done(Receipt{}, err)
		return
	}
	if v.Seq == 0 || v.Seq > maxSafeInt {
		done(Receipt{}, fmt.Errorf("%w: vote seq", ErrMalformed))
		return
	}
	if len(v.Sig) != signatureSize || !h.cfg.Verifier.Verify(v.Author, v.SignedBytes(), v.Sig) {
		done(Receipt{}, fmt.Errorf("heartbeat: snapshot vote: %w", ErrBadSignature))
		return
	}
	if err := h.cfg.Authorizer.Authorize(ctx, v.Instance, v.Author, RoleSnapshot, h.cfg.Clock.Now()); err != nil {
		done(Receipt{}, fmt.Errorf("heartbeat: snapshot vote by %s: %w: %w", v.Author, ErrNotAuthorised, err))
		return
	}
	if h.cfg.Blobs == nil {
		done(Receipt{}, fmt.Errorf("heartbeat: no snapshot store: %w", ErrNotAuthorised))
		return
	}
	haveData := false
	if data != nil {
		if len(data) > h.cfg.MaxSnapshotBytes {
			done(Receipt{}, fmt.Errorf("heartbeat: snapshot of %d bytes: %w", len(data), ErrTooLarge))
			return
		}
		if SHA256(data) != v.Hash {
			done(Receipt{}, fmt.Errorf("heartbeat: snapshot data does not hash to the vote: %w", ErrSnapshotMismatch))
			return
		}
		if _, err := h.cfg.Blobs.PutBlob(ctx, data); err != nil {
			done(Receipt{}, err)
			return
		}
		haveData = true
	} else if _, err := h.cfg.Blobs.GetBlob(ctx, v.Hash); err == nil {
		haveData = true
	}

	h.mu.Lock()
	in, err := h.acceptingLocked(v.Instance)
	if err == nil {
		switch {
		case v.Seq > in.headSeq:
			err = fmt.Errorf("heartbeat: vote for seq %d beyond head %d: %w", v.Seq, in.headSeq, ErrOrder)
		case v.Seq <= in.snapSeq:
			err = fmt.Errorf("heartbeat: vote for seq %d, accepted %d: %w", v.Seq, in.snapSeq, ErrDuplicate)
		case in.nvotes >= h.cfg.MaxVotes:
			err = fmt.Errorf("heartbeat: %d votes pending: %w", in.nvotes, ErrQueueFull)
		}
	}
	if err != nil {
		h.mu.Unlock()
		done(Receipt{}, err)
		return
	}
	byHash := in.votes[v.Seq]
	if byHash == nil {
		byHash = map[Hash]map[string]bool{}
		in.votes[v.Seq] = byHash
	}
	voters := byHash[v.Hash]
	if voters == nil {
		voters = map[string]bool{}
		byHash[v.Hash] = voters
	}
	if !voters[v.Author] {
		voters[v.Author] = true
		in.nvotes++
	}
	quorum := min(h.cfg.SnapshotQuorum, max(1, in.present))
	if len(voters) < quorum || !haveData || in.markerQueued[v.Seq] {
		h.mu.Unlock()
		done(Receipt{}, nil)
		return
	}
	in.markerQueued[v.Seq] = true
	names := make([]string, 0, len(voters))
	for k := range voters {
		names = append(names, k)
	}
	slices.Sort(names)
	h.mu.Unlock()
	h.enqueue(v.Instance, &pending{kind: KindSnapshot, ref: v.Seq, refHash: v.Hash, voters: names, done: []func(Receipt, error){done}})
}

// pruneVotesLocked drops votes at or below the accepted snapshot. h.mu is
// held.
func (h *Host) pruneVotesLocked(in *hosted) {
	for seq, byHash := range in.votes {
		if seq <= in.snapSeq {
			for _, vs := range byHash {
				in.nvotes -= len(vs)
			}
			delete(in.votes, seq)
			delete(in.markerQueued, seq)
		}
	}
}

func jsonStrings(ss []string) []byte { return jsjson.Append(nil, ss) }

// JoinBundle is what a late joiner needs: the instance metadata, the latest
// accepted snapshot (nil when there is none: replay from seq 1) with its
// data, and the first page of entries after it with their covering ticks.
type JoinBundle struct {
	Meta     Meta
	Snapshot *SnapshotRef
	Data     []byte
	Page     Page
}

// LoadJoin reads a join bundle from the log and blob store (blobs may be nil
// when the instance has no snapshot). max bounds the page; it must reach the
// snapshot's marker entry (which normally follows the snapshot point by a
// few entries) or [NewJoiner] asks for more.
func LoadJoin(ctx context.Context, log Log, blobs Blobs, instance string, max int) (JoinBundle, error) {
	st, err := log.State(ctx, instance)
	if err != nil {
		return JoinBundle{}, err
	}
	if st.Meta == nil {
		return JoinBundle{}, fmt.Errorf("%w: %s", ErrUnknownInstance, instance)
	}
	b := JoinBundle{Meta: *st.Meta, Snapshot: st.Snapshot}
	from := uint64(1)
	if st.Snapshot != nil {
		if blobs == nil {
			return JoinBundle{}, fmt.Errorf("heartbeat: snapshot %s: %w", st.Snapshot.Hash, ErrNotFound)
		}
		if b.Data, err = blobs.GetBlob(ctx, st.Snapshot.Hash); err != nil {
			return JoinBundle{}, fmt.Errorf("heartbeat: snapshot %s: %w", st.Snapshot.Hash, err)
		}
		from = st.Snapshot.Seq + 1
	}
	if b.Page, err = log.Read(ctx, instance, from, max); err != nil {
		return JoinBundle{}, err
	}
	return b, nil
}

// NewJoiner verifies a join bundle and returns a follower positioned at the
// snapshot point (or at the beginning) with the bundle's page already fed
// in. It checks that the data hashes to the snapshot hash and that the
// signed log, up to its marker entry, names exactly this (seq, hash). The
// caller restores its application state from b.Data (when b.Snapshot is not
// nil), then applies f.Ready() and whatever it feeds afterwards.
func NewJoiner(cfg FollowerConfig, b JoinBundle) (*Follower, error) {
	cfg.Instance = b.Meta.Instance
	if b.Snapshot != nil {
		if SHA256(b.Data) != b.Snapshot.Hash {
			return nil, fmt.Errorf("heartbeat: join: data does not hash to the snapshot: %w", ErrSnapshotMismatch)
		}
		cfg.After = Position{Seq: b.Snapshot.Seq}
		cfg.expect = b.Snapshot
	}
	f, err := NewFollower(cfg)
	if err != nil {
		return nil, err
	}
	for _, e := range b.Page.Entries {
		if err := f.AddEntry(e); err != nil {
			return nil, err
		}
	}
	for _, t := range b.Page.Ticks {
		if err := f.AddTick(t); err != nil {
			return nil, err
		}
	}
	if b.Snapshot != nil && f.Applied().Seq < b.Snapshot.Marker {
		return nil, fmt.Errorf("heartbeat: join: page ends at %d before the snapshot marker %d: %w", f.Applied().Seq, b.Snapshot.Marker, ErrSnapshotMismatch)
	}
	return f, nil
}
