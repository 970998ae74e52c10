// Package resttest is an in-memory [rest.Service] for tests: real
// components where practical — a heartbeat.Host on a heartbeat.MemLog and
// MemLease, package auth's certificate checks, an injected clock — with
// plain maps where the relay keeps things in the graph (published
// certificates, members, aliases).
//
// Start with [New]. The host is stepped synchronously after every change,
// so a call returns once its effect is durable in the log; no goroutine
// runs in the background. [Service.Submit] sends a signed message as a
// client would, and [Service.Inject] makes a method fail, for tests of
// error answers.
package resttest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/krestianstvo/luminary/api/rest"
	"github.com/krestianstvo/luminary/auth"
	"github.com/krestianstvo/luminary/heartbeat"
	"github.com/krestianstvo/luminary/internal/clock"
	"github.com/krestianstvo/luminary/keys"
)

// Service implements [rest.Service] in memory.
type Service struct {
	relay   *keys.Private
	clk     clock.Clock
	log     *heartbeat.MemLog
	host    *heartbeat.Host
	checker *auth.Checker
	started time.Time

	mu      sync.Mutex
	worlds  map[string]*world // by instance
	order   []string
	aliases map[string]string // alias → instance
	certs   map[string][]*auth.Cert
	members map[string]map[string]bool
	inject  map[string]error
}

type world struct {
	spec  rest.WorldSpec
	owner *keys.Private // set when the relay holds the owner key
}

var _ rest.Service = (*Service)(nil)

// New returns an empty service whose sequencer signs with relay and runs
// on clk. Leases last a day of clk time, so tests may move the clock
// without losing the sequencer.
func New(relay *keys.Private, clk clock.Clock) (*Service, error) {
	s := &Service{relay: relay, clk: clk, log: heartbeat.NewMemLog(), started: clk.Now(),
		worlds: map[string]*world{}, aliases: map[string]string{}, certs: map[string][]*auth.Cert{},
		members: map[string]map[string]bool{}, inject: map[string]error{}}
	ch, err := auth.New(auth.Config{Clock: clk})
	if err != nil {
		return nil, err
	}
	s.checker = ch
	s.host, err = heartbeat.NewHost(heartbeat.HostConfig{
		Signer: heartbeat.KeySigner(relay),
		Log:    s.log,
		Lease:  heartbeat.NewMemLease(clk),
		Clock:  clk,
		Authorizer: heartbeat.AuthorizerFunc(func(ctx context.Context, inst, key string, role heartbeat.Role, at time.Time) error {
			return s.authorize(ctx, inst, key, auth.Role(role), at)
		}),
		LeaseTTL: 24 * time.Hour,
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Log returns the heartbeat log the host writes.
func (s *Service) Log() *heartbeat.MemLog { return s.log }

// Host returns the sequencer.
func (s *Service) Host() *heartbeat.Host { return s.host }

// Inject makes the named method (e.g. "Status") fail with err until
// cleared with a nil err. "ExportMidway" makes Export fail after writing
// the history (a stream cut short).
func (s *Service) Inject(method string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		delete(s.inject, method)
		return
	}
	s.inject[method] = err
}

func (s *Service) injected(method string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inject[method]
}

// AddMember lists key as a member of a private world.
func (s *Service) AddMember(instance, key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.members[instance] == nil {
		s.members[instance] = map[string]bool{}
	}
	s.members[instance][key] = true
}

// step runs the host until it has no queued work.
func (s *Service) step() error {
	for range 8 {
		next, err := s.host.Step(context.Background())
		if err != nil {
			return err
		}
		if next > 0 {
			return nil
		}
	}
	return nil
}

// chains returns the certificate chains (depth 1 or 2) in instance that
// end at a certificate for key (or for every key).
func (s *Service) chains(instance, key string) [][]*auth.Cert {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := s.certs[instance]
	var out [][]*auth.Cert
	for _, leaf := range cs {
		if leaf.Subject != key && leaf.Subject != auth.AnySubject {
			continue
		}
		if leaf.Issuer == instance {
			out = append(out, []*auth.Cert{leaf})
			continue
		}
		for _, c := range cs {
			if c.Subject == leaf.Issuer && c.Issuer == instance {
				out = append(out, []*auth.Cert{c, leaf})
			}
		}
	}
	return out
}

// authorize asks auth whether key holds role in instance, trying every
// chain known for key.
func (s *Service) authorize(ctx context.Context, instance, key string, role auth.Role, at time.Time) error {
	if key == instance {
		return s.checker.Authorize(ctx, instance, key, role, at)
	}
	var first error
	for _, ch := range s.chains(instance, key) {
		err := s.checker.Authorize(ctx, instance, key, role, at, ch...)
		if err == nil {
			return nil
		}
		if first == nil {
			first = err
		}
	}
	if first == nil {
		first = fmt.Errorf("%w: %s holds no %s certificate in %s", rest.ErrForbidden, key, role, instance)
	}
	return first
}

// addCerts remembers certificates (once per serial).
func (s *Service) addCerts(instance string, chain []*auth.Cert) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range chain {
		if !slices.ContainsFunc(s.certs[instance], func(o *auth.Cert) bool { return o.Serial == c.Serial }) {
			s.certs[instance] = append(s.certs[instance], c)
		}
	}
}

// CreateWorld implements [rest.Service].
func (s *Service) CreateWorld(ctx context.Context, spec rest.WorldSpec) (rest.WorldInfo, error) {
	if err := s.injected("CreateWorld"); err != nil {
		return rest.WorldInfo{}, err
	}
	w := &world{spec: spec}
	now := s.clk.Now()
	if spec.Instance == "" {
		owner, err := keys.Generate(keys.Secp256k1)
		if err != nil {
			return rest.WorldInfo{}, err
		}
		w.owner, w.spec.Instance = owner, owner.Public().String()
		c, err := auth.IssueCert(owner, auth.Cert{Instance: w.spec.Instance, Subject: s.relay.Public().String(),
			Roles: []auth.Role{auth.RoleTick, auth.RoleAdmin}, Expiry: now.Add(10 * 365 * 24 * time.Hour)})
		if err != nil {
			return rest.WorldInfo{}, err
		}
		w.spec.Chain = []*auth.Cert{c}
	}
	inst := w.spec.Instance
	s.mu.Lock()
	_, exists := s.worlds[inst]
	_, aliasTaken := s.aliases[spec.Alias]
	s.mu.Unlock()
	if exists {
		return rest.WorldInfo{}, fmt.Errorf("%w: world %s is hosted already", rest.ErrConflict, inst)
	}
	if spec.Alias != "" && aliasTaken {
		return rest.WorldInfo{}, fmt.Errorf("%w: alias %q is taken", rest.ErrConflict, spec.Alias)
	}
	for _, c := range w.spec.Chain {
		if err := c.VerifySignature(); err != nil {
			return rest.WorldInfo{}, fmt.Errorf("%w: %v", rest.ErrInvalid, err)
		}
	}
	s.addCerts(inst, w.spec.Chain)
	if err := s.authorize(ctx, inst, s.relay.Public().String(), auth.RoleTick, now); err != nil {
		return rest.WorldInfo{}, fmt.Errorf("%w: the relay key holds no tick certificate for this world: %v", rest.ErrInvalid, err)
	}
	if err := s.host.Add(heartbeat.InstanceConfig{Instance: inst, Name: spec.Name, Rate: spec.Rate, TPS: spec.TPS}); err != nil {
		return rest.WorldInfo{}, err
	}
	s.mu.Lock()
	s.worlds[inst] = w
	s.order = append(s.order, inst)
	if spec.Alias != "" {
		s.aliases[spec.Alias] = inst
	}
	s.mu.Unlock()
	if err := s.step(); err != nil {
		return rest.WorldInfo{}, err
	}
	return s.info(ctx, inst)
}

func (s *Service) lookup(ref string) (*world, string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if inst, ok := s.aliases[ref]; ok {
		ref = inst
	}
	w, ok := s.worlds[ref]
	return w, ref, ok
}

// info builds a world's info from the host and the log.
func (s *Service) info(ctx context.Context, inst string) (rest.WorldInfo, error) {
	w, _, ok := s.lookup(inst)
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
	id := inst
	if w.spec.Alias != "" {
		id = w.spec.Alias
	}
	nowState := float64(s.clk.Now().UnixMicro()) / 1000
	info := rest.WorldInfo{ID: id, Instance: inst, Alias: w.spec.Alias, Name: meta.Name, Owner: inst,
		Rate: meta.Rate, TPS: meta.TPS, Private: w.spec.Private, Open: w.spec.Open, Created: meta.Created,
		Start: meta.Start, Seq: st.Head.Seq, Present: len(st.Presence), Members: s.memberList(inst)}
	if meta.Start > 0 && nowState > meta.Start {
		info.Time = heartbeat.VTime(nowState, meta.Start, meta.Rate)
	}
	if hs.Active {
		info.Metronome = rest.Metronome{Sequencer: s.relay.Public().String(), Epoch: hs.Epoch, Local: true}
	} else {
		info.Metronome.Epoch = st.Head.Epoch
	}
	return info, nil
}

// memberList is the sorted set of listed members and certificate
// subjects.
func (s *Service) memberList(inst string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for k := range s.members[inst] {
		out = append(out, k)
	}
	for _, c := range s.certs[inst] {
		if c.Subject != auth.AnySubject {
			out = append(out, c.Subject)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// ListWorlds implements [rest.Service].
func (s *Service) ListWorlds(ctx context.Context) ([]rest.WorldInfo, error) {
	if err := s.injected("ListWorlds"); err != nil {
		return nil, err
	}
	s.mu.Lock()
	order := slices.Clone(s.order)
	s.mu.Unlock()
	out := make([]rest.WorldInfo, 0, len(order))
	for _, inst := range order {
		wi, err := s.info(ctx, inst)
		if err != nil {
			return nil, err
		}
		out = append(out, wi)
	}
	return out, nil
}

// World implements [rest.Service].
func (s *Service) World(ctx context.Context, ref string) (rest.WorldInfo, error) {
	if err := s.injected("World"); err != nil {
		return rest.WorldInfo{}, err
	}
	_, inst, ok := s.lookup(ref)
	if !ok {
		return rest.WorldInfo{}, fmt.Errorf("%w: no world %q", rest.ErrNotFound, ref)
	}
	return s.info(ctx, inst)
}

// Presence implements [rest.Service].
func (s *Service) Presence(ctx context.Context, instance string) ([]string, error) {
	if err := s.injected("Presence"); err != nil {
		return nil, err
	}
	st, err := s.log.State(ctx, instance)
	if err != nil {
		return nil, err
	}
	return st.Presence, nil
}

// History implements [rest.Service].
func (s *Service) History(ctx context.Context, instance string, q rest.HistoryQuery) (rest.HistoryPage, error) {
	if err := s.injected("History"); err != nil {
		return rest.HistoryPage{}, err
	}
	st, err := s.log.State(ctx, instance)
	if err != nil {
		return rest.HistoryPage{}, err
	}
	var p heartbeat.Page
	switch {
	case q.ByTime:
		p, err = s.log.ReadByTime(ctx, instance, q.FromState, q.ToState, q.Limit)
	case q.To != 0 && q.To < q.From:
	default:
		n := uint64(q.Limit)
		if q.To != 0 {
			n = min(n, q.To-q.From+1)
		}
		p, err = s.log.Read(ctx, instance, q.From, int(n))
	}
	if err != nil {
		return rest.HistoryPage{}, err
	}
	return rest.HistoryPage{Entries: p.Entries, Ticks: p.Ticks, Head: st.Head.Seq}, nil
}

// Export implements [rest.Service].
func (s *Service) Export(ctx context.Context, instance string, w io.Writer, opt heartbeat.ExportOptions) error {
	if err := s.injected("Export"); err != nil {
		return err
	}
	if err := s.injected("ExportMidway"); err != nil {
		// A failure after the history was written (a cut stream).
		if e := heartbeat.Export(ctx, s.log, instance, w, opt); e != nil {
			return e
		}
		return err
	}
	return heartbeat.Export(ctx, s.log, instance, w, opt)
}

// VerifyHistory implements [rest.Service].
func (s *Service) VerifyHistory(ctx context.Context, r io.Reader) (*heartbeat.Report, error) {
	if err := s.injected("VerifyHistory"); err != nil {
		return nil, err
	}
	return heartbeat.VerifyHistory(r, heartbeat.VerifyOptions{})
}

// VerifyMessage implements [rest.Service].
func (s *Service) VerifyMessage(ctx context.Context, m heartbeat.Message) (rest.MessageReport, error) {
	if err := s.injected("VerifyMessage"); err != nil {
		return rest.MessageReport{}, err
	}
	return rest.ReportMessage(ctx, s.log, heartbeat.KeyVerifier(nil), m)
}

// IssueCert implements [rest.Service]: signed with the owner key when the
// relay holds it, else with the relay key under its admin certificate.
func (s *Service) IssueCert(ctx context.Context, instance string, tmpl auth.Cert) ([]*auth.Cert, error) {
	if err := s.injected("IssueCert"); err != nil {
		return nil, err
	}
	w, _, ok := s.lookup(instance)
	if !ok {
		return nil, fmt.Errorf("%w: no world %s", rest.ErrNotFound, instance)
	}
	var chain []*auth.Cert
	signer := w.owner
	if signer == nil {
		relay := s.relay.Public().String()
		for _, ch := range s.chains(instance, relay) {
			if s.checker.Authorize(ctx, instance, relay, auth.RoleAdmin, s.clk.Now(), ch...) == nil {
				chain = ch
				break
			}
		}
		if chain == nil {
			return nil, fmt.Errorf("%w: the relay holds no admin certificate for this world", rest.ErrForbidden)
		}
		signer = s.relay
	}
	c, err := auth.IssueCert(signer, tmpl)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", rest.ErrInvalid, err)
	}
	chain = append(slices.Clone(chain), c)
	s.addCerts(instance, []*auth.Cert{c})
	return chain, nil
}

// PublishCert implements [rest.Service]: the chain must prove every role
// of its last certificate (auth's rules, by the service clock).
func (s *Service) PublishCert(ctx context.Context, instance string, chain []*auth.Cert) error {
	if err := s.injected("PublishCert"); err != nil {
		return err
	}
	if _, _, ok := s.lookup(instance); !ok {
		return fmt.Errorf("%w: no world %s", rest.ErrNotFound, instance)
	}
	if len(chain) == 0 {
		return fmt.Errorf("%w: empty chain", rest.ErrInvalid)
	}
	leaf := chain[len(chain)-1]
	writer := leaf.Subject
	if writer == auth.AnySubject {
		writer = s.relay.Public().String()
	}
	for _, r := range leaf.Roles {
		if err := s.checker.Authorize(ctx, instance, writer, r, s.clk.Now(), chain...); err != nil {
			return err
		}
	}
	s.addCerts(instance, chain)
	return nil
}

// Authorize implements [rest.Service].
func (s *Service) Authorize(ctx context.Context, instance, key string, role auth.Role) error {
	if err := s.injected("Authorize"); err != nil {
		return err
	}
	return s.authorize(ctx, instance, key, role, s.clk.Now())
}

// Member implements [rest.Service].
func (s *Service) Member(ctx context.Context, instance, key string) (bool, error) {
	if err := s.injected("Member"); err != nil {
		return false, err
	}
	if key == instance {
		return true, nil
	}
	s.mu.Lock()
	listed := s.members[instance][key]
	s.mu.Unlock()
	if listed {
		return true, nil
	}
	for _, ch := range s.chains(instance, key) {
		if ch[len(ch)-1].Subject == key {
			return true, nil
		}
	}
	return false, nil
}

// Join implements [rest.Service].
func (s *Service) Join(ctx context.Context, instance, pub string) (rest.JoinGrant, error) {
	if err := s.injected("Join"); err != nil {
		return rest.JoinGrant{}, err
	}
	w, _, ok := s.lookup(instance)
	if !ok {
		return rest.JoinGrant{}, fmt.Errorf("%w: no world %s", rest.ErrNotFound, instance)
	}
	if !w.spec.Open {
		return rest.JoinGrant{}, fmt.Errorf("%w: this world is not open for joining", rest.ErrForbidden)
	}
	now := s.clk.Now()
	chain, err := s.IssueCert(ctx, instance, auth.Cert{Instance: instance, Subject: pub,
		Roles: []auth.Role{auth.RoleMessage}, NotBefore: now.Add(-time.Minute), Expiry: now.Add(24 * time.Hour)})
	if err != nil {
		return rest.JoinGrant{}, err
	}
	done := make(chan error, 1)
	s.host.Join(ctx, instance, pub, "", func(_ heartbeat.Receipt, err error) { done <- err })
	if err := s.step(); err != nil {
		return rest.JoinGrant{}, err
	}
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, heartbeat.ErrDuplicate) {
			return rest.JoinGrant{}, err
		}
	case <-ctx.Done():
		return rest.JoinGrant{}, ctx.Err()
	}
	return rest.JoinGrant{Instance: instance, Sequencer: s.relay.Public().String(), Sequencers: []string{s.relay.Public().String()}, Chain: chain}, nil
}

// Status implements [rest.Service].
func (s *Service) Status(ctx context.Context) (rest.Status, error) {
	if err := s.injected("Status"); err != nil {
		return rest.Status{}, err
	}
	ws, err := s.ListWorlds(ctx)
	if err != nil {
		return rest.Status{}, err
	}
	now := s.clk.Now()
	st := rest.Status{Time: now.UTC().Format(time.RFC3339Nano), Uptime: now.Sub(s.started).Seconds(), Worlds: []rest.WorldStatus{}}
	for _, w := range ws {
		st.Peers += w.Present
		st.Worlds = append(st.Worlds, rest.WorldStatus{ID: w.ID, Instance: w.Instance, Private: w.Private,
			Time: w.Time, Seq: w.Seq, TPS: w.TPS, TickRate: float64(w.TPS), MsgsPerS: 0, Peers: w.Present})
	}
	return st, nil
}

// Submit signs payload as author and sends it to instance, as a client
// would over the wire; it returns the receipt once the message is durable.
func (s *Service) Submit(ctx context.Context, author *keys.Private, instance, payload string) (heartbeat.Receipt, error) {
	var nonce [12]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return heartbeat.Receipt{}, err
	}
	m := heartbeat.Message{Instance: instance, TS: s.clk.Now().UnixMilli(), Nonce: base64.RawURLEncoding.EncodeToString(nonce[:]), Payload: payload}
	if err := m.Sign(heartbeat.KeySigner(author)); err != nil {
		return heartbeat.Receipt{}, err
	}
	return s.SubmitMessage(ctx, m)
}

// SubmitMessage sends a signed message and waits for its receipt.
func (s *Service) SubmitMessage(ctx context.Context, m heartbeat.Message) (heartbeat.Receipt, error) {
	type res struct {
		r   heartbeat.Receipt
		err error
	}
	ch := make(chan res, 1)
	s.host.Submit(ctx, m, func(r heartbeat.Receipt, err error) { ch <- res{r, err} })
	if err := s.step(); err != nil {
		return heartbeat.Receipt{}, err
	}
	select {
	case x := <-ch:
		return x.r, x.err
	case <-ctx.Done():
		return heartbeat.Receipt{}, ctx.Err()
	}
}
