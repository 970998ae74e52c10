package rest_test

import (
	"bytes"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/krestianstvo/luminary/api/rest"
)

// TestSpecMatchesRoutes walks the real chi routes and requires each to be
// described in openapi.yaml, and each described operation to be routed.
func TestSpecMatchesRoutes(t *testing.T) {
	e := newEnv(t)
	doc, _ := spec(t)
	var routed []string
	err := chi.Walk(e.router, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		routed = append(routed, method+" "+strings.TrimSuffix(route, "/"))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var described []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			described = append(described, method+" "+path)
		}
	}
	sort.Strings(routed)
	sort.Strings(described)
	for _, r := range routed {
		if !slices.Contains(described, r) {
			t.Errorf("route %s is not in openapi.yaml", r)
		}
	}
	for _, d := range described {
		if !slices.Contains(routed, d) {
			t.Errorf("openapi.yaml describes %s, which is not routed", d)
		}
	}
	if len(routed) < 15 {
		t.Errorf("only %d routes: %v", len(routed), routed)
	}
	// Every operation documents its errors with the shared Error schema.
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			for code, r := range op.Responses.Map() {
				if code[0] >= '4' && r.Ref == "" {
					t.Errorf("%s %s: response %s is not one of the shared error responses", method, path, code)
				}
			}
		}
	}
}

func TestOpenAPIServed(t *testing.T) {
	e := newEnv(t)
	r := e.do(req{method: "GET", path: "/openapi.yaml"})
	expect(t, r, http.StatusOK, "")
	if !bytes.Equal(r.body, rest.OpenAPI) {
		t.Fatal("served document differs from the embedded one")
	}
	if ct := r.header.Get("Content-Type"); ct != "application/yaml" {
		t.Fatalf("Content-Type %q", ct)
	}
	expect(t, e.do(req{method: "GET", path: "/openapi.yaml?x=1", invalid: true}), http.StatusBadRequest, "invalid")
}

// TestErrorCodesDocumented: the spec's code enum is exactly rest.Codes, and
// each code's status is one the spec documents for it.
func TestErrorCodesDocumented(t *testing.T) {
	doc, _ := spec(t)
	enum := doc.Components.Schemas["Error"].Value.Properties["error"].Value.Properties["code"].Value.Enum
	var got []string
	for _, v := range enum {
		got = append(got, v.(string))
	}
	var want []string
	for _, c := range rest.Codes {
		want = append(want, string(c))
	}
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Fatalf("spec codes %v, package codes %v", got, want)
	}
	statuses := map[rest.Code]int{
		rest.CodeBadJSON: 400, rest.CodeInvalid: 400, rest.CodeUnauthenticated: 401, rest.CodeForbidden: 403,
		rest.CodeNotMember: 403, rest.CodeNotFound: 404, rest.CodeMethodNotAllowed: 405, rest.CodeConflict: 409,
		rest.CodeTooLarge: 413, rest.CodeUnsupportedMedia: 415, rest.CodeRateLimited: 429, rest.CodeInternal: 500,
		rest.CodeUnavailable: 503,
	}
	for _, c := range rest.Codes {
		if c.Status() != statuses[c] {
			t.Errorf("%s: status %d, want %d", c, c.Status(), statuses[c])
		}
	}
}
