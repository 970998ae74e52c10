package auth_test

import (
	"context"
	"fmt"
	"time"

	"github.com/krestianstvo/luminary/auth"
	"github.com/krestianstvo/luminary/graph"
	"github.com/krestianstvo/luminary/internal/clock"
	"github.com/krestianstvo/luminary/keys"
)

// A relay checks a put field by field: the owner's signed tick and a
// delegated metronome's tick pass, an unsigned write and a key without the
// tick role are refused.
func ExampleChecker_CheckPut() {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	c, _ := auth.New(auth.Config{Clock: clock.NewFake(now)})

	owner, _ := keys.Generate(keys.Secp256k1)
	metronome, _ := keys.Generate(keys.Secp256k1)
	stranger, _ := keys.Generate(keys.Secp256k1)
	cert, _ := auth.IssueCert(owner, auth.Cert{
		Instance: owner.Public().String(), Subject: metronome.Public().String(),
		Roles: []auth.Role{auth.RoleTick}, Expiry: now.Add(time.Hour),
	})

	hb := auth.InstancePrefix + owner.Public().String() + "/hb"
	st := float64(now.UnixMilli())
	byOwner, _ := auth.SignField(owner, hb, "a", graph.Number(1), st)
	byMetronome, _ := auth.SignField(metronome, hb, "b", graph.Number(2), st, cert)
	byStranger, _ := auth.SignField(stranger, hb, "d", graph.Number(4), st)

	diff := graph.Graph{}
	diff.Set(hb, "a", graph.Field{Value: byOwner, State: st})
	diff.Set(hb, "b", graph.Field{Value: byMetronome, State: st})
	diff.Set(hb, "c", graph.Field{Value: graph.Number(3), State: st})
	diff.Set(hb, "d", graph.Field{Value: byStranger, State: st})

	allowed, refused := c.CheckPut(context.Background(), nil, diff)
	fmt.Println("allowed:", len(allowed[hb].Fields))
	for _, r := range refused {
		fmt.Println(r.Field, "→", r.Err)
	}
	// Output:
	// allowed: 2
	// c → auth-required: unsigned
	// d → restricted: not authorised to tick
}

// The login exchange: the relay challenges, the client signs, the relay
// remembers the proven key on the connection's Peer.
func ExampleChecker_Login() {
	relayKey, _ := keys.Generate(keys.Secp256k1)
	user, _ := keys.Generate(keys.P256)
	c, _ := auth.New(auth.Config{RelayID: relayKey.Public().String()})

	peer := auth.NewPeer()
	ch, _ := c.Challenge(peer)                    // relay → client
	resp, _ := auth.Respond(user, ch, time.Now()) // client → relay
	fmt.Println(c.Login(peer, resp), peer.LoggedIn(user.Public().String()))
	fmt.Println(c.Login(peer, resp)) // the challenge was used up
	// Output:
	// <nil> true
	// auth-required: login: no challenge pending (ask for one; each is good once)
}
