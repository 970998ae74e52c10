package heartbeattest

import (
	"fmt"
	"time"

	"github.com/krestianstvo/luminary/heartbeat"
)

// Stream is a hand-driven sequencer for tests that need a valid signed
// stream (or a deliberately broken one): it wraps a [heartbeat.Sequencer]
// and signs each tick as a round of one.
type Stream struct {
	Seq     *heartbeat.Sequencer
	Signer  heartbeat.Signer
	Elapsed time.Duration
	// Entries and Ticks hold everything produced, in order.
	Entries []heartbeat.Entry
	Ticks   []heartbeat.Tick
	// Reserve is the mark to send with the next batch (see Batch).
	Reserve float64
}

// NewStream starts a term for instance (new: Start 0) at wall time wall.
func NewStream(signer heartbeat.Signer, instance string, epoch uint64, head heartbeat.Head, meta *heartbeat.Meta, reserved float64, wall time.Time) *Stream {
	m := heartbeat.Meta{Instance: instance, Name: "test", Rate: 1, TPS: 20}
	if meta != nil {
		m = *meta
	}
	seq, first := heartbeat.NewSequencer(heartbeat.TermStart{
		Meta: m, Holder: signer.Public(), Epoch: epoch, Head: head, LastState: head.State, Reserved: reserved, Wall: wall,
	})
	s := &Stream{Seq: seq, Signer: signer}
	s.Entries = append(s.Entries, first)
	return s
}

// Message appends a message signed by author.
func (s *Stream) Message(author heartbeat.Signer, ts int64, payload string) heartbeat.Entry {
	m := heartbeat.Message{Instance: s.Seq.Meta().Instance, TS: ts, Nonce: fmt.Sprint(len(s.Entries)), Payload: payload}
	if err := m.Sign(author); err != nil {
		panic(err)
	}
	s.Elapsed += time.Millisecond
	e := s.Seq.Append(heartbeat.Entry{Kind: heartbeat.KindMessage, Author: m.Author, TS: m.TS, Nonce: m.Nonce, Payload: m.Payload, Sig: m.Sig}, s.Elapsed)
	s.Entries = append(s.Entries, e)
	return e
}

// Tick issues and signs the next tick after advancing d.
func (s *Stream) Tick(d time.Duration) heartbeat.Tick {
	s.Elapsed += d
	rec := s.Seq.Tick(s.Elapsed)
	ts, err := heartbeat.SignRound(s.Signer, []heartbeat.TickRecord{rec})
	if err != nil {
		panic(err)
	}
	s.Ticks = append(s.Ticks, ts[0])
	if mark, need := s.Seq.Reservation(); need {
		s.Reserve = mark
		s.Seq.Reserved(mark)
	}
	return ts[0]
}

// Resign signs rec (possibly tampered with) as a round of one.
func Resign(signer heartbeat.Signer, rec heartbeat.TickRecord) heartbeat.Tick {
	ts, err := heartbeat.SignRound(signer, []heartbeat.TickRecord{rec})
	if err != nil {
		panic(err)
	}
	return ts[0]
}
