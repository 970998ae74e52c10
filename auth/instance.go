package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/krestianstvo/luminary/graph"
	"github.com/krestianstvo/luminary/internal/jsjson"
	"github.com/krestianstvo/luminary/keys"
)

// PutLabel is the keys.Message label of instance-namespace field signatures.
const PutLabel = "put"

// PutMessage returns the bytes a writer signs for one field of an instance
// namespace:
//
//	keys.Message("put", soul, field, JSON.stringify(value), state)
//
// where state is written as JavaScript prints the number. The soul binds the
// instance and the path, so a signature cannot be moved to another field,
// soul, instance or state (reliability.md table A row 14).
func PutMessage(soul, field string, value graph.Value, state float64) []byte {
	return keys.Message(PutLabel, []byte(soul), []byte(field), value.AppendJSON(nil), jsjson.AppendNumber(nil, state))
}

// Wrapper is the signed form of an instance-namespace field value. On the
// wire and in the graph it is a JSON string
//
//	{":": value, "~": sig, "*": writer, "+": [cert, …]}
//
// ("*" is omitted when the writer is the instance owner, "+" when no
// certificate is needed). sig is the base64url (unpadded) 64-byte r‖s
// signature over [PutMessage].
type Wrapper struct {
	Value  graph.Value
	Sig    []byte
	Writer string  // "" means the instance owner
	Chain  []*Cert // owner-issued first, the writer's own last
}

// Encode returns the wrapper as the string value to store in the field.
func (w *Wrapper) Encode() graph.Value {
	o := &jsjson.Object{}
	o.Set(":", w.Value.Interface())
	o.Set("~", b64url(w.Sig))
	if w.Writer != "" {
		o.Set("*", w.Writer)
	}
	if len(w.Chain) > 0 {
		chain := make([]any, len(w.Chain))
		for i, c := range w.Chain {
			chain[i] = c.object()
		}
		o.Set("+", chain)
	}
	return graph.String(string(jsjson.Append(nil, o)))
}

// SignField signs value for soul/field at state with priv and returns the
// wrapped value to put. chain is the certificate chain that authorises
// priv's key (nil for the owner). The writer is named ("*") unless it is the
// instance owner.
func SignField(priv *keys.Private, soul, field string, value graph.Value, state float64, chain ...*Cert) (graph.Value, error) {
	sig, err := priv.Sign(PutMessage(soul, field, value, state))
	if err != nil {
		return graph.Value{}, err
	}
	w := Wrapper{Value: value, Sig: sig, Chain: chain}
	if is, ok := parseInstanceSoul(soul); !ok || is.id != priv.Public().String() {
		w.Writer = priv.Public().String()
	}
	return w.Encode(), nil
}

// ParseWrapper decodes an instance field value (the reader's side of
// [SignField]) with the default limits. It checks the shape only, not the
// signature or the certificates; a value that is not a wrapper at all gives
// an error wrapping [ErrAuthRequired], a malformed one a *Refusal.
func ParseWrapper(v graph.Value) (*Wrapper, error) {
	c := Checker{cfg: Config{MaxWrapperBytes: DefaultMaxWrapperBytes, MaxChainDepth: DefaultMaxChainDepth}}
	w, err := c.parseWrapper(v)
	if errors.Is(err, errUnsigned) {
		return nil, authRequired(txtUnsigned)
	}
	return w, err
}

// errUnsigned marks a value that carries no signature at all.
var errUnsigned = errors.New("unsigned")

// parseWrapper decodes an instance wrapper. It returns errUnsigned when the
// value is not a JSON object string with a "~" member, and a *Refusal for a
// malformed one.
func (c *Checker) parseWrapper(v graph.Value) (*Wrapper, error) {
	s, ok := v.AsString()
	if !ok || len(s) < 2 || s[0] != '{' {
		return nil, errUnsigned
	}
	x, err := jsjson.Parse([]byte(s), c.wrapperLimits())
	if err != nil {
		return nil, errUnsigned
	}
	o, ok := x.(*jsjson.Object)
	if !ok {
		return nil, errUnsigned
	}
	sv, hasSig := o.Get("~")
	if !hasSig {
		return nil, errUnsigned
	}
	for _, k := range o.Keys {
		switch k {
		case ":", "~", "*", "+":
		default:
			return nil, invalid(txtWrapper)
		}
	}
	var w Wrapper
	inner, ok := o.Get(":")
	if !ok {
		return nil, invalid(txtWrapper)
	}
	if w.Value, err = graph.ValueOf(inner); err != nil {
		return nil, invalid(txtValue)
	}
	sigText, ok := sv.(string)
	if !ok {
		return nil, invalid(txtSigEncoding)
	}
	if w.Sig, ok = decodeSig64(sigText); !ok {
		return nil, invalid(txtSigEncoding)
	}
	if wv, ok := o.Get("*"); ok {
		ws, isStr := wv.(string)
		if !isStr || ws == "" {
			return nil, invalid(txtPublicKey)
		}
		w.Writer = ws
	}
	if cv, ok := o.Get("+"); ok {
		arr, isArr := cv.([]any)
		if !isArr || len(arr) == 0 {
			return nil, invalid(txtCertificate)
		}
		if len(arr) > c.cfg.MaxChainDepth {
			return nil, restricted(txtCertTooDeep)
		}
		for _, e := range arr {
			cert, err := certFromValue(e)
			if err != nil {
				return nil, invalid(txtCertificate)
			}
			w.Chain = append(w.Chain, cert)
		}
	}
	return &w, nil
}

// requiredRole returns the role needed to write field on is: the role of the
// soul's path, except that a link from a parent to its child soul
// (lum/<I>/a.b = {"#": "lum/<I>/a/b"}, which gun's chain API writes on the
// way down) needs only the role of the child.
func requiredRole(is instanceSoul, field string, v graph.Value) Role {
	if l, ok := v.AsLink(); ok && l == is.soul()+"/"+field {
		child := field
		if is.path != "" {
			child = is.path + "/" + field
		}
		return roleForPath(child)
	}
	return roleForPath(is.path)
}

// checkInstance judges a field of an instance namespace.
func (c *Checker) checkInstance(ctx context.Context, fc *fieldCheck) *Refusal {
	is, ok := parseInstanceSoul(fc.soul)
	if !ok {
		return invalid(txtInstanceSoul)
	}
	r := c.judgeInstanceField(ctx, fc, is)
	if r != nil && fc.peer != nil {
		// A connection that has not logged in as a member learns nothing
		// about a private instance, not even why its write failed.
		if private, err := c.isPrivate(ctx, is.id); err == nil && private {
			if member, err := c.isMember(ctx, is.id, fc.peer); err == nil && !member {
				return authRequired(txtPrivate)
			}
		}
	}
	return r
}

func (c *Checker) judgeInstanceField(ctx context.Context, fc *fieldCheck, is instanceSoul) *Refusal {
	owner, err := c.keys.Parse(is.id)
	if err != nil {
		return invalid(txtPublicKey)
	}
	if c.cfg.Inbox != nil && isInboxPath(is.path) {
		if !fc.verdict.done {
			fc.verdict.done = true
			fc.verdict.r = c.judgeInbox(ctx, fc, owner)
		}
		return fc.verdict.r
	}
	w, err := c.parseWrapper(fc.f.Value)
	if err != nil {
		if errors.Is(err, errUnsigned) {
			return authRequired(txtUnsigned)
		}
		var r *Refusal
		if errors.As(err, &r) {
			return r
		}
		return invalid(txtWrapper)
	}
	if r := checkInstanceValue(is, fc.field, w.Value); r != nil {
		return r
	}
	writer := owner
	if w.Writer != "" {
		if writer, err = c.keys.Parse(w.Writer); err != nil {
			return invalid(txtPublicKey)
		}
	}
	if !writer.Verify(PutMessage(fc.soul, fc.field, w.Value, fc.f.State), w.Sig) {
		return explainBadSig(writer, w.Sig)
	}
	role := requiredRole(is, fc.field, w.Value)
	if r := c.authorizeChain(ctx, owner, writer, role, w.Chain, fc.now, fc.f.State, fc.revoked[is.id]); r != nil {
		return r
	}
	// Side effects of accepted administrative writes.
	if is.path == segRevoked {
		if fc.revoked == nil {
			fc.revoked = make(map[string]map[string]bool)
		}
		if fc.revoked[is.id] == nil {
			fc.revoked[is.id] = make(map[string]bool)
		}
		fc.revoked[is.id][fc.field] = true
	}
	if is.path == segCerts {
		if s, ok := w.Value.AsString(); ok {
			if cert, err := ParseCert([]byte(s)); err == nil {
				c.reg.add(cert)
			}
		}
	}
	return nil
}

// isInboxPath reports whether path is in/<id>.
func isInboxPath(path string) bool {
	rest, ok := strings.CutPrefix(path, segInbox+"/")
	return ok && rest != "" && !strings.Contains(rest, "/")
}

// judgeInbox judges a whole message node with Config.Inbox and the author's
// message role.
func (c *Checker) judgeInbox(ctx context.Context, fc *fieldCheck, owner *keys.Public) *Refusal {
	fields := map[string]graph.Field{fc.field: fc.f}
	if fc.node != nil {
		fields = fc.node.Fields
	}
	author, err := c.cfg.Inbox(ctx, fc.soul, fields)
	if err != nil {
		var r *Refusal
		if errors.As(err, &r) {
			return r
		}
		text := err.Error()
		if p := PrefixOf(text); p != "" {
			return &Refusal{p, strings.TrimSpace(text[len(p):])}
		}
		return invalid(text)
	}
	writer, err := c.keys.Parse(author)
	if err != nil {
		return invalid(txtPublicKey)
	}
	if writer.Equal(owner) {
		return nil
	}
	if err := c.Authorize(ctx, owner.String(), author, RoleMessage, fc.now); err != nil {
		var r *Refusal
		if errors.As(err, &r) {
			return r
		}
		return restricted(txtNotAuthorisedTo + string(RoleMessage))
	}
	return nil
}

// checkInstanceValue enforces the shapes of the administrative souls.
func checkInstanceValue(is instanceSoul, field string, v graph.Value) *Refusal {
	switch {
	case is.path == segRevoked:
		// field = serial; value = revocation time (ms) or true; never null,
		// so a revocation cannot be withdrawn.
		if !validSerial(field) {
			return invalid(txtRevocation)
		}
		if n, ok := v.AsNumber(); ok && n > 0 {
			return nil
		}
		if b, ok := v.AsBool(); ok && b {
			return nil
		}
		return invalid(txtRevocation)
	case is.path == segCerts:
		// field = serial; value = the certificate JSON, for this instance,
		// or null to withdraw a published copy.
		if v.IsNull() {
			return nil
		}
		s, ok := v.AsString()
		if !ok {
			return invalid(txtCertificate)
		}
		cert, err := ParseCert([]byte(s))
		if err != nil || cert.Instance != is.id || cert.Serial != field {
			return invalid(txtCertificate)
		}
	case is.path == segMembers:
		if _, ok := v.AsBool(); !ok && !v.IsNull() {
			return invalid(txtValue)
		}
	case is.path == "" && field == fieldPrivate:
		if _, ok := v.AsBool(); !ok && !v.IsNull() {
			return invalid(txtValue)
		}
	}
	return nil
}

// Grantees returns, sorted, the keys other than the owner that hold role in
// instance at time now through the certificates published at
// lum/<instance>/certs that the Checker has accepted (each checked as
// Authorize would: chain, expiry, revocation). A certificate for any key
// (AnySubject) names nobody in particular and is not listed.
func (c *Checker) Grantees(ctx context.Context, instance string, role Role, now time.Time) []string {
	var out []string
	for _, k := range c.reg.subjects(instance, role) {
		if k != instance && c.Authorize(ctx, instance, k, role, now) == nil {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// Authorize reports whether writer may act in role within instance at time
// now: nil if writer is the owner or a certificate chain proves the role;
// otherwise a *Refusal ("restricted: not authorised to tick", "restricted:
// certificate revoked", …). With no chain given it searches the certificates
// published at lum/<instance>/certs that the Checker has accepted.
//
// Package heartbeat calls it for the tick and message roles; writes that
// arrive over the wire are authorised by [Checker.CheckPut] instead.
func (c *Checker) Authorize(ctx context.Context, instance, writer string, role Role, now time.Time, chain ...*Cert) error {
	owner, err := c.keys.Parse(instance)
	if err != nil {
		return invalid(txtPublicKey)
	}
	w, err := c.keys.Parse(writer)
	if err != nil {
		return invalid(txtPublicKey)
	}
	ms := float64(now.UnixMilli())
	if len(chain) > 0 || w.Equal(owner) {
		if r := c.authorizeChain(ctx, owner, w, role, chain, now, ms, nil); r != nil {
			return r
		}
		return nil
	}
	var first *Refusal
	for _, ch := range c.reg.chains(instance, writer, c.cfg.MaxChainDepth) {
		r := c.authorizeChain(ctx, owner, w, role, ch, now, ms, nil)
		if r == nil {
			return nil
		}
		if first == nil {
			first = r
		}
	}
	if first != nil {
		return first
	}
	return restricted(txtNotAuthorisedTo + string(role))
}

// authorizeChain checks that chain lets writer act in role on the instance
// owned by owner, at relay time now, for a write claiming state (ms).
// pending holds serials revoked earlier in the same message.
func (c *Checker) authorizeChain(ctx context.Context, owner, writer *keys.Public, role Role, chain []*Cert, now time.Time, state float64, pending map[string]bool) *Refusal {
	if writer.Equal(owner) {
		return nil
	}
	if len(chain) == 0 {
		return restricted(txtNotAuthorisedTo + string(role))
	}
	if len(chain) > c.cfg.MaxChainDepth {
		return restricted(txtCertTooDeep)
	}
	inst := owner.String()
	nowMs := now.UnixMilli()
	for i, cert := range chain {
		if cert.Instance != inst {
			return restricted(txtCertOtherInst)
		}
		if i == 0 && cert.Issuer != inst {
			return restricted(txtCertIssuer)
		}
		if i > 0 && cert.Issuer != chain[i-1].Subject {
			return restricted(txtCertChain)
		}
		if i < len(chain)-1 && !cert.Has(RoleAdmin) {
			return restricted(txtCertNotAdmin)
		}
		if r := c.verifyCert(cert); r != nil {
			return r
		}
		if !cert.NotBefore.IsZero() && nowMs < cert.NotBefore.UnixMilli() {
			return restricted(txtCertNotYet)
		}
		exp := cert.Expiry.UnixMilli()
		if nowMs > exp || state > float64(exp) {
			return restricted(txtCertExpiredLum)
		}
		if pending[cert.Serial] {
			return restricted(txtCertRevoked)
		}
		f, ok, err := c.lookup(ctx, InstancePrefix+inst+"/"+segRevoked, cert.Serial)
		if err != nil {
			return restricted(txtInternal)
		}
		if ok && !f.Value.IsNull() {
			return restricted(txtCertRevoked)
		}
	}
	leaf := chain[len(chain)-1]
	if leaf.Subject != writer.String() && leaf.Subject != AnySubject {
		return restricted(txtCertSubject)
	}
	if !leaf.Has(role) {
		return restricted(txtNotAuthorisedTo + string(role))
	}
	return nil
}

// verifyCert checks a certificate's signature by its issuer, with a cache.
func (c *Checker) verifyCert(cert *Cert) *Refusal {
	msg := cert.SignedBytes()
	h := sha256.New()
	h.Write(msg)
	h.Write(cert.Sig)
	var key [32]byte
	h.Sum(key[:0])
	if _, ok := c.ourCerts.get(key); ok {
		return nil
	}
	issuer, err := c.keys.Parse(cert.Issuer)
	if err != nil {
		return restricted(txtCertSignature)
	}
	if cert.Subject != AnySubject {
		if _, err := c.keys.Parse(cert.Subject); err != nil {
			return invalid(txtCertificate)
		}
	}
	if !issuer.Verify(msg, cert.Sig) {
		return restricted(txtCertSignature)
	}
	c.ourCerts.put(key, true)
	return nil
}

// isRevokedSoul reports whether soul is some lum/<I>/revoked.
func isRevokedSoul(soul string) bool {
	return strings.HasPrefix(soul, InstancePrefix) && strings.HasSuffix(soul, "/"+segRevoked) &&
		strings.Count(soul, "/") == 2
}

// isPrivate reports whether the instance's root holds private = true.
func (c *Checker) isPrivate(ctx context.Context, id string) (bool, error) {
	f, ok, err := c.lookup(ctx, InstancePrefix+id, fieldPrivate)
	if err != nil || !ok {
		return false, err
	}
	w, err := c.parseWrapper(f.Value)
	if err != nil {
		return false, nil
	}
	b, isBool := w.Value.AsBool()
	return isBool && b, nil
}

// isMember reports whether peer is logged in as the owner of instance id or
// as a key listed true in lum/<id>/members.
func (c *Checker) isMember(ctx context.Context, id string, peer *Peer) (bool, error) {
	if peer == nil {
		return false, nil
	}
	for _, k := range peer.Keys() {
		if k.String() == id {
			return true, nil
		}
		f, ok, err := c.lookup(ctx, InstancePrefix+id+"/"+segMembers, k.String())
		if err != nil {
			return false, err
		}
		if !ok {
			continue
		}
		w, err := c.parseWrapper(f.Value)
		if err != nil {
			continue
		}
		if b, isBool := w.Value.AsBool(); isBool && b {
			return true, nil
		}
	}
	return false, nil
}

// AccessChanged returns the soul prefixes of the instances whose readers
// may have changed with accepted: a world's private flag, or its member
// list. A relay re-checks the subscriptions under them (see
// api.AccessWatcher), so that a connection that subscribed while it was
// allowed stops receiving a world that turned private or dropped it.
func (c *Checker) AccessChanged(accepted graph.Graph) []string {
	var out []string
	for soul, n := range accepted {
		// Only lum/<I> itself and lum/<I>/members can change access: skip
		// every other soul (a round's thousands of heartbeat nodes) before
		// parsing it.
		rest, ok := strings.CutPrefix(soul, InstancePrefix)
		if !ok {
			continue
		}
		if i := strings.IndexByte(rest, '/'); i >= 0 && rest[i+1:] != segMembers {
			continue
		}
		is, ok := parseInstanceSoul(soul)
		if !ok {
			continue
		}
		if _, priv := n.Fields[fieldPrivate]; (is.path == "" && priv) || is.path == segMembers {
			out = append(out, InstancePrefix+is.id)
		}
	}
	return out
}
