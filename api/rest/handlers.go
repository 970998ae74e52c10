package rest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"github.com/krestianstvo/luminary/auth"
	"github.com/krestianstvo/luminary/heartbeat"
	"github.com/krestianstvo/luminary/keys"
)

// Limits on fields of requests.
const (
	maxRef   = 128 // world reference (instance id or alias)
	maxAlias = 64
	maxName  = 256
	minRate  = 1.0 / 64
	maxRate  = 64
	maxTPS   = 60
	maxSafe  = 1 << 53
)

// --- info ------------------------------------------------------------------

// ownFeatures are what this package serves.
var ownFeatures = []string{"rest-api", "signed-requests", "worlds", "presence", "history", "export",
	"provenance", "certificates", "user-keys", "join", "status", "status-stream"}

type infoDoc struct {
	Software    string            `json:"software"`
	Version     string            `json:"version"`
	Name        string            `json:"name"`
	Description string            `json:"description"`
	Relay       string            `json:"relay"`
	Curve       string            `json:"curve"`
	Features    []string          `json:"features"`
	Endpoints   map[string]string `json:"endpoints"`
	Auth        authDoc           `json:"auth"`
	Limits      map[string]int64  `json:"limits"`
}

type authDoc struct {
	Scheme  string   `json:"scheme"`
	Label   string   `json:"label"`
	Headers []string `json:"headers"`
	Window  int64    `json:"window_s"`
}

func (a *API) wellKnown(w http.ResponseWriter, c *call) error {
	i := a.cfg.Info
	features := slices.Clone(ownFeatures)
	for _, f := range i.Features {
		if !slices.Contains(features, f) {
			features = append(features, f)
		}
	}
	limits := map[string]int64{
		"max_body_bytes":      a.cfg.MaxBodyBytes,
		"max_verify_bytes":    a.cfg.MaxVerifyBytes,
		"max_history_limit":   int64(a.cfg.MaxHistoryLimit),
		"auth_window_s":       int64(a.cfg.AuthWindow / time.Second),
		"max_cert_validity_s": int64(a.cfg.MaxCertValidity / time.Second),
		"min_password_bytes":  int64(a.cfg.MinPasswordBytes),
		"max_password_bytes":  MaxPasswordBytes,
	}
	for k, v := range i.Limits {
		if _, ok := limits[k]; !ok {
			limits[k] = v
		}
	}
	version := i.Version
	if version == "" {
		version = "unknown"
	}
	a.writeJSON(w, http.StatusOK, infoDoc{
		Software: "luminary", Version: version, Name: i.Name, Description: i.Description,
		Relay: a.relay, Curve: a.cfg.Keys.Curve().String(), Features: features,
		Endpoints: map[string]string{"gun": "/gun", "api": "/api", "openapi": "/openapi.yaml", "status": "/status"},
		Auth: authDoc{Scheme: "luminary-signature", Label: SignatureLabel,
			Headers: []string{HeaderKey, HeaderDate, HeaderNonce, HeaderSignature}, Window: int64(a.cfg.AuthWindow / time.Second)},
		Limits: limits,
	})
	return nil
}

// --- worlds ----------------------------------------------------------------

// validRef reports whether s can name a world in a path: 1 to 128
// characters of base64url, ':' and '.', not starting with '.'. Instance
// ids (key texts) and aliases fit; "..", "%2e", "/" and NUL never do.
func validRef(s string) bool {
	if len(s) == 0 || len(s) > maxRef || s[0] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == ':' || c == '.') {
			return false
		}
	}
	return true
}

func validAlias(s string) bool {
	if len(s) == 0 || len(s) > maxAlias {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// world resolves the {world} path parameter.
func (a *API) world(c *call) (WorldInfo, error) {
	// chi hands over the segment as sent (escaped); clients may escape
	// ':' (JavaScript's encodeURIComponent does). Unescape, then validate,
	// so "%2e%2e", "%2f" and "%00" are judged as what they mean.
	ref, err := url.PathUnescape(chi.URLParam(c.r, "world"))
	if err != nil || !validRef(ref) {
		return WorldInfo{}, fail(CodeInvalid, "world must be an instance id or alias (letters, digits, '-', '_', ':', '.')")
	}
	w, err := a.svc.World(c.ctx, ref)
	if err != nil {
		return WorldInfo{}, err
	}
	if w.Members == nil {
		w.Members = []string{}
	}
	return w, nil
}

// readableWorld resolves {world} and checks the caller may read it.
func (a *API) readableWorld(c *call) (WorldInfo, error) {
	w, err := a.world(c)
	if err != nil {
		return w, err
	}
	return w, a.canRead(c, w)
}

type worldList struct {
	Worlds []WorldInfo `json:"worlds"`
}

func (a *API) listWorlds(w http.ResponseWriter, c *call) error {
	if err := noQuery(c); err != nil {
		return err
	}
	all, err := a.svc.ListWorlds(c.ctx)
	if err != nil {
		return err
	}
	out := make([]WorldInfo, 0, len(all))
	for _, wi := range all {
		if wi.Private && a.canRead(c, wi) != nil {
			continue
		}
		if wi.Members == nil {
			wi.Members = []string{}
		}
		out = append(out, wi)
	}
	a.writeJSON(w, http.StatusOK, worldList{out})
	return nil
}

func (a *API) createWorld(w http.ResponseWriter, c *call) error {
	m, err := bodyMembers(c)
	if err != nil {
		return err
	}
	var spec WorldSpec
	spec.Instance = m.str("instance", false)
	spec.Alias = m.str("alias", false)
	spec.Name = m.str("name", false)
	rate, hasRate := m.num("rate", false)
	tps, hasTPS := m.int("tps", false)
	spec.Private = m.boolean("private")
	spec.Open = m.boolean("open")
	spec.Chain = m.certs("chain")
	if e := m.done(); e != nil {
		return e
	}
	if spec.Instance != "" {
		k, err := keys.ParsePublic(spec.Instance)
		if err != nil {
			return fail(CodeInvalid, "instance: "+err.Error())
		}
		spec.Instance = k.String()
	}
	switch {
	case spec.Alias != "" && !validAlias(spec.Alias):
		return fail(CodeInvalid, "alias must be 1 to 64 of a-z, 0-9 and '-'")
	case len(spec.Name) > maxName || strings.ContainsRune(spec.Name, 0):
		return fail(CodeInvalid, "name must be at most 256 bytes without NUL")
	case hasRate && (rate < minRate || rate > maxRate):
		return fail(CodeInvalid, "rate must be in [1/64, 64]")
	case hasTPS && (tps < 1 || tps > maxTPS):
		return fail(CodeInvalid, "tps must be in [1, 60]")
	case spec.Private && spec.Open:
		return fail(CodeInvalid, "a world cannot be both private and open")
	}
	for _, cert := range spec.Chain {
		if spec.Instance == "" || cert.Instance != spec.Instance {
			return fail(CodeInvalid, "chain: certificates must be for the instance being hosted")
		}
	}
	spec.Rate, spec.TPS = rate, int(tps)
	if spec.Rate == 0 {
		spec.Rate = 1
	}
	if spec.TPS == 0 {
		spec.TPS = 20
	}
	owner := spec.Instance != "" && c.signer.String() == spec.Instance
	if !a.isRelayAdmin(c.signer) && !(a.cfg.OpenHosting && owner) {
		return fail(CodeForbidden, "only relay admins may host worlds here")
	}
	info, err := a.svc.CreateWorld(c.ctx, spec)
	if err != nil {
		return err
	}
	if info.Members == nil {
		info.Members = []string{}
	}
	w.Header().Set("Location", "/api/worlds/"+url.PathEscape(info.ID))
	a.writeJSON(w, http.StatusCreated, info)
	return nil
}

func (a *API) worldInfo(w http.ResponseWriter, c *call) error {
	if err := noQuery(c); err != nil {
		return err
	}
	wi, err := a.readableWorld(c)
	if err != nil {
		return err
	}
	a.writeJSON(w, http.StatusOK, wi)
	return nil
}

type presenceDoc struct {
	World    string   `json:"world"`
	Instance string   `json:"instance"`
	Count    int      `json:"count"`
	Clients  []string `json:"clients"`
}

func (a *API) presence(w http.ResponseWriter, c *call) error {
	if err := noQuery(c); err != nil {
		return err
	}
	wi, err := a.readableWorld(c)
	if err != nil {
		return err
	}
	cl, err := a.svc.Presence(c.ctx, wi.Instance)
	if err != nil {
		return err
	}
	if cl == nil {
		cl = []string{}
	}
	a.writeJSON(w, http.StatusOK, presenceDoc{World: wi.ID, Instance: wi.Instance, Count: len(cl), Clients: cl})
	return nil
}

// --- history ---------------------------------------------------------------

// query reads the query string strictly: only the named parameters, each
// at most once.
func query(c *call, allowed ...string) (url.Values, error) {
	q, err := url.ParseQuery(c.r.URL.RawQuery)
	if err != nil {
		return nil, fail(CodeInvalid, "query string does not parse")
	}
	for k, v := range q {
		if !slices.Contains(allowed, k) {
			return nil, fail(CodeInvalid, "unknown query parameter "+quote(k))
		}
		if len(v) > 1 {
			return nil, fail(CodeInvalid, "query parameter "+quote(k)+" given more than once")
		}
	}
	return q, nil
}

func noQuery(c *call) error {
	_, err := query(c)
	return err
}

func seqParam(q url.Values, k string) (uint64, bool, error) {
	s := q.Get(k)
	if s == "" {
		return 0, false, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > maxSafe {
		return 0, false, fail(CodeInvalid, k+" must be a whole number from 0 to 2^53")
	}
	return n, true, nil
}

func timeParam(q url.Values, k string) (float64, bool, error) {
	s := q.Get(k)
	if s == "" {
		return 0, false, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
		return 0, false, fail(CodeInvalid, k+" must be a finite, non-negative number of seconds")
	}
	return f, true, nil
}

type historyDoc struct {
	World    string            `json:"world"`
	Instance string            `json:"instance"`
	Head     uint64            `json:"head"`
	Entries  []heartbeat.Entry `json:"entries"`
	Ticks    []heartbeat.Tick  `json:"ticks"`
	Next     uint64            `json:"next,omitempty"`
}

func (a *API) history(w http.ResponseWriter, c *call) error {
	q, err := query(c, "from", "to", "from_time", "to_time", "limit")
	if err != nil {
		return err
	}
	from, _, err := seqParam(q, "from")
	if err != nil {
		return err
	}
	to, _, err := seqParam(q, "to")
	if err != nil {
		return err
	}
	ft, hasFT, err := timeParam(q, "from_time")
	if err != nil {
		return err
	}
	tt, hasTT, err := timeParam(q, "to_time")
	if err != nil {
		return err
	}
	limit := uint64(DefaultHistoryLimit)
	if l, ok, err := seqParam(q, "limit"); err != nil {
		return err
	} else if ok {
		if l < 1 || l > uint64(a.cfg.MaxHistoryLimit) {
			return fail(CodeInvalid, fmt.Sprintf("limit must be in [1, %d]", a.cfg.MaxHistoryLimit))
		}
		limit = l
	}
	limit = min(limit, uint64(a.cfg.MaxHistoryLimit))
	byTime := hasFT || hasTT
	switch {
	case byTime && (q.Has("from") || q.Has("to")):
		return fail(CodeInvalid, "give a seq range (from, to) or a time range (from_time, to_time), not both")
	case to != 0 && from > to:
		return fail(CodeInvalid, "from must not exceed to")
	case hasFT && hasTT && ft > tt:
		return fail(CodeInvalid, "from_time must not exceed to_time")
	}
	wi, err := a.readableWorld(c)
	if err != nil {
		return err
	}
	hq := HistoryQuery{From: max(from, 1), To: to, Limit: int(limit)}
	if byTime && !(wi.Rate > 0) {
		return fmt.Errorf("rest: world %s has rate %v", wi.Instance, wi.Rate)
	}
	if byTime {
		// Croquet time t (seconds) is state start + t·1000/rate (ms).
		hq = HistoryQuery{ByTime: true, FromState: wi.Start + ft*1000/wi.Rate, ToState: math.MaxFloat64, Limit: int(limit)}
		if hasTT {
			hq.ToState = wi.Start + tt*1000/wi.Rate
		}
	}
	page, err := a.svc.History(c.ctx, wi.Instance, hq)
	if err != nil {
		return err
	}
	doc := historyDoc{World: wi.ID, Instance: wi.Instance, Head: page.Head, Entries: page.Entries, Ticks: page.Ticks}
	if doc.Entries == nil {
		doc.Entries = []heartbeat.Entry{}
	}
	if doc.Ticks == nil {
		doc.Ticks = []heartbeat.Tick{}
	}
	if n := len(page.Entries); n > 0 && n >= int(limit) {
		last := page.Entries[n-1].Seq
		if last < page.Head && (byTime || to == 0 || last < to) {
			doc.Next = last + 1
		}
	}
	a.writeJSON(w, http.StatusOK, doc)
	return nil
}

// trackWriter notes whether anything was written, so a failure before the
// first byte can still be answered as a JSON error.
type trackWriter struct {
	http.ResponseWriter
	wrote bool
}

func (t *trackWriter) Write(p []byte) (int, error) {
	if !t.wrote {
		t.wrote = true
		t.ResponseWriter.WriteHeader(http.StatusOK)
	}
	return t.ResponseWriter.Write(p)
}

func (a *API) export(w http.ResponseWriter, c *call) error {
	q, err := query(c, "from", "to")
	if err != nil {
		return err
	}
	from, _, err := seqParam(q, "from")
	if err != nil {
		return err
	}
	to, _, err := seqParam(q, "to")
	if err != nil {
		return err
	}
	if to != 0 && from > to {
		return fail(CodeInvalid, "from must not exceed to")
	}
	wi, err := a.readableWorld(c)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Content-Disposition", `attachment; filename="history.jsonl"`)
	tw := &trackWriter{ResponseWriter: w}
	err = a.svc.Export(c.ctx, wi.Instance, tw, heartbeat.ExportOptions{From: from, To: to})
	if err != nil && !tw.wrote {
		return err
	}
	if err != nil {
		// 200 is sent and part of the history with it: end the response
		// without its terminating chunk, so that the client sees a cut
		// stream rather than a shorter history that verifies.
		a.cfg.Logger.Warn("rest: export cut short", "err", err)
		panic(http.ErrAbortHandler)
	}
	if !tw.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return nil
}

// --- verification ----------------------------------------------------------

func (a *API) verifyMessage(w http.ResponseWriter, c *call) error {
	m, err := queryFreeBody(c)
	if err != nil {
		return err
	}
	m.str("instance", true)
	m.str("author", true)
	m.num("ts", true)
	m.str("nonce", false)
	m.str("payload", true)
	m.str("sig", true)
	m.str("id", false)
	if e := m.done(); e != nil {
		return e
	}
	msg, err := heartbeat.ParseMessage(c.body)
	if err != nil {
		return fail(CodeInvalid, heartbeat.Reason(err))
	}
	rep, err := a.svc.VerifyMessage(c.ctx, msg)
	if err != nil {
		return err
	}
	if rep.Sequenced {
		// Where a private world's message sits is for its members only.
		wi, err := a.svc.World(c.ctx, msg.Instance)
		if err == nil && a.canRead(c, wi) != nil {
			rep.Sequenced, rep.Seq, rep.Epoch, rep.State, rep.Time = false, 0, 0, 0, 0
		}
	}
	a.writeJSON(w, http.StatusOK, rep)
	return nil
}

type historyReport struct {
	Valid      bool            `json:"valid"`
	Defect     *defectDoc      `json:"defect,omitempty"`
	Meta       *heartbeat.Meta `json:"meta,omitempty"`
	From       uint64          `json:"from"`
	To         uint64          `json:"to"`
	Entries    int             `json:"entries"`
	Messages   int             `json:"messages"`
	Ticks      int             `json:"ticks"`
	FirstTime  float64         `json:"first_time_s"`
	LastTime   float64         `json:"last_time_s"`
	Epochs     []epochDoc      `json:"epochs"`
	Provenance []provenanceDoc `json:"provenance,omitempty"`
}

type defectDoc struct {
	Line   int    `json:"line"`
	Seq    uint64 `json:"seq"`
	Reason string `json:"reason"`
}

type epochDoc struct {
	Epoch  uint64  `json:"epoch"`
	Holder string  `json:"holder"`
	Seq    uint64  `json:"seq"`
	Time   float64 `json:"time_s"`
}

type provenanceDoc struct {
	Seq    uint64  `json:"seq"`
	Kind   string  `json:"kind"`
	Author string  `json:"author,omitempty"`
	ID     string  `json:"id,omitempty"`
	TS     int64   `json:"ts,omitempty"`
	Bytes  int     `json:"bytes"`
	Time   float64 `json:"time_s"`
}

func (a *API) verifyHistory(w http.ResponseWriter, c *call) error {
	q, err := query(c, "provenance")
	if err != nil {
		return err
	}
	withProv := true
	switch q.Get("provenance") {
	case "", "true":
	case "false":
		withProv = false
	default:
		return fail(CodeInvalid, "provenance must be true or false")
	}
	if len(c.body) == 0 {
		return fail(CodeInvalid, "empty history")
	}
	if !a.verifyJobs.try() {
		w.Header().Set("Retry-After", "1")
		return fail(CodeRateLimited, "the relay is verifying other histories; retry shortly")
	}
	defer a.verifyJobs.release()
	rep, err := a.svc.VerifyHistory(c.ctx, bytes.NewReader(c.body))
	if rep == nil {
		if err == nil {
			err = fmt.Errorf("rest: VerifyHistory returned no report")
		}
		return err
	}
	if err != nil && rep.Defect == nil {
		return err
	}
	out := historyReport{Valid: rep.Defect == nil, From: rep.From, To: rep.To, Entries: rep.Entries,
		Messages: rep.Messages, Ticks: rep.Ticks, Epochs: []epochDoc{}}
	if rep.Meta.Instance != "" {
		meta := rep.Meta
		out.Meta = &meta
		out.FirstTime = heartbeat.VTime(rep.FirstState, meta.Start, meta.Rate)
		out.LastTime = heartbeat.VTime(rep.LastState, meta.Start, meta.Rate)
		if rep.Entries == 0 {
			out.FirstTime, out.LastTime = 0, 0
		}
	}
	if d := rep.Defect; d != nil {
		out.Defect = &defectDoc{Line: d.Line, Seq: d.Seq, Reason: heartbeat.Reason(d.Err)}
	}
	for _, e := range rep.Epochs {
		out.Epochs = append(out.Epochs, epochDoc{Epoch: e.Epoch, Holder: e.Holder, Seq: e.Seq, Time: e.Time})
	}
	if withProv {
		out.Provenance = make([]provenanceDoc, 0, len(rep.Provenance))
		for _, p := range rep.Provenance {
			d := provenanceDoc{Seq: p.Seq, Kind: p.Kind.String(), Author: p.Author, TS: p.TS, Bytes: p.Bytes, Time: p.Time}
			if p.Kind == heartbeat.KindMessage {
				d.ID = p.ID.String()
			}
			out.Provenance = append(out.Provenance, d)
		}
	}
	a.writeJSON(w, http.StatusOK, out)
	return nil
}

// --- certificates ----------------------------------------------------------

type chainDoc struct {
	Chain []*auth.Cert `json:"chain"`
}

func (a *API) issueCert(w http.ResponseWriter, c *call) error {
	if err := noQuery(c); err != nil {
		return err
	}
	wi, err := a.world(c)
	if err != nil {
		return err
	}
	if err := a.requireWorldAdmin(c, wi); err != nil {
		return err
	}
	m, err := bodyMembers(c)
	if err != nil {
		return err
	}
	if _, signedCert := m.o.Get("cert"); signedCert {
		cert := m.cert("cert", true)
		chain := m.certs("chain")
		if e := m.done(); e != nil {
			return e
		}
		chain = append(chain, cert)
		for _, ct := range chain {
			if ct.Instance != wi.Instance {
				return fail(CodeInvalid, "certificate for another instance")
			}
			if err := ct.VerifySignature(); err != nil {
				return fail(CodeInvalid, err.Error())
			}
		}
		if err := a.svc.PublishCert(c.ctx, wi.Instance, chain); err != nil {
			return err
		}
		a.writeJSON(w, http.StatusCreated, chainDoc{chain})
		return nil
	}
	subject := m.str("subject", true)
	roleNames := m.strings("roles", true)
	nb, hasNB := m.int("not_before", false)
	exp, _ := m.int("expiry", true)
	serial := m.str("serial", false)
	if e := m.done(); e != nil {
		return e
	}
	if subject != auth.AnySubject {
		k, err := keys.ParsePublic(subject)
		if err != nil {
			return fail(CodeInvalid, "subject: "+err.Error())
		}
		subject = k.String()
	}
	tmpl := auth.Cert{Instance: wi.Instance, Subject: subject, Serial: serial, Expiry: time.UnixMilli(exp)}
	if hasNB && nb > 0 {
		tmpl.NotBefore = time.UnixMilli(nb)
	}
	for _, r := range roleNames {
		tmpl.Roles = append(tmpl.Roles, auth.Role(r))
	}
	nowMs := c.now.UnixMilli()
	switch {
	case exp <= nowMs:
		return fail(CodeInvalid, "expiry must lie in the future")
	case time.Duration(exp-nowMs)*time.Millisecond > a.cfg.MaxCertValidity:
		return fail(CodeInvalid, fmt.Sprintf("expiry is more than %s away", a.cfg.MaxCertValidity))
	case hasNB && nb >= exp:
		return fail(CodeInvalid, "not_before must be before expiry")
	}
	for i, r := range tmpl.Roles {
		if !r.Known() || slices.Contains(tmpl.Roles[:i], r) {
			return fail(CodeInvalid, "roles must be distinct ones of tick, message, snapshot, admin")
		}
	}
	if len(tmpl.Roles) == 0 {
		return fail(CodeInvalid, "roles must not be empty")
	}
	if subject == auth.AnySubject && tmpl.Has(auth.RoleAdmin) {
		return fail(CodeInvalid, `the admin role cannot be granted to "*"`)
	}
	chain, err := a.svc.IssueCert(c.ctx, wi.Instance, tmpl)
	if err != nil {
		return err
	}
	a.writeJSON(w, http.StatusCreated, chainDoc{chain})
	return nil
}

// --- join ------------------------------------------------------------------

func (a *API) join(w http.ResponseWriter, c *call) error {
	m, err := queryFreeBody(c)
	if err != nil {
		return err
	}
	pubText := m.str("pub", true)
	if e := m.done(); e != nil {
		return e
	}
	pub, err := keys.ParsePublic(pubText)
	if err != nil {
		return fail(CodeInvalid, "pub: "+err.Error())
	}
	wi, err := a.world(c)
	if err != nil {
		return err
	}
	if err := a.canRead(c, wi); err != nil {
		return err
	}
	g, err := a.svc.Join(c.ctx, wi.Instance, pub.String())
	if err != nil {
		return err
	}
	if g.World == "" {
		g.World = wi.ID
	}
	if g.Chain == nil {
		g.Chain = []*auth.Cert{}
	}
	a.writeJSON(w, http.StatusOK, g)
	return nil
}

// --- user keys -------------------------------------------------------------

type keyDoc struct {
	Pub     string `json:"pub"`
	Curve   string `json:"curve"`
	KeyFile string `json:"key_file"`
}

// newKey generates a key pair and answers it encrypted to the caller's
// password in the key file format of package keys. Nothing is stored; the
// password and the key are never logged, and the request body is cleared
// once read (Go strings decoded from it cannot be cleared).
func (a *API) newKey(w http.ResponseWriter, c *call) error {
	defer clear(c.body)
	m, err := queryFreeBody(c)
	if err != nil {
		return err
	}
	password := m.str("password", true)
	curveName := m.str("curve", false)
	if e := m.done(); e != nil {
		return e
	}
	curve := keys.Secp256k1
	if curveName != "" {
		cv, err := keys.ParseCurve(curveName)
		if err != nil {
			return fail(CodeInvalid, "curve must be secp256k1 or p256")
		}
		curve = cv
	}
	if n := len(password); n < a.cfg.MinPasswordBytes || n > MaxPasswordBytes {
		return fail(CodeInvalid, fmt.Sprintf("password must be %d to %d bytes", a.cfg.MinPasswordBytes, MaxPasswordBytes))
	}
	if !utf8.ValidString(password) {
		return fail(CodeInvalid, "password must be valid UTF-8")
	}
	if !a.keyJobs.try() {
		w.Header().Set("Retry-After", "1")
		return fail(CodeRateLimited, "the relay is busy making other keys; retry shortly")
	}
	defer a.keyJobs.release()
	priv, err := keys.Generate(curve)
	if err != nil {
		return err
	}
	pw := []byte(password)
	defer clear(pw)
	file, err := keys.EncryptKeyFile(priv, pw, keys.FileOptions{LogN: a.cfg.KeyLogN})
	if err != nil {
		return err
	}
	a.writeJSON(w, http.StatusCreated, keyDoc{Pub: priv.Public().String(), Curve: curve.String(), KeyFile: string(file)})
	return nil
}

// --- status ----------------------------------------------------------------

// statusFor returns the relay status with the worlds the caller may see:
// private worlds only for relay admins.
func (a *API) statusFor(c *call) (Status, error) {
	st, err := a.svc.Status(c.ctx)
	if err != nil {
		return st, err
	}
	admin := a.isRelayAdmin(c.signer)
	out := make([]WorldStatus, 0, len(st.Worlds))
	for _, ws := range st.Worlds {
		if ws.Private && !admin {
			continue
		}
		out = append(out, ws)
	}
	st.Worlds = out
	if st.Time == "" {
		st.Time = c.now.UTC().Format(time.RFC3339Nano)
	}
	return st, nil
}

func (a *API) status(w http.ResponseWriter, c *call) error {
	if err := noQuery(c); err != nil {
		return err
	}
	st, err := a.statusFor(c)
	if err != nil {
		return err
	}
	a.writeJSON(w, http.StatusOK, st)
	return nil
}

// statusStream sends the status as Server-Sent Events: one "data:" line of
// status JSON per event, every StatusEvery, until the client leaves or the
// API is closed.
func (a *API) statusStream(w http.ResponseWriter, c *call) error {
	if err := noQuery(c); err != nil {
		return err
	}
	select {
	case <-a.done:
		return fail(CodeUnavailable, "the relay is shutting down")
	default:
	}
	if !a.streams.try() {
		w.Header().Set("Retry-After", "5")
		return fail(CodeRateLimited, "too many status streams")
	}
	defer a.streams.release()
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	t := a.cfg.Clock.NewTicker(a.cfg.StatusEvery)
	defer t.Stop()
	started := false
	for {
		st, err := a.statusFor(c)
		if err != nil {
			if !started {
				return err
			}
			a.cfg.Logger.Warn("rest: status stream", "err", err)
			return nil
		}
		b, err := json.Marshal(st)
		if err != nil {
			return err
		}
		_ = rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if !started {
			w.WriteHeader(http.StatusOK)
			started = true
		}
		if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
			return nil
		}
		if err := rc.Flush(); err != nil {
			return nil
		}
		select {
		case <-c.ctx.Done():
			return nil
		case <-a.done:
			return nil
		case now := <-t.C():
			c.now = now
		}
	}
}
