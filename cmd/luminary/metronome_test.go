package main

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/krestianstvo/luminary/client"
	"github.com/krestianstvo/luminary/heartbeat"
)

// TestWorldMetronome: on a relay where its owner hosts a world, the owner
// grants a peer key the tick role ('cert issue --relay' publishes it over
// the Gun wire, since the relay holds no key of the world), 'world
// metronome' with that key takes the world's metronome from the relay, and
// when it is stopped the relay takes it back.
func TestWorldMetronome(t *testing.T) {
	t.Setenv(passwordEnv, "hunter2 hunter2")
	dir := t.TempDir()
	ownerFile, owner := certKeyFile(t, dir, "owner.key")
	peerFile, peer := certKeyFile(t, dir, "peer.key")
	relay := serveInProcess(t, "--open-hosting")
	code, out, errs := runCLI(t, "", "world", "host", "--key", ownerFile, "--relay", relay, "--alias", "mine")
	var hosted struct{ Relay string }
	if err := json.Unmarshal([]byte(out), &hosted); code != 0 || err != nil || hosted.Relay == "" {
		t.Fatalf("host: exit %d, %s %s", code, out, errs)
	}
	code, _, errs = runCLI(t, "", "cert", "issue", "--key", ownerFile, "--subject", peerFile, "--role", "tick", "--relay", relay)
	if code != 0 || !strings.Contains(errs, "over") {
		t.Fatalf("cert issue: exit %d, %s", code, errs)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	inst := owner.Public().String()
	cl, err := client.Dial(ctx, strings.Replace(relay, "http", "ws", 1)+"/gun", client.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	w, err := cl.Join(ctx, inst)
	if err != nil {
		t.Fatal(err)
	}
	epochBy := func(key string, above uint64) uint64 {
		t.Helper()
		for {
			select {
			case ev, ok := <-w.Events():
				if !ok {
					t.Fatal("stream ended")
				}
				if e := ev.Entry; e != nil && e.Kind == heartbeat.KindEpoch && e.Author == key && e.Epoch > above {
					return e.Epoch
				}
			case <-ctx.Done():
				t.Fatalf("no new term by %s", key)
			}
		}
	}

	mctx, stop := context.WithCancel(ctx)
	done := make(chan int, 1)
	go func() {
		done <- run(mctx, []string{"world", "metronome", "--key", peerFile, "--relay", relay, "--world", inst}, io.Discard, io.Discard)
	}()
	e := epochBy(peer.Public().String(), 0)
	stop()
	if code := <-done; code != 0 {
		t.Fatalf("world metronome: exit %d", code)
	}
	epochBy(hosted.Relay, e)
}
