package service_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/krestianstvo/luminary/auth"
	"github.com/krestianstvo/luminary/client"
	"github.com/krestianstvo/luminary/heartbeat"
	"github.com/krestianstvo/luminary/internal/jsjson"
)

// appState is a toy application state: the payloads of the messages
// applied, in order (what a Croquet model would fold into its state).
func appState(es []heartbeat.Entry, upTo uint64) []string {
	var out []string
	for _, e := range es {
		if e.Kind == heartbeat.KindMessage && (upTo == 0 || e.Seq <= upTo) {
			out = append(out, e.Payload)
		}
	}
	return out
}

// Issue 5's join through the relay: two members vote the same snapshot at
// a point of the stream, the sequencer accepts it, more messages follow,
// and a late joiner that starts from the snapshot (its data plus only the
// entries after it, fetched over the wire and verified against the signed
// marker) reaches the same state as the members who replayed everything.
// A vote with data that does not match its hash is refused.
//
// With a peer running the world's metronome ("peer-run"), the relay counts
// the votes and hands the decided marker to the peer, which logs it; the
// deciding vote is answered once the peer's batch carrying it is accepted.
func TestSnapshotJoinThroughRelay(t *testing.T) {
	for _, peerRun := range []bool{false, true} {
		t.Run(map[bool]string{false: "relay-run", true: "peer-run"}[peerRun], func(t *testing.T) {
			testSnapshotJoin(t, peerRun)
		})
	}
}

func testSnapshotJoin(t *testing.T, peerRun bool) {
	r := startRelay(t, relayOpts{dir: "-"})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	inst := r.openWorld(t, "snap", 20)
	if _, err := r.svc.IssueCert(ctx, inst, auth.Cert{Instance: inst, Subject: auth.AnySubject,
		Roles: []auth.Role{auth.RoleSnapshot}, Expiry: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	a, b := dial(t, r.URL, newKey(t)), dial(t, r.URL, newKey(t))
	wa, wb := join(t, a, inst), join(t, b, inst)
	ca, cb := collect(wa), collect(wb)
	var peerEpoch uint64
	if peerRun {
		k, _ := r.tickKey(t, inst)
		m := runMetronome(join(t, dial(t, r.URL, k), inst))
		defer m.stop(t)
		ca.waitFor(t, 20*time.Second, "the peer's term", func(es []heartbeat.Entry) bool {
			peerEpoch = epochBy(es, k.Public().String())
			return peerEpoch > 0
		})
	}
	send := func(from int, n int) uint64 {
		var last uint64
		for i := range n {
			rc, err := wa.Send(ctx, []byte(fmt.Sprintf(`{"n":%d}`, from+i)))
			if err != nil {
				t.Fatal(err)
			}
			last = rc.Seq
		}
		return last
	}
	has := func(seq uint64) func([]heartbeat.Entry) bool {
		return func(es []heartbeat.Entry) bool { return len(es) > 0 && es[len(es)-1].Seq >= seq }
	}
	point := send(0, 10)
	ca.waitFor(t, 20*time.Second, "the first messages at a", has(point))
	cb.waitFor(t, 20*time.Second, "the first messages at b", has(point))
	ea, _ := ca.snapshot()
	eb, _ := cb.snapshot()
	stateA, stateB := jsjson.Append(nil, appState(ea, point)), jsjson.Append(nil, appState(eb, point))
	if string(stateA) != string(stateB) {
		t.Fatal("members disagree before the snapshot")
	}

	// b first votes a wrong state: a's right vote does not complete the
	// quorum of two on its own; b's right vote does.
	if ok, _, err := wb.SubmitSnapshot(ctx, point, append([]byte("x"), stateB...)); err != nil || ok {
		t.Fatalf("wrong vote: accepted=%v %v", ok, err)
	}
	accepted, marker, err := wa.SubmitSnapshot(ctx, point, stateA)
	if err != nil || accepted {
		t.Fatalf("one right vote: accepted=%v %v", accepted, err)
	}
	accepted, marker, err = wb.SubmitSnapshot(ctx, point, stateB)
	if err != nil || !accepted || marker <= point {
		t.Fatalf("snapshot not accepted: accepted=%v marker=%d err=%v", accepted, marker, err)
	}
	last := send(10, 5)
	ca.waitFor(t, 20*time.Second, "the later messages at a", has(last))
	if peerRun {
		// The peer logged the marker, in its own term.
		ea, _ := ca.snapshot()
		i := slices.IndexFunc(ea, func(e heartbeat.Entry) bool { return e.Seq == marker })
		if i < 0 {
			t.Fatalf("marker %d not in the stream", marker)
		}
		if e := ea[i]; e.Kind != heartbeat.KindSnapshot || e.Epoch != peerEpoch || e.Ref != point {
			t.Fatalf("entry %d: %v epoch %d ref %d; want the peer's (epoch %d) marker of %d", marker, e.Kind, e.Epoch, e.Ref, peerEpoch, point)
		}
	}

	c := dial(t, r.URL, newKey(t))
	jctx, jcancel := context.WithTimeout(ctx, 20*time.Second)
	defer jcancel()
	wc, err := c.Join(jctx, inst, client.JoinOptions{FromSnapshot: true})
	if err != nil {
		t.Fatal(err)
	}
	ref, data := wc.Snapshot()
	if ref == nil || ref.Seq != point || ref.Marker != marker || string(data) != string(stateA) {
		t.Fatalf("joined from snapshot %+v with %q", ref, data)
	}
	cc := collect(wc)
	cc.waitFor(t, 20*time.Second, "the later messages at the joiner", has(last))
	ec, _ := cc.snapshot()
	if ec[0].Seq <= point {
		t.Fatalf("the joiner replayed entry %d, at or before the snapshot point %d", ec[0].Seq, point)
	}
	var restored []string
	v, err := jsjson.Parse(data, jsjson.Limits{MaxBytes: 1 << 20, MaxDepth: 2, MaxElements: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range v.([]any) {
		restored = append(restored, x.(string))
	}
	joined := append(restored, appState(ec, 0)...)
	ea, _ = ca.snapshot()
	if full := appState(ea, last); !slices.Equal(joined, full) {
		t.Fatalf("joiner's state differs:\n%v\n%v", joined, full)
	}

}
