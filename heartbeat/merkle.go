package heartbeat

import (
	"crypto/sha256"
	"fmt"
	"sync"

	"github.com/krestianstvo/luminary/internal/sched"
)

// Amortised tick signing. A sequencer host signs one Merkle root per round
// over the tick records of every instance it ticks in that round; each tick
// carries its Merkle path and the round signature. With 5,000 instances at
// 20 Hz that is 20 signatures per second instead of 100,000, and a follower
// verifies a tick by hashing its path (about 40 SHA-256 blocks for 5,000
// leaves) plus one signature check per round, which [RoundCache] remembers.
//
// Tree shape: leaves are [TickRecord.Leaf] in the order given to
// [SignRound]; each level pairs neighbours, node = SHA-256(keys.Message(
// "heartbeat.node", left, right)); an odd last node is promoted to the next
// level unchanged (not duplicated, so no two leaf lists share a root). Leaves
// and nodes use different labels, so a node can never pass as a leaf. The
// signed message binds the signer and the leaf count:
// keys.Message("heartbeat.round", signer, count (8 bytes BE), root).

func nodeHash(l, r *Hash) Hash { return hashMessage(labelNode, l[:], r[:]) }

func roundMessage(signer string, count uint32, root Hash) []byte {
	return keysMessage(labelRound, []byte(signer), u64(uint64(count)), root[:])
}

// SignRound signs one round over recs with s and returns one [Tick] per
// record, in the same order. It costs one signature and about 2·len(recs)
// hashes.
func SignRound(s Signer, recs []TickRecord) ([]Tick, error) {
	if len(recs) == 0 {
		return nil, nil
	}
	if uint64(len(recs)) >= 1<<32 {
		return nil, fmt.Errorf("heartbeat: round of %d records: %w", len(recs), ErrTooLarge)
	}
	levels := make([][]Hash, 0, 16)
	leaves := make([]Hash, len(recs))
	for i := range recs {
		leaves[i] = recs[i].Leaf()
		sched.Yield(i)
	}
	levels = append(levels, leaves)
	for cur := leaves; len(cur) > 1; {
		next := make([]Hash, (len(cur)+1)/2)
		for i := 0; i+1 < len(cur); i += 2 {
			next[i/2] = nodeHash(&cur[i], &cur[i+1])
		}
		if len(cur)%2 == 1 {
			next[len(next)-1] = cur[len(cur)-1]
		}
		levels = append(levels, next)
		cur = next
	}
	root := levels[len(levels)-1][0]
	count := uint32(len(recs))
	signer := s.Public()
	sig, err := s.Sign(roundMessage(signer, count, root))
	if err != nil {
		return nil, fmt.Errorf("heartbeat: sign round: %w", err)
	}
	depth := len(levels) - 1
	pathStore := make([]Hash, 0, len(recs)*depth)
	ticks := make([]Tick, len(recs))
	for i := range recs {
		sched.Yield(i)
		start := len(pathStore)
		idx := i
		for _, lvl := range levels[:depth] {
			if sib := idx ^ 1; sib < len(lvl) {
				pathStore = append(pathStore, lvl[sib])
			}
			idx >>= 1
		}
		ticks[i] = Tick{TickRecord: recs[i], Proof: Proof{
			Signer: signer, Index: uint32(i), Count: count,
			Path: pathStore[start:len(pathStore):len(pathStore)], Sig: sig,
		}}
	}
	return ticks, nil
}

// Root recomputes the Merkle root from the tick's leaf and path. It fails
// when the path length does not fit Index and Count.
func (t *Tick) Root() (Hash, error) {
	p := &t.Proof
	if p.Count == 0 || p.Index >= p.Count {
		return Hash{}, fmt.Errorf("%w: proof index %d of %d", ErrBadSignature, p.Index, p.Count)
	}
	h := t.Leaf()
	idx, n, used := p.Index, p.Count, 0
	for n > 1 {
		switch {
		case idx%2 == 1:
			if used >= len(p.Path) {
				return Hash{}, fmt.Errorf("%w: proof path too short", ErrBadSignature)
			}
			h = nodeHash(&p.Path[used], &h)
			used++
		case idx+1 < n:
			if used >= len(p.Path) {
				return Hash{}, fmt.Errorf("%w: proof path too short", ErrBadSignature)
			}
			h = nodeHash(&h, &p.Path[used])
			used++
		default: // last node of an odd level: promoted
		}
		idx >>= 1
		n = (n + 1) / 2
	}
	if used != len(p.Path) {
		return Hash{}, fmt.Errorf("%w: proof path too long", ErrBadSignature)
	}
	return h, nil
}

// VerifyTick checks the tick's Merkle path and round signature (through
// cache, which may be nil). It does not check that the signer may tick; see
// [Authorizer] and the epoch holder.
func VerifyTick(t *Tick, v Verifier, cache *RoundCache) error {
	if len(t.Proof.Sig) != signatureSize {
		return fmt.Errorf("heartbeat: tick %d/%d: %w", t.Epoch, t.N, ErrBadSignature)
	}
	root, err := t.Root()
	if err != nil {
		return fmt.Errorf("heartbeat: tick %d/%d: %w", t.Epoch, t.N, err)
	}
	var key Hash
	if cache != nil {
		key = cacheKey(t.Proof.Signer, t.Proof.Count, root, t.Proof.Sig)
		if cache.has(key) {
			return nil
		}
	}
	if !v.Verify(t.Proof.Signer, roundMessage(t.Proof.Signer, t.Proof.Count, root), t.Proof.Sig) {
		return fmt.Errorf("heartbeat: tick %d/%d: round signature: %w", t.Epoch, t.N, ErrBadSignature)
	}
	if cache != nil {
		cache.add(key)
	}
	return nil
}

func cacheKey(signer string, count uint32, root Hash, sig []byte) Hash {
	h := sha256.New()
	h.Write(roundMessage(signer, count, root))
	h.Write(sig)
	var k Hash
	h.Sum(k[:0])
	return k
}

// RoundCache remembers round signatures that verified, so the second and
// later ticks of one round cost only hashing. It is bounded (two generations
// of at most max/2 keys each) and safe for concurrent use.
type RoundCache struct {
	mu        sync.Mutex
	half      int
	cur, prev map[Hash]struct{}
}

// NewRoundCache returns a cache remembering roughly max rounds (at least 2).
func NewRoundCache(max int) *RoundCache {
	if max < 2 {
		max = 2
	}
	return &RoundCache{half: max / 2, cur: map[Hash]struct{}{}}
}

func (c *RoundCache) has(k Hash) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.cur[k]; ok {
		return true
	}
	_, ok := c.prev[k]
	return ok
}

func (c *RoundCache) add(k Hash) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.cur) >= c.half {
		c.prev, c.cur = c.cur, make(map[Hash]struct{}, c.half)
	}
	c.cur[k] = struct{}{}
}
