package auth

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// soulKind says which rule set judges a soul.
type soulKind uint8

const (
	kindOther     soulKind = iota // not protected: open mode passes, secure mode refuses
	kindInstance                  // lum/<I>[/…]: Luminary instance namespace
	kindAliasList                 // "~@": the list of aliases
	kindAliasPubs                 // "~@<alias>": the pubs claiming an alias
	kindUser                      // SEA user space of an owner
	kindHash                      // content-addressed: soul contains "#"
)

// InstancePrefix starts every soul of an instance namespace: lum/<I> and
// lum/<I>/<path>, where <I> is the owner's public key text.
const InstancePrefix = "lum/"

// classify mirrors the order of gun's SEA check (sea/index.js `check`):
// "~@" exactly, a "~@" prefix, an owner found by SEA.opt.pub, a "#", and the
// rest. Instance souls are recognised first; gun.js sees them as ordinary
// souls because they hold no "~" (souls starting with lum/ that do hold "~",
// "#" or "<?" are refused, see checkInstance).
func classify(soul string) (soulKind, string) {
	if strings.HasPrefix(soul, InstancePrefix) {
		return kindInstance, ""
	}
	if soul == "~@" {
		return kindAliasList, ""
	}
	if strings.HasPrefix(soul, "~@") {
		return kindAliasPubs, ""
	}
	if owner := seaOwner(soul); owner != "" {
		return kindUser, owner
	}
	if strings.IndexByte(soul, '#') >= 0 {
		return kindHash, ""
	}
	return kindOther, ""
}

// isWord reports whether b is in JavaScript's [\w_-], the characters that
// SEA.opt.pub keeps together.
func isWord(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '_' || b == '-'
}

// seaOwner returns the owner that gun's SEA.opt.pub finds in soul, or "": the
// text between the first and second "~", split at any character outside
// [A-Za-z0-9_-]; the first two pieces joined by "." are the owner. So "~X.Y",
// "~X.Y/inbox" and even "a~X.Y" belong to "X.Y". The result is not checked
// to be a valid key; a soul whose owner does not parse refuses every write.
func seaOwner(soul string) string {
	i := strings.IndexByte(soul, '~')
	if i < 0 {
		return ""
	}
	t := soul[i+1:]
	if j := strings.IndexByte(t, '~'); j >= 0 {
		t = t[:j]
	}
	if t == "" {
		return ""
	}
	a := 0
	for a < len(t) && isWord(t[a]) {
		a++
	}
	if a == len(t) {
		return "" // a single piece
	}
	// The separator is one JavaScript (UTF-16) unit: one byte of ASCII, or
	// one character below U+10000. A character above it is two units, a
	// surrogate pair, so an empty second piece lies between them.
	start := a + 1
	if t[a] >= utf8.RuneSelf {
		r, size := utf8.DecodeRuneInString(t[a:])
		if r > 0xFFFF {
			return t[:a] + "."
		}
		start = a + size
	}
	b := start
	for b < len(t) && isWord(t[b]) {
		b++
	}
	return t[:a] + "." + t[start:b]
}

// forgetLimit implements gun's "<?N" soul suffix: data older than N seconds
// is dropped. It returns N in milliseconds, or 0 when the soul has no limit.
func forgetLimit(soul string) float64 {
	i := strings.Index(soul, "<?")
	if i < 0 {
		return 0
	}
	rest := soul[i+2:]
	if j := strings.Index(rest, "<?"); j >= 0 {
		rest = rest[:j]
	}
	n := parseFloatPrefix(rest)
	if n != n || n == 0 { // NaN or zero: gun treats as no limit
		return 0
	}
	return n * 1000
}

// parseFloatPrefix is JavaScript's parseFloat for the forms that matter
// here: the longest prefix that is a decimal number; NaN if there is none.
func parseFloatPrefix(s string) float64 {
	s = strings.TrimLeft(s, " \t\n\r")
	end := 0
	for end < len(s) && end < 64 && strings.IndexByte("0123456789+-.eE", s[end]) >= 0 {
		end++
	}
	for ; end > 0; end-- {
		if f, err := strconv.ParseFloat(s[:end], 64); err == nil {
			return f
		}
	}
	nan := 0.0
	return nan / nan
}

// SplitInstanceSoul splits lum/<I>[/path] into <I> and path ("" for the
// root lum/<I>). ok is false when soul is not under lum/ or <I> is empty.
// It checks nothing else: the Checker refuses malformed instance souls
// (empty path segments, "~", "#", "<?") when they are written.
func SplitInstanceSoul(soul string) (instance, path string, ok bool) {
	rest, ok := strings.CutPrefix(soul, InstancePrefix)
	if !ok {
		return "", "", false
	}
	instance, path, _ = strings.Cut(rest, "/")
	return instance, path, instance != ""
}

// instanceSoul is a parsed lum/<I>[/path] soul.
type instanceSoul struct {
	id   string // <I>, the owner's public key text
	path string // "" for the root lum/<I>, else the part after lum/<I>/
}

// parseInstanceSoul splits an instance soul. It refuses an empty id, empty
// path segments, and the characters "~", "#" and "<?" anywhere, which gun.js
// would give another meaning (user space, content addressing, forgetting).
func parseInstanceSoul(soul string) (instanceSoul, bool) {
	rest, ok := strings.CutPrefix(soul, InstancePrefix)
	if !ok || strings.ContainsAny(soul, "~#") || strings.Contains(soul, "<?") {
		return instanceSoul{}, false
	}
	id, path, hasPath := strings.Cut(rest, "/")
	if id == "" || hasPath && path == "" {
		return instanceSoul{}, false
	}
	// No empty segment (without splitting: this runs for every soul of
	// every broadcast).
	if hasPath && (path[0] == '/' || path[len(path)-1] == '/' || strings.Contains(path, "//")) {
		return instanceSoul{}, false
	}
	return instanceSoul{id: id, path: path}, true
}

// Soul returns the soul text.
func (s instanceSoul) soul() string {
	if s.path == "" {
		return InstancePrefix + s.id
	}
	return InstancePrefix + s.id + "/" + s.path
}

// Well-known souls under lum/<I>/ (see the role table in the package
// documentation; the layout is shared with package heartbeat).
const (
	segHeartbeat = "hb"
	segLog       = "log"
	segInbox     = "in"
	segSnapshots = "snap"
	segClients   = "clients"
	segCerts     = "certs"
	segRevoked   = "revoked"
	segMembers   = "members"

	// fieldPrivate on lum/<I> marks a private instance when its signed value
	// is true.
	fieldPrivate = "private"
)

// roleForPath returns the role needed to write a field of the soul
// lum/<I>/<path> (path "" is the root).
func roleForPath(path string) Role {
	first, _, _ := strings.Cut(path, "/")
	switch first {
	case segHeartbeat, segLog, segClients:
		return RoleTick
	case segInbox:
		return RoleMessage
	case segSnapshots:
		return RoleSnapshot
	}
	return RoleAdmin
}
