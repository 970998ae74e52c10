package rest

import (
	"math"
	"mime"
	"net/http"
	"slices"

	"github.com/krestianstvo/luminary/auth"
	"github.com/krestianstvo/luminary/internal/jsjson"
)

// Request bodies are parsed with internal/jsjson (invalid UTF-8, lone
// surrogates, duplicate or case-variant member names and deep nesting are
// refused) and then read member by member with exact names, so an unknown,
// misspelt or differently cased member is refused rather than ignored.
// Syntax, type and unknown-member problems are bad_json; values out of
// range are invalid.

var bodyLimits = jsjson.Limits{MaxDepth: 8, MaxMembers: 64, MaxElements: 64, RejectCaseVariants: true}

// parseObject parses body as one JSON object.
func parseObject(body []byte) (*jsjson.Object, *Error) {
	lim := bodyLimits
	lim.MaxBytes = max(len(body), 1)
	v, err := jsjson.Parse(body, lim)
	if err != nil {
		return nil, fail(CodeBadJSON, "body: "+err.Error())
	}
	o, ok := v.(*jsjson.Object)
	if !ok {
		return nil, fail(CodeBadJSON, "body must be a JSON object")
	}
	return o, nil
}

// bodyMembers parses the request body as one JSON object and returns a
// reader of its members.
func bodyMembers(c *call) (*members, error) {
	o, e := parseObject(c.body)
	if e != nil {
		return nil, e
	}
	return &members{o: o}, nil
}

// queryFreeBody is bodyMembers for routes that take no query string.
func queryFreeBody(c *call) (*members, error) {
	if err := noQuery(c); err != nil {
		return nil, err
	}
	return bodyMembers(c)
}

// members reads an object's members by exact name and refuses the rest.
type members struct {
	o    *jsjson.Object
	used []string
	err  *Error
}

func (m *members) get(k string, required bool) (any, bool) {
	m.used = append(m.used, k)
	v, ok := m.o.Get(k)
	if !ok && required && m.err == nil {
		m.err = fail(CodeBadJSON, "member "+quote(k)+" is required")
	}
	return v, ok
}

func (m *members) typeErr(k, want string) {
	if m.err == nil {
		m.err = fail(CodeBadJSON, "member "+quote(k)+" must be "+want)
	}
}

func (m *members) str(k string, required bool) string {
	v, ok := m.get(k, required)
	if !ok {
		return ""
	}
	s, isStr := v.(string)
	if !isStr {
		m.typeErr(k, "a string")
	}
	return s
}

func (m *members) num(k string, required bool) (float64, bool) {
	v, ok := m.get(k, required)
	if !ok {
		return 0, false
	}
	f, isNum := v.(float64)
	if !isNum {
		m.typeErr(k, "a number")
		return 0, false
	}
	return f, true
}

// int reads a whole number in [0, 2^53].
func (m *members) int(k string, required bool) (int64, bool) {
	f, ok := m.num(k, required)
	if !ok {
		return 0, false
	}
	if f != math.Trunc(f) || f < 0 || f > 1<<53 {
		m.typeErr(k, "a whole number from 0 to 2^53")
		return 0, false
	}
	return int64(f), true
}

func (m *members) boolean(k string) bool {
	v, ok := m.get(k, false)
	if !ok {
		return false
	}
	b, isBool := v.(bool)
	if !isBool {
		m.typeErr(k, "true or false")
	}
	return b
}

func (m *members) strings(k string, required bool) []string {
	v, ok := m.get(k, required)
	if !ok {
		return nil
	}
	arr, isArr := v.([]any)
	if !isArr {
		m.typeErr(k, "an array of strings")
		return nil
	}
	out := make([]string, 0, len(arr))
	for _, x := range arr {
		s, isStr := x.(string)
		if !isStr {
			m.typeErr(k, "an array of strings")
			return nil
		}
		out = append(out, s)
	}
	return out
}

// cert reads a certificate object (auth's JSON form).
func (m *members) cert(k string, required bool) *auth.Cert {
	v, ok := m.get(k, required)
	if !ok {
		return nil
	}
	c, err := certOf(v)
	if err != nil && m.err == nil {
		m.err = err
	}
	return c
}

// certs reads an array of certificate objects.
func (m *members) certs(k string) []*auth.Cert {
	v, ok := m.get(k, false)
	if !ok {
		return nil
	}
	arr, isArr := v.([]any)
	if !isArr {
		m.typeErr(k, "an array of certificates")
		return nil
	}
	out := make([]*auth.Cert, 0, len(arr))
	for _, x := range arr {
		c, err := certOf(x)
		if err != nil {
			if m.err == nil {
				m.err = err
			}
			return nil
		}
		out = append(out, c)
	}
	return out
}

func certOf(v any) (*auth.Cert, *Error) {
	if _, ok := v.(*jsjson.Object); !ok {
		return nil, fail(CodeBadJSON, "a certificate must be a JSON object")
	}
	c, err := auth.ParseCert(jsjson.Append(nil, v))
	if err != nil {
		return nil, fail(CodeInvalid, err.Error())
	}
	return c, nil
}

// done reports the first problem, including members that were not read.
func (m *members) done() *Error {
	if m.err != nil {
		return m.err
	}
	for _, k := range m.o.Keys {
		if !slices.Contains(m.used, k) {
			return fail(CodeBadJSON, "unknown member "+quote(k))
		}
	}
	return nil
}

// quote returns k in double quotes, cut to 64 bytes, for messages.
func quote(k string) string {
	if len(k) > 64 {
		k = k[:64] + "…"
	}
	return string(jsjson.AppendString(nil, k))
}

// mediaType returns the media type of r's Content-Type ("" when absent or
// unparsable).
func mediaType(r *http.Request) string {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return ""
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return ""
	}
	return mt
}
