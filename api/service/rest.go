package service

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/krestianstvo/luminary/api/rest"
	"github.com/krestianstvo/luminary/auth"
	"github.com/krestianstvo/luminary/graph"
	"github.com/krestianstvo/luminary/heartbeat"
	"github.com/krestianstvo/luminary/keys"
)

var _ rest.Service = (*Service)(nil)

// DemoAlias is the alias of the demo world.
const DemoAlias = "demo"

// ownerCertValidity is the validity of the tick certificate an owner key
// created by the relay issues to the relay key.
const ownerCertValidity = 10 * 365 * 24 * time.Hour

// ensureDemo creates (or finds) the demo world: owned by the relay key,
// alias "demo", open to anyone who joins through the HTTP join route.
func (s *Service) ensureDemo() error {
	if _, ok := s.worlds.get(s.relayID); ok {
		return nil
	}
	_, err := s.createWorld(context.Background(), rest.WorldSpec{Instance: s.relayID, Alias: DemoAlias, Name: "demo",
		Rate: 1, TPS: s.cfg.DemoTPS, Open: true}, true)
	return err
}

// DemoInstance returns the demo world's instance id ("" without --demo).
func (s *Service) DemoInstance() string {
	if w, ok := s.worlds.get(s.relayID); ok && w.Demo {
		return w.Instance
	}
	return ""
}

// CreateWorld implements rest.Service.
func (s *Service) CreateWorld(ctx context.Context, spec rest.WorldSpec) (rest.WorldInfo, error) {
	inst, err := s.createWorld(ctx, spec, false)
	if err != nil {
		return rest.WorldInfo{}, err
	}
	return s.info(ctx, inst)
}

func (s *Service) createWorld(ctx context.Context, spec rest.WorldSpec, demo bool) (string, error) {
	if len(s.worlds.list()) >= s.cfg.MaxWorlds {
		return "", fmt.Errorf("%w: this relay hosts %d worlds already", rest.ErrRateLimited, s.cfg.MaxWorlds)
	}
	if spec.Rate == 0 {
		spec.Rate = 1
	}
	if spec.TPS == 0 {
		spec.TPS = 20
	}
	now := s.clk.Now()
	rec := &worldRec{Instance: spec.Instance, Alias: spec.Alias, Name: spec.Name, Rate: spec.Rate, TPS: spec.TPS,
		Private: spec.Private, Open: spec.Open, Created: now.UnixMilli(), Demo: demo}
	var owner *keys.Private
	chain := spec.Chain
	switch spec.Instance {
	case "":
		k, err := keys.Generate(keys.Secp256k1)
		if err != nil {
			return "", err
		}
		owner, rec.Instance = k, k.Public().String()
		if s.cfg.DataDir != "" {
			if len(s.password) == 0 {
				return "", fmt.Errorf("%w: the relay has no key password to store a world owner key with", rest.ErrUnavailable)
			}
			var b [12]byte
			_, _ = rand.Read(b[:])
			rec.Owner = base64.RawURLEncoding.EncodeToString(b[:]) + ".key"
			if err := os.MkdirAll(filepath.Join(s.cfg.DataDir, ownersDir), 0o700); err != nil {
				return "", err
			}
			if err := keys.WriteFile(filepath.Join(s.cfg.DataDir, ownersDir, rec.Owner), k, s.password, keys.FileOptions{LogN: s.cfg.KeyLogN}); err != nil {
				return "", err
			}
		}
		c, err := auth.IssueCert(k, auth.Cert{Instance: rec.Instance, Subject: s.relayID,
			Roles: []auth.Role{auth.RoleTick, auth.RoleAdmin}, Expiry: now.Add(ownerCertValidity)})
		if err != nil {
			return "", err
		}
		chain = []*auth.Cert{c}
	case s.relayID:
		owner, rec.Owner = s.key, "relay"
	}
	if _, ok := s.worlds.get(rec.Instance); ok {
		return "", fmt.Errorf("%w: world %s is hosted already", rest.ErrConflict, rec.Instance)
	}
	if spec.Alias != "" {
		if _, ok := s.worlds.get(spec.Alias); ok {
			return "", fmt.Errorf("%w: alias %q is taken", rest.ErrConflict, spec.Alias)
		}
	}
	for _, c := range chain {
		if c.Instance != rec.Instance {
			return "", fmt.Errorf("%w: certificate for another instance", rest.ErrInvalid)
		}
		if err := c.VerifySignature(); err != nil {
			return "", fmt.Errorf("%w: %v", rest.ErrInvalid, err)
		}
	}
	if owner == nil {
		tick := chain
		if err := s.checker.Authorize(ctx, rec.Instance, s.relayID, auth.RoleTick, now, tick...); err != nil {
			if len(tick) == 0 {
				return "", fmt.Errorf("%w: the relay key %s holds no tick certificate for this world: %v", rest.ErrInvalid, s.relayID, err)
			}
			// The chain given may be for other roles; a published one may do.
			if err2 := s.checker.Authorize(ctx, rec.Instance, s.relayID, auth.RoleTick, now); err2 != nil {
				return "", fmt.Errorf("%w: the relay key %s holds no tick certificate for this world: %v", rest.ErrInvalid, s.relayID, err)
			}
			chain = nil
		}
	}
	if spec.Private {
		if err := s.setPrivate(ctx, rec.Instance, owner); err != nil {
			return "", err
		}
	}
	if err := s.worlds.add(rec, chain, owner); err != nil {
		if errors.Is(err, errExists) || errors.Is(err, errAliasTaken) {
			return "", fmt.Errorf("%w: %v", rest.ErrConflict, err)
		}
		return "", err
	}
	// Publish the relay's tick chain so that followers can check who ticks.
	if owner != nil && owner != s.key {
		for _, c := range chain {
			if err := s.publishCert(ctx, rec.Instance, c, owner, nil); err != nil {
				s.logger.Warn("service: publishing the relay's certificate", "instance", rec.Instance, "err", err)
			}
		}
	}
	if err := s.openWorld(*rec); err != nil {
		return "", err
	}
	s.logger.Info("service: hosting world", "instance", rec.Instance, "alias", rec.Alias, "name", rec.Name, "tps", rec.TPS, "open", rec.Open, "private", rec.Private)
	return rec.Instance, nil
}

// setPrivate writes lum/<I>.private = true, signed by the owner (the relay
// can only do this for worlds whose owner key it holds; other owners write
// the flag themselves, and the relay checks it is there).
func (s *Service) setPrivate(ctx context.Context, inst string, owner *keys.Private) error {
	soul := heartbeat.InstanceSoul(inst)
	if owner == nil {
		f, err := s.db.GetField(ctx, soul, "private")
		if err == nil {
			if w, err := auth.ParseWrapper(f.Value); err == nil {
				if b, ok := w.Value.AsBool(); ok && b {
					return nil
				}
			}
		}
		return fmt.Errorf("%w: a private world's owner must write lum/<I>.private = true (signed) first", rest.ErrInvalid)
	}
	return s.signedPut(ctx, soul, "private", graph.Bool(true), owner, nil)
}

// signedPut writes one owner- or admin-signed field through the checker.
func (s *Service) signedPut(ctx context.Context, soul, field string, v graph.Value, writer *keys.Private, chain []*auth.Cert) error {
	st := s.db.Now()
	wv, err := auth.SignField(writer, soul, field, v, st, chain...)
	if err != nil {
		return err
	}
	diff := graph.Graph{soul: {Soul: soul, Fields: map[string]graph.Field{field: {Value: wv, State: st}}}}
	allowed, refused := s.checker.CheckPut(ctx, nil, diff)
	if len(refused) > 0 {
		return refused[0].Err
	}
	_, err = s.db.Put(ctx, allowed, nil)
	return err
}

// publishCert stores cert at lum/<I>/certs/<serial>, written by writer
// (the owner, or an admin with writerChain), through the checker, which
// registers it for Authorize.
func (s *Service) publishCert(ctx context.Context, inst string, cert *auth.Cert, writer *keys.Private, writerChain []*auth.Cert) error {
	b, err := cert.MarshalJSON()
	if err != nil {
		return err
	}
	return s.signedPut(ctx, heartbeat.InstanceSoul(inst)+"/certs", cert.Serial, graph.String(string(b)), writer, writerChain)
}

// signer returns the key the relay signs certificates for inst with: the
// owner key when it holds it, else the relay key with an admin chain.
func (s *Service) signer(ctx context.Context, inst string) (*keys.Private, []*auth.Cert, error) {
	if k := s.worlds.owner(inst); k != nil {
		return k, nil, nil
	}
	if chain := s.worlds.chain(inst); len(chain) > 0 {
		if s.checker.Authorize(ctx, inst, s.relayID, auth.RoleAdmin, s.clk.Now(), chain...) == nil {
			return s.key, chain, nil
		}
	}
	return nil, nil, fmt.Errorf("%w: the relay holds neither the owner key nor an admin certificate for this world", rest.ErrForbidden)
}

// info builds a world's description.
func (s *Service) info(ctx context.Context, inst string) (rest.WorldInfo, error) {
	w, ok := s.worlds.get(inst)
	if !ok {
		return rest.WorldInfo{}, fmt.Errorf("%w: no world %s", rest.ErrNotFound, inst)
	}
	hs, _ := s.host.Status(inst)
	st, err := s.log.State(ctx, inst)
	if err != nil {
		return rest.WorldInfo{}, err
	}
	meta := hs.Meta
	if st.Meta != nil {
		meta = *st.Meta
	}
	if meta.Name == "" {
		meta.Name = w.Name
	}
	if meta.TPS == 0 {
		meta.TPS, meta.Rate = w.TPS, w.Rate
	}
	id := inst
	if w.Alias != "" {
		id = w.Alias
	}
	info := rest.WorldInfo{ID: id, Instance: inst, Alias: w.Alias, Name: meta.Name, Owner: inst, Rate: meta.Rate,
		TPS: meta.TPS, Private: w.Private, Open: w.Open, Created: w.Created, Start: meta.Start, Seq: st.Head.Seq,
		Present: len(st.Presence), Members: s.memberList(ctx, inst)}
	if n := s.m.numbers(inst, s.clk.Now()); n.hasTick {
		info.Time = n.last.Time()
	}
	if hs.Active {
		info.Metronome = rest.Metronome{Sequencer: s.relayID, Epoch: hs.Epoch, Local: true}
	} else if g, ok, err := s.lease.Current(ctx, inst); err == nil && ok {
		info.Metronome = rest.Metronome{Sequencer: g.Holder, Epoch: g.Epoch, Local: g.Holder == s.relayID}
	} else {
		info.Metronome.Epoch = st.Head.Epoch
	}
	return info, nil
}

// maxMembersListed bounds WorldInfo.Members.
const maxMembersListed = 100

// memberList returns keys listed in lum/<I>/members (true) and subjects of
// published certificates, sorted, at most maxMembersListed.
func (s *Service) memberList(ctx context.Context, inst string) []string {
	out := []string{}
	if n, err := s.db.Get(ctx, heartbeat.InstanceSoul(inst)+"/members"); err == nil {
		for k, f := range n.Fields {
			if w, err := auth.ParseWrapper(f.Value); err == nil {
				if b, ok := w.Value.AsBool(); ok && b {
					out = append(out, k)
				}
			}
		}
	}
	if n, err := s.db.Get(ctx, heartbeat.InstanceSoul(inst)+"/certs"); err == nil {
		for _, f := range n.Fields {
			w, err := auth.ParseWrapper(f.Value)
			if err != nil {
				continue
			}
			if txt, ok := w.Value.AsString(); ok {
				if c, err := auth.ParseCert([]byte(txt)); err == nil && c.Subject != auth.AnySubject {
					out = append(out, c.Subject)
				}
			}
		}
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) > maxMembersListed {
		out = out[:maxMembersListed]
	}
	return out
}

// ListWorlds implements rest.Service.
func (s *Service) ListWorlds(ctx context.Context) ([]rest.WorldInfo, error) {
	var out []rest.WorldInfo
	for _, w := range s.worlds.list() {
		wi, err := s.info(ctx, w.Instance)
		if err != nil {
			return nil, err
		}
		out = append(out, wi)
	}
	return out, nil
}

// World implements rest.Service.
func (s *Service) World(ctx context.Context, ref string) (rest.WorldInfo, error) {
	w, ok := s.worlds.get(ref)
	if !ok {
		return rest.WorldInfo{}, fmt.Errorf("%w: no world %q", rest.ErrNotFound, ref)
	}
	return s.info(ctx, w.Instance)
}

// Presence implements rest.Service: the logged presence.
func (s *Service) Presence(ctx context.Context, instance string) ([]string, error) {
	st, err := s.log.State(ctx, instance)
	if err != nil {
		return nil, err
	}
	return st.Presence, nil
}

// History implements rest.Service.
func (s *Service) History(ctx context.Context, instance string, q rest.HistoryQuery) (rest.HistoryPage, error) {
	st, err := s.log.State(ctx, instance)
	if err != nil {
		return rest.HistoryPage{}, err
	}
	if st.Meta == nil {
		return rest.HistoryPage{}, fmt.Errorf("%w: %s", heartbeat.ErrUnknownInstance, instance)
	}
	var p heartbeat.Page
	limit := max(q.Limit, 1)
	switch {
	case q.ByTime:
		p, err = s.log.ReadByTime(ctx, instance, q.FromState, q.ToState, limit)
	case q.To != 0 && q.To < q.From:
	default:
		n := uint64(limit)
		if q.To != 0 {
			n = min(n, q.To-max(q.From, 1)+1)
		}
		p, err = s.log.Read(ctx, instance, max(q.From, 1), int(n))
	}
	if err != nil {
		return rest.HistoryPage{}, err
	}
	return rest.HistoryPage{Entries: p.Entries, Ticks: p.Ticks, Head: st.Head.Seq}, nil
}

// Export implements rest.Service.
func (s *Service) Export(ctx context.Context, instance string, w io.Writer, opt heartbeat.ExportOptions) error {
	return heartbeat.Export(ctx, s.log, instance, w, opt)
}

// VerifyHistory implements rest.Service. It checks the history on its own
// (holders from the epoch entries, authors listed in the report) rather
// than against the relay's certificates: join certificates are short-lived
// and forgotten, and a history must verify the same anywhere.
func (s *Service) VerifyHistory(ctx context.Context, r io.Reader) (*heartbeat.Report, error) {
	return heartbeat.VerifyHistory(r, heartbeat.VerifyOptions{Verifier: s.verifier})
}

// VerifyMessage implements rest.Service.
func (s *Service) VerifyMessage(ctx context.Context, m heartbeat.Message) (rest.MessageReport, error) {
	return rest.ReportMessage(ctx, s.log, s.verifier, m)
}

// IssueCert implements rest.Service.
func (s *Service) IssueCert(ctx context.Context, instance string, tmpl auth.Cert) ([]*auth.Cert, error) {
	if !s.worlds.hosted(instance) {
		return nil, fmt.Errorf("%w: no world %s", rest.ErrNotFound, instance)
	}
	signer, chain, err := s.signer(ctx, instance)
	if err != nil {
		return nil, err
	}
	c, err := auth.IssueCert(signer, tmpl)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", rest.ErrInvalid, err)
	}
	if err := s.publishCert(ctx, instance, c, signer, chain); err != nil {
		return nil, err
	}
	return append(slices.Clone(chain), c), nil
}

// PublishCert implements rest.Service: the relay writes the certificate
// at lum/<I>/certs with the owner key or its admin chain (the field needs an
// admin's signature), after the checker has verified the chain.
func (s *Service) PublishCert(ctx context.Context, instance string, chain []*auth.Cert) error {
	if !s.worlds.hosted(instance) {
		return fmt.Errorf("%w: no world %s", rest.ErrNotFound, instance)
	}
	if len(chain) == 0 {
		return fmt.Errorf("%w: empty chain", rest.ErrInvalid)
	}
	leaf := chain[len(chain)-1]
	subject := leaf.Subject
	if subject == auth.AnySubject {
		subject = s.relayID // any key: check the chain with some key
	}
	for _, r := range leaf.Roles {
		if err := s.checker.Authorize(ctx, instance, subject, r, s.clk.Now(), chain...); err != nil {
			return err
		}
	}
	signer, sChain, err := s.signer(ctx, instance)
	if err != nil {
		return err
	}
	for _, c := range chain {
		if c.Issuer == instance || slices.ContainsFunc(sChain, func(x *auth.Cert) bool { return x.Serial == c.Serial }) || c == leaf {
			if err := s.publishCert(ctx, instance, c, signer, sChain); err != nil {
				return err
			}
		}
	}
	return nil
}

// Authorize implements rest.Service.
func (s *Service) Authorize(ctx context.Context, instance, key string, role auth.Role) error {
	return s.authorize(ctx, instance, key, heartbeat.Role(role), s.clk.Now())
}

// Member implements rest.Service: the owner, a key listed true in
// lum/<I>/members, or an admin.
func (s *Service) Member(ctx context.Context, instance, key string) (bool, error) {
	if key == instance {
		return true, nil
	}
	f, err := s.db.GetField(ctx, heartbeat.InstanceSoul(instance)+"/members", key)
	switch {
	case err == nil:
		if w, err := auth.ParseWrapper(f.Value); err == nil {
			if b, ok := w.Value.AsBool(); ok && b {
				return true, nil
			}
		}
	case !errors.Is(err, graph.ErrNotFound):
		return false, err
	}
	return s.authorize(ctx, instance, key, heartbeat.Role(auth.RoleAdmin), s.clk.Now()) == nil, nil
}

// joinCerts remembers the message certificate issued to a key by the join
// route, so that a page reloading within half the validity reuses it.
var joinCerts = struct {
	sync.Mutex
	m map[[2]string][]*auth.Cert
}{m: map[[2]string][]*auth.Cert{}}

// maxJoinCerts bounds the remembered join certificates.
const maxJoinCerts = 10000

// Join implements rest.Service: for an open world, a short-lived message
// certificate for pub (published at lum/<I>/certs, so every relay and
// follower can check it) and a presence lease.
func (s *Service) Join(ctx context.Context, instance, pub string) (rest.JoinGrant, error) {
	w, ok := s.worlds.get(instance)
	if !ok {
		return rest.JoinGrant{}, fmt.Errorf("%w: no world %s", rest.ErrNotFound, instance)
	}
	if !w.Open {
		return rest.JoinGrant{}, fmt.Errorf("%w: this world is not open for joining", rest.ErrForbidden)
	}
	now := s.clk.Now()
	key := [2]string{instance, pub}
	joinCerts.Lock()
	chain := joinCerts.m[key]
	joinCerts.Unlock()
	if len(chain) == 0 || chain[len(chain)-1].Expiry.Sub(now) < s.cfg.JoinCertTTL/2 {
		var err error
		chain, err = s.IssueCert(ctx, instance, auth.Cert{Instance: instance, Subject: pub,
			Roles: []auth.Role{auth.RoleMessage}, NotBefore: now.Add(-time.Minute), Expiry: now.Add(s.cfg.JoinCertTTL)})
		if err != nil {
			return rest.JoinGrant{}, err
		}
		joinCerts.Lock()
		if len(joinCerts.m) >= maxJoinCerts {
			clear(joinCerts.m)
		}
		joinCerts.m[key] = chain
		joinCerts.Unlock()
	}
	s.pres.lease(instance, pub, s.cfg.PresenceTTL)
	seqs := append([]string{s.relayID}, s.checker.Grantees(ctx, instance, auth.RoleTick, now)...)
	slices.Sort(seqs)
	return rest.JoinGrant{World: w.Alias, Instance: instance, Sequencer: s.relayID, Sequencers: slices.Compact(seqs), Chain: chain}, nil
}

// Status implements rest.Service.
func (s *Service) Status(ctx context.Context) (rest.Status, error) {
	now := s.clk.Now()
	st := rest.Status{Time: now.UTC().Format(time.RFC3339Nano), Uptime: now.Sub(s.started).Seconds(), Worlds: []rest.WorldStatus{}}
	if s.cfg.Peers != nil {
		st.Peers = s.cfg.Peers()
	}
	for _, w := range s.worlds.list() {
		hs, _ := s.host.Status(w.Instance)
		ls, err := s.log.State(ctx, w.Instance)
		if err != nil {
			return rest.Status{}, err
		}
		n := s.m.numbers(w.Instance, now)
		id := w.Instance
		if w.Alias != "" {
			id = w.Alias
		}
		ws := rest.WorldStatus{ID: id, Instance: w.Instance, Private: w.Private, Seq: max(hs.Seq, ls.Head.Seq),
			TPS: w.TPS, TickRate: n.tickRate, Jitter: rest.Jitter{P50: n.p50, P99: n.p99}, MsgsPerS: n.msgsPerS,
			Peers: len(ls.Presence)}
		if ls.Meta != nil {
			ws.TPS = ls.Meta.TPS
		}
		if n.hasTick {
			ws.Time = n.last.Time()
		}
		st.Worlds = append(st.Worlds, ws)
	}
	return st, nil
}
