package auth

import (
	"strings"

	"github.com/krestianstvo/luminary/internal/jsjson"
)

// SEA certificate write policies (the "w" of SEA.certify, gun.md §4.7) are
// matched here. The rules follow gun's check (sea/index.js) with three
// corrections; the package documentation states them in full.
//
// Let path be the soul after its first "/" ("" if none), key the field, and
// t = path + "/" + key (or key when path is ""). A policy is a string, a
// pattern object, or an array of them; it allows the write if any item does:
//
//   - "s"                 t == s
//   - {"#": P, ".": K}    path matches P and key matches K
//   - {"#": P}            path matches P, or t matches P
//   - {".": K}            key matches K
//   - any other object    t matches the object itself as a pattern
//
// A pattern P is a string (exact) or an object with one of
// "=" (exact), "*" (prefix) or ">"/"<" (inclusive range, UTF-16 order).
// A "*" prefix matched against a path only matches whole segments:
// {"*": "inbox"} matches "inbox" and "inbox/…", never "inboxEVIL" (gun.js
// does a plain string prefix). A prefix that is empty or ends in "/" already
// marks its boundary and is used as is. Against a key alone ("."), "*" is a
// plain prefix, since keys have no segments.
//
// An item with "+" containing "*" further requires the writer's public key
// to be a whole segment of t (gun.js: a substring of path or key, and not
// checked at all on the user's root soul). The one exception is a canonical
// link, a value {"#": soul + "/" + key}: gun's chain API writes these on the
// way down (~owner.inbox = {"#": "~owner/inbox"}), and since the value is
// fixed by soul and key, writing it cannot point anything elsewhere.

// policyItems returns the items of a "w" policy.
func policyItems(w any) []any {
	switch x := w.(type) {
	case []any:
		return x
	case string, *jsjson.Object:
		return []any{x}
	}
	return nil
}

// matchPolicy reports whether the policy allows writer to write key on a
// soul whose path (after the first "/") is path. A nil result means allowed.
func matchPolicy(w any, path, key, writer string, canonicalLink bool) *Refusal {
	t := key
	if path != "" {
		t = path + "/" + key
	}
	for _, item := range policyItems(w) {
		if !itemMatches(item, path, key, t) {
			continue
		}
		if o, ok := item.(*jsjson.Object); ok && plusRequiresPub(o) && !canonicalLink && !hasSegment(t, writer) {
			return restricted(`Path "` + path + `" or key "` + key + `" must contain string "` + writer + `".`)
		}
		return nil
	}
	return restricted(txtCertFail)
}

func itemMatches(item any, path, key, t string) bool {
	switch x := item.(type) {
	case string:
		return t == x
	case *jsjson.Object:
		hash, hasHash := x.Get("#")
		dot, hasDot := x.Get(".")
		switch {
		case hasHash && hasDot:
			return matchPattern(path, hash, true) && matchPattern(key, dot, false)
		case hasHash:
			return matchPattern(path, hash, true) || matchPattern(t, hash, true)
		case hasDot:
			return matchPattern(key, dot, false)
		}
		return matchPattern(t, x, true)
	}
	return false
}

// matchPattern matches text against a LEX pattern; segments selects the
// whole-segment rule for "*" (used for paths).
func matchPattern(text string, p any, segments bool) bool {
	switch x := p.(type) {
	case string:
		return text == x
	case *jsjson.Object:
		if v, ok := x.Get("="); ok {
			s, isStr := v.(string)
			return isStr && text == s
		}
		if v, ok := x.Get("*"); ok {
			s, isStr := v.(string)
			if !isStr {
				return false
			}
			if !segments || s == "" || strings.HasSuffix(s, "/") {
				return strings.HasPrefix(text, s)
			}
			return text == s || strings.HasPrefix(text, s+"/")
		}
		gv, hasGT := x.Get(">")
		lv, hasLT := x.Get("<")
		if !hasGT && !hasLT {
			return false
		}
		if hasGT {
			s, isStr := gv.(string)
			if !isStr || jsjson.CompareUTF16(text, s) < 0 {
				return false
			}
		}
		if hasLT {
			s, isStr := lv.(string)
			if !isStr || jsjson.CompareUTF16(text, s) > 0 {
				return false
			}
		}
		return true
	}
	return false
}

// plusRequiresPub reports whether a policy item's "+" contains "*".
func plusRequiresPub(o *jsjson.Object) bool {
	v, ok := o.Get("+")
	if !ok {
		return false
	}
	switch x := v.(type) {
	case string:
		return strings.Contains(x, "*")
	case []any:
		for _, e := range x {
			if s, ok := e.(string); ok && s == "*" {
				return true
			}
		}
	}
	return false
}

// hasSegment reports whether seg is one of the "/"-separated parts of t.
func hasSegment(t, seg string) bool {
	if seg == "" {
		return false
	}
	for t != "" {
		var part string
		part, t, _ = strings.Cut(t, "/")
		if part == seg {
			return true
		}
	}
	return false
}
