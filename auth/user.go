package auth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"

	"github.com/krestianstvo/luminary/graph"
	"github.com/krestianstvo/luminary/internal/jsjson"
	"github.com/krestianstvo/luminary/keys"
	"github.com/krestianstvo/luminary/sea"
)

// wrapperLimits bounds the JSON inside a signed wrapper string.
func (c *Checker) wrapperLimits() jsjson.Limits {
	return jsjson.Limits{MaxBytes: c.cfg.MaxWrapperBytes, MaxDepth: 16, MaxMembers: 64, MaxElements: 64}
}

// seaWrapper is a parsed SEA user-space value {":": v, "~": sig, "*": pub, "+": cert}.
type seaWrapper struct {
	inner  any    // ":" as parsed JSON
	sig    string // "~"
	writer string // "*", or "" when absent
	cert   any    // "+", or nil when absent
}

// parseSEAWrapper decodes a field value as SEA's signed wrapper. ok is false
// when the value is not signed at all (gun: "Unverified data."): not a string,
// not a JSON object, or no ":" and "~" (gun's SEA.opt.pack needs both).
func (c *Checker) parseSEAWrapper(v graph.Value) (w seaWrapper, ok bool) {
	s, isStr := v.AsString()
	if !isStr || len(s) < 2 || s[0] != '{' {
		return w, false
	}
	x, err := jsjson.Parse([]byte(s), c.wrapperLimits())
	if err != nil {
		return w, false
	}
	o, isObj := x.(*jsjson.Object)
	if !isObj {
		return w, false
	}
	inner, hasInner := o.Get(":")
	sig, hasSig := o.Get("~")
	sigStr, sigIsStr := sig.(string)
	if !hasInner || !hasSig || !sigIsStr || sigStr == "" {
		return w, false
	}
	w.inner, w.sig = inner, sigStr
	if wr, ok := o.Get("*"); ok {
		s, isStr := wr.(string)
		if !isStr {
			s = "\x00" // present but not a key: fails to parse below
		}
		w.writer = s
	}
	w.cert, _ = o.Get("+")
	return w, true
}

// putKeys are the members of the object a user-space signature covers.
var putKeys = [4]string{"#", ".", ":", ">"}

// checkUser applies gun's user-space rules (gun.md §5.1, §5.2) with the
// corrections listed in the package documentation.
func (c *Checker) checkUser(ctx context.Context, fc *fieldCheck, owner string) *Refusal {
	if fc.field == "pub" && fc.soul == "~"+owner {
		if s, ok := fc.f.Value.AsString(); ok && s == owner {
			return nil
		}
		return invalid(txtAccount)
	}
	var us *userSig
	if fc.pre != nil {
		us = &fc.pre.sig
	} else {
		v := c.userSignature(fc.soul, fc.field, fc.f, owner)
		us = &v
	}
	if us.r != nil {
		return us.r
	}
	w, signer := us.w, us.signer
	if signer == owner {
		return nil // the owner needs no certificate; a "+" beside is ignored
	}
	// A writer other than the owner: gun.js accepts this without any
	// certificate when "+" is missing (the bypass of gun.md §5.2). We do not.
	if w.cert == nil {
		return restricted(txtCertRequired)
	}
	ownerPub, err := c.keys.Parse(owner)
	if err != nil {
		return restricted(txtCertFail)
	}
	cert, r := c.seaCertificate(w.cert, ownerPub)
	if r != nil {
		return r
	}
	if cert.HasExpiry {
		// Judged by the relay clock; the write's own claimed state is also
		// held to it, as gun.js does.
		if cert.Expired(fc.now) || fc.f.State > cert.ExpiryMillis {
			return restricted(txtCertExpired)
		}
	}
	if !cert.Allows(signer) || cert.WritePolicy == nil {
		return restricted(txtCertFail)
	}
	path := ""
	if i := strings.IndexByte(fc.soul, '/'); i >= 0 {
		path = fc.soul[i+1:]
	}
	canonical := false
	if l, ok := w.inner.(*jsjson.Object); ok && l.Len() == 1 {
		target, _ := l.Get("#")
		canonical = target == fc.soul+"/"+fc.field
	}
	if r := matchPolicy(cert.WritePolicy, path, fc.field, signer, canonical); r != nil {
		return r
	}
	if cert.WriteBlock != nil {
		return c.checkBlock(ctx, owner, cert.WriteBlock, signer)
	}
	return nil
}

// userSig is the part of a user-space field's judgement that depends only
// on the field itself: its SEA wrapper, the signer, and whether the
// signature verifies. [Checker.Preverify] computes it ahead of time;
// otherwise checkUser computes it inline.
type userSig struct {
	w      seaWrapper
	signer string
	r      *Refusal // non-nil: the field is refused with this reason
}

// userSignature parses soul.field's SEA wrapper and verifies its signature
// (gun.md §5.2): the signer is the wrapper's "*" or else the owner, and the
// signed object is {"#":soul,".":field,":":inner,">":state}.
func (c *Checker) userSignature(soul, field string, f graph.Field, owner string) userSig {
	w, ok := c.parseSEAWrapper(f.Value)
	if !ok {
		return userSig{r: authRequired(txtUnverified)}
	}
	if _, err := graph.ValueOf(w.inner); err != nil {
		return userSig{r: invalid(txtValue)}
	}
	signer := owner
	if w.writer != "" {
		signer = w.writer
	}
	pub, err := c.keys.Parse(signer)
	if err != nil || pub.Curve() != keys.P256 {
		return userSig{r: invalid(txtUnverified)}
	}
	m := &jsjson.Object{Keys: putKeys[:], Values: []any{soul, field, w.inner, f.State}}
	if sea.VerifyValue(m, w.sig, pub) != nil {
		return userSig{r: invalid(txtUnverified)}
	}
	return userSig{w: w, signer: signer}
}

// seaCertificate decodes a SEA certificate object {"m": {...}, "s": sig}
// (package sea) and verifies it against the owner's key, with a cache of
// verified certificates keyed by owner, signed text and signature.
func (c *Checker) seaCertificate(v any, owner *keys.Public) (*sea.Certificate, *Refusal) {
	cert, err := sea.DecodeCertificate(v)
	if err != nil {
		return nil, restricted(txtCertFail)
	}
	env := cert.Envelope()
	h := sha256.New()
	h.Write([]byte(owner.String()))
	h.Write([]byte{0})
	h.Write([]byte(env.Text()))
	h.Write([]byte{0})
	h.Write(env.Signature())
	var key [32]byte
	h.Sum(key[:0])
	if cached, ok := c.certs.get(key); ok {
		return cached, nil
	}
	if cert.Verify(owner) != nil {
		return nil, restricted(txtCertFail)
	}
	c.certs.put(key, cert)
	return cert, nil
}

// checkBlock applies a SEA certificate's write block list ("wb"): the writer
// is blocked if the list node's field named by its pub holds 1 or true.
// gun.js resolves the list through the graph ("~owner" → wb); we read
// ~owner.<wb> for a link first, then fall back to the soul "~owner/<wb>".
// A list we cannot read refuses the write (fail closed).
func (c *Checker) checkBlock(ctx context.Context, owner string, wb any, writer string) *Refusal {
	var soul string
	switch x := wb.(type) {
	case string:
		if strings.HasPrefix(x, "~") {
			soul = x
			break
		}
		soul = "~" + owner + "/" + x
		f, ok, err := c.lookup(ctx, "~"+owner, x)
		if err != nil {
			return restricted(txtInternal)
		}
		if ok {
			if l, isLink := c.unwrapSEA(f.Value).AsLink(); isLink {
				soul = l
			}
		}
	case *jsjson.Object:
		s, _ := x.Get("#")
		str, ok := s.(string)
		if !ok || str == "" {
			return nil // gun ignores a malformed block reference
		}
		soul = str
	default:
		return nil
	}
	f, ok, err := c.lookup(ctx, soul, writer)
	if err != nil {
		return restricted(txtInternal)
	}
	if !ok {
		return nil
	}
	v := c.unwrapSEA(f.Value)
	if n, isNum := v.AsNumber(); isNum && n == 1 {
		return restricted("Certificant " + writer + " blocked.")
	}
	if b, isBool := v.AsBool(); isBool && b {
		return restricted("Certificant " + writer + " blocked.")
	}
	return nil
}

// unwrapSEA returns the inner value of a stored SEA wrapper, or v itself.
func (c *Checker) unwrapSEA(v graph.Value) graph.Value {
	w, ok := c.parseSEAWrapper(v)
	if !ok {
		return v
	}
	inner, err := graph.ValueOf(w.inner)
	if err != nil {
		return v
	}
	return inner
}

// checkAliasList is gun's rule for the soul "~@": field k must be the link
// {"#": "~@" + k}.
func checkAliasList(fc *fieldCheck) *Refusal {
	if falsy(fc.f.Value) {
		return invalid(txtDataExist)
	}
	if l, ok := fc.f.Value.AsLink(); ok && l == "~@"+fc.field {
		return nil
	}
	return invalid(txtAliasNotSame)
}

// checkAliasPubs is gun's rule for "~@<alias>": field k must be the link
// {"#": k}. It is unsigned: anyone may add a pub under any alias
// (amark/gun#1193), so address users by pub, never by alias.
func checkAliasPubs(fc *fieldCheck) *Refusal {
	if falsy(fc.f.Value) {
		return invalid(txtAliasExist)
	}
	if l, ok := fc.f.Value.AsLink(); ok && l == fc.field {
		return nil
	}
	return invalid(txtAliasNotSame)
}

// falsy is JavaScript's !v for a Gun value.
func falsy(v graph.Value) bool {
	switch v.Kind() {
	case graph.KindNull:
		return true
	case graph.KindString:
		s, _ := v.AsString()
		return s == ""
	case graph.KindBool:
		b, _ := v.AsBool()
		return !b
	case graph.KindNumber:
		n, _ := v.AsNumber()
		return n == 0
	}
	return false
}

// checkHash is gun's content-addressing rule: the part of the field name
// after its last "#" must be the SHA-256 of the value (of the string itself,
// or of the JSON text of any other value), in standard base64 or in hex.
func checkHash(fc *fieldCheck) *Refusal {
	var data []byte
	if s, ok := fc.f.Value.AsString(); ok {
		data = []byte(s)
	} else {
		data = fc.f.Value.AppendJSON(nil)
	}
	sum := sha256.Sum256(data)
	want := fc.field
	if i := strings.LastIndexByte(want, '#'); i >= 0 {
		want = want[i+1:]
	}
	if base64.StdEncoding.EncodeToString(sum[:]) == want {
		return nil
	}
	if b, err := hex.DecodeString(want); err == nil && len(b) == len(sum) && string(b) == string(sum[:]) {
		return nil
	}
	return invalid(txtHash)
}
