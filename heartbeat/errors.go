package heartbeat

import (
	"errors"
	"strings"
)

// Errors callers branch on. The text of each sentinel starts with the
// machine-readable prefix a relay sends on the wire ("invalid:",
// "restricted:", "rate-limited:", "duplicate:", "blocked:"); errors returned
// by this package wrap one of them with context, and [Reason] recovers the
// wire text.
var (
	// ErrNotAuthorisedToTick: a tick (or a sequencer batch) was signed by a
	// key that does not hold the tick role for the instance, or that is not
	// the current lease holder (table A row 20).
	ErrNotAuthorisedToTick = errors.New("restricted: not authorised to tick")
	// ErrStaleEpoch: a tick, entry or append carries an epoch older than
	// the current one (fencing).
	ErrStaleEpoch = errors.New("restricted: stale epoch")
	// ErrNotSequencer: the host does not (or no longer) sequence this
	// instance; the client should retry against the current sequencer.
	ErrNotSequencer = errors.New("restricted: not the sequencer for this instance")
	// ErrNotAuthorised: the author does not hold the role needed for the
	// request (sending a message, voting on a snapshot).
	ErrNotAuthorised = errors.New("restricted: not authorised")
	// ErrOrder: seq, hash chain or time order violated: a time that does not
	// increase, a repeated seq with other content, a gap (table A row 23).
	ErrOrder = errors.New("invalid: time/seq order")
	// ErrFork: two different signed heads (or entries) for one seq.
	ErrFork = errors.New("invalid: fork")
	// ErrTimestampWindow: a message's client timestamp is outside the
	// admission window (table A row 24).
	ErrTimestampWindow = errors.New("invalid: timestamp out of window")
	// ErrFuture: a state lies too far ahead of the receiver's clock.
	ErrFuture = errors.New("invalid: state in future")
	// ErrBadSignature: a signature, Merkle path or round signature does not
	// verify.
	ErrBadSignature = errors.New("invalid: signature")
	// ErrIDMismatch: a stated id or hash differs from the hash of the
	// canonical bytes (table A row 19).
	ErrIDMismatch = errors.New("invalid: id mismatch")
	// ErrMalformed: a field is missing, of the wrong type, or out of range.
	ErrMalformed = errors.New("invalid: malformed")
	// ErrTooLarge: a payload, batch or document exceeds its configured bound.
	ErrTooLarge = errors.New("invalid: too large")
	// ErrSnapshotMismatch: snapshot data or its marker does not match the
	// accepted hash.
	ErrSnapshotMismatch = errors.New("invalid: snapshot mismatch")
	// ErrDuplicate: the message (same id) is already sequenced. Where a
	// [Receipt] accompanies it, the receipt names the existing seq: the
	// request is idempotent, not failed.
	ErrDuplicate = errors.New("duplicate: already sequenced")
	// ErrQueueFull: the sequencer's bounded queue for the instance is full.
	ErrQueueFull = errors.New("rate-limited: sequencer queue full")
	// ErrClosed: the host or log is shutting down or closed.
	ErrClosed = errors.New("blocked: shutting down")

	// ErrConflict: an append did not continue the log's head (another
	// sequencer appended first). The appending sequencer has lost its term.
	ErrConflict = errors.New("heartbeat: append conflicts with log head")
	// ErrUnknownInstance: the instance has no metadata in the log.
	ErrUnknownInstance = errors.New("heartbeat: unknown instance")
	// ErrLeaseHeld: another holder's lease is live.
	ErrLeaseHeld = errors.New("heartbeat: lease held by another holder")
	// ErrLeaseLost: the grant is no longer the current one.
	ErrLeaseLost = errors.New("heartbeat: lease lost")
	// ErrLogBroken: a previous write failed to reach disk; the log refuses
	// further writes until it is reopened (an fsync error is never retried).
	ErrLogBroken = errors.New("heartbeat: log broken by a failed write")
)

var wireSentinels = []error{
	ErrNotAuthorisedToTick, ErrStaleEpoch, ErrNotSequencer, ErrNotAuthorised,
	ErrOrder, ErrFork, ErrTimestampWindow, ErrFuture, ErrBadSignature,
	ErrIDMismatch, ErrMalformed, ErrTooLarge, ErrSnapshotMismatch,
	ErrDuplicate, ErrQueueFull, ErrClosed,
}

// ReasonError returns the sentinel error whose wire text (see [Reason]) is
// reason, or nil when reason is not one of them.
func ReasonError(reason string) error {
	for _, s := range wireSentinels {
		if s.Error() == reason {
			return s
		}
	}
	return nil
}

// Reason returns the machine-readable wire text for err: the text of the
// first wire sentinel it wraps (for example "invalid: time/seq order"), or
// "invalid: rejected" for any other non-nil error. It returns "" for nil.
// Internal detail stays in err.Error() for logs.
func Reason(err error) string {
	if err == nil {
		return ""
	}
	for _, s := range wireSentinels {
		if errors.Is(err, s) {
			return s.Error()
		}
	}
	if msg := err.Error(); strings.HasPrefix(msg, "invalid:") || strings.HasPrefix(msg, "restricted:") {
		return msg
	}
	return "invalid: rejected"
}
