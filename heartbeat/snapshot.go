package heartbeat

import (
	"context"
	"fmt"
	"slices"
	"time"

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
// in the signed, hash-chained log, identical for every follower. When a
// peer sequences the instance through a relay, the relay counts the votes
// (the same [VoteCheck] and [VoteTally]) and hands the decided marker to the
// peer's host ([Host.AppendSnapshot]); the relay's [Acceptor] takes no other.
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

// VoteCheck is what every sequencer checks of a snapshot vote before it
// counts it: the signature, the author's snapshot role, and the data (which
// must hash to the vote; it is stored in Blobs).
type VoteCheck struct {
	Verifier   Verifier
	Authorizer Authorizer
	Blobs      Blobs // nil refuses every vote
	MaxBytes   int
	Now        time.Time
}

// Check judges v and stores data (which may be nil when another vote
// carried it). haveData reports whether the blob store now holds the
// snapshot: a quorum without it accepts nothing yet.
func (c VoteCheck) Check(ctx context.Context, v SnapshotVote, data []byte) (haveData bool, err error) {
	if err := checkKeyText("instance", v.Instance); err != nil {
		return false, err
	}
	if err := checkKeyText("author", v.Author); err != nil {
		return false, err
	}
	if v.Seq == 0 || v.Seq > maxSafeInt {
		return false, fmt.Errorf("%w: vote seq", ErrMalformed)
	}
	if len(v.Sig) != signatureSize || !c.Verifier.Verify(v.Author, v.SignedBytes(), v.Sig) {
		return false, fmt.Errorf("heartbeat: snapshot vote: %w", ErrBadSignature)
	}
	if err := c.Authorizer.Authorize(ctx, v.Instance, v.Author, RoleSnapshot, c.Now); err != nil {
		return false, fmt.Errorf("heartbeat: snapshot vote by %s: %w: %w", v.Author, ErrNotAuthorised, err)
	}
	if c.Blobs == nil {
		return false, fmt.Errorf("heartbeat: no snapshot store: %w", ErrNotAuthorised)
	}
	if data != nil {
		if len(data) > c.MaxBytes {
			return false, fmt.Errorf("heartbeat: snapshot of %d bytes: %w", len(data), ErrTooLarge)
		}
		if SHA256(data) != v.Hash {
			return false, fmt.Errorf("heartbeat: snapshot data does not hash to the vote: %w", ErrSnapshotMismatch)
		}
		if _, err := c.Blobs.PutBlob(ctx, data); err != nil {
			return false, err
		}
		return true, nil
	}
	_, err = c.Blobs.GetBlob(ctx, v.Hash)
	return err == nil, nil
}

// CheckVotePoint judges the point a vote is for against the instance's
// log: at or below its head, above the accepted snapshot. Every sequencer
// (the host, or a relay counting votes while a peer sequences) asks the same.
func CheckVotePoint(seq, head, accepted uint64) error {
	switch {
	case seq > head:
		return fmt.Errorf("heartbeat: vote for seq %d beyond head %d: %w", seq, head, ErrOrder)
	case seq <= accepted:
		return fmt.Errorf("heartbeat: vote for seq %d, accepted %d: %w", seq, accepted, ErrDuplicate)
	}
	return nil
}

// VoteQuorum is how many matching votes decide a snapshot: the configured
// quorum, or every present member when fewer are present (at least one).
func VoteQuorum(configured, present int) int {
	return min(configured, max(1, present))
}

// VoteTally counts one instance's snapshot votes: distinct authors per
// (seq, hash), and the points for which a marker was already decided. It
// is not safe for concurrent use.
type VoteTally struct {
	votes   map[uint64]map[Hash]map[string]bool
	n       int
	decided map[uint64]bool
}

// NewVoteTally returns an empty tally.
func NewVoteTally() *VoteTally {
	return &VoteTally{votes: map[uint64]map[Hash]map[string]bool{}, decided: map[uint64]bool{}}
}

// Add records v. It returns the sorted voters of (v.Seq, v.Hash) when this
// vote decides the point — at least quorum of them, the data held, no
// marker decided for v.Seq yet — and nil otherwise. With max votes pending
// already it refuses the vote with ErrQueueFull.
func (t *VoteTally) Add(v SnapshotVote, quorum int, haveData bool, max int) ([]string, error) {
	byHash := t.votes[v.Seq]
	if byHash == nil {
		if t.n >= max {
			return nil, fmt.Errorf("heartbeat: %d votes pending: %w", t.n, ErrQueueFull)
		}
		byHash = map[Hash]map[string]bool{}
		t.votes[v.Seq] = byHash
	}
	voters := byHash[v.Hash]
	if voters == nil {
		voters = map[string]bool{}
		byHash[v.Hash] = voters
	}
	if !voters[v.Author] {
		if t.n >= max {
			return nil, fmt.Errorf("heartbeat: %d votes pending: %w", t.n, ErrQueueFull)
		}
		voters[v.Author] = true
		t.n++
	}
	if len(voters) < quorum || !haveData || t.decided[v.Seq] {
		return nil, nil
	}
	t.decided[v.Seq] = true
	names := make([]string, 0, len(voters))
	for k := range voters {
		names = append(names, k)
	}
	slices.Sort(names)
	return names, nil
}

// Prune drops the votes at or below seq (an accepted snapshot).
func (t *VoteTally) Prune(seq uint64) {
	for s, byHash := range t.votes {
		if s <= seq {
			for _, vs := range byHash {
				t.n -= len(vs)
			}
			delete(t.votes, s)
			delete(t.decided, s)
		}
	}
}

// CheckVote makes the host's checks of a vote ([VoteCheck] with its
// verifier, authorizer, blob store and bound, at its clock's now) without
// counting it: a relay whose host stands by while a peer sequences judges
// that peer's members' votes the same way.
func (h *Host) CheckVote(ctx context.Context, v SnapshotVote, data []byte) (haveData bool, err error) {
	return VoteCheck{Verifier: h.cfg.Verifier, Authorizer: h.cfg.Authorizer, Blobs: h.cfg.Blobs,
		MaxBytes: h.cfg.MaxSnapshotBytes, Now: h.cfg.Clock.Now()}.Check(ctx, v, data)
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
	haveData, err := h.CheckVote(ctx, v, data)
	if err != nil {
		done(Receipt{}, err)
		return
	}
	h.mu.Lock()
	in, err := h.acceptingLocked(v.Instance)
	if err == nil {
		err = CheckVotePoint(v.Seq, in.headSeq, in.snapSeq)
	}
	var voters []string
	if err == nil {
		voters, err = in.tally.Add(v, VoteQuorum(h.cfg.SnapshotQuorum, in.present), haveData, h.cfg.MaxVotes)
	}
	h.mu.Unlock()
	if err != nil || voters == nil {
		done(Receipt{}, err)
		return
	}
	h.enqueue(v.Instance, &pending{kind: KindSnapshot, ref: v.Seq, refHash: v.Hash, voters: voters, done: []func(Receipt, error){done}})
}

// AppendSnapshot logs a snapshot marker (Ref = seq, RefHash = hash,
// Payload = voters) decided elsewhere: a relay that counted the members'
// votes hands the decision to the remote peer sequencing the instance. The
// relay accepts the peer's batch only if it carries exactly the marker it
// decided. done is called with the marker's receipt once it is durable, or
// with the reason it was not logged.
func (h *Host) AppendSnapshot(ctx context.Context, instance string, seq uint64, hash Hash, voters []string, done func(Receipt, error)) {
	if done == nil {
		done = func(Receipt, error) {}
	}
	if seq == 0 || seq > maxSafeInt || len(voters) == 0 {
		done(Receipt{}, fmt.Errorf("%w: snapshot marker", ErrMalformed))
		return
	}
	for _, k := range voters {
		if err := checkKeyText("voter", k); err != nil {
			done(Receipt{}, err)
			return
		}
	}
	h.enqueue(instance, &pending{kind: KindSnapshot, ref: seq, refHash: hash, voters: slices.Clone(voters), done: []func(Receipt, error){done}})
}

// pruneVotesLocked drops votes at or below the accepted snapshot. h.mu is
// held.
func (h *Host) pruneVotesLocked(in *hosted) {
	in.tally.Prune(in.snapSeq)
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
