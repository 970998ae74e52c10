package luminary_test

// This test enforces the package floors: which of our packages each package
// may import, and which outside modules it may pull in. A new top-level
// package fails the test until it gets a row in the floors table, so that its
// floor is decided rather than drifted into.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/krestianstvo/luminary"

// Outside modules, by module path.
const (
	xcrypto   = "golang.org/x/crypto"
	decred    = "github.com/decred/dcrd/dcrec/secp256k1/v4"
	bbolt     = "go.etcd.io/bbolt"
	xtime     = "golang.org/x/time"
	chi       = "github.com/go-chi/chi/v5"
	websocket = "github.com/gorilla/websocket"
	promGo    = "github.com/prometheus/client_golang"
)

// Our package groups, as paths relative to the module root.
var (
	leaves   = []string{"internal/clock", "internal/jsjson", "internal/sched"}
	allOurs  = []string{"*"} // any of ours, except cmd and nodetest (checked globally)
	anything = []string{"*"}
)

// forbid is a package or module whose presence anywhere in a package's
// (non-test) dependency closure breaks its floor.
type forbid struct {
	path   string // package path, or module path; matches sub-packages too
	reason string
}

var (
	noNetwork = []forbid{
		{"net/http", "the HTTP stack belongs in api (and cmd)"},
		{chi, "routing belongs in api"},
		{websocket, "websockets belong in api"},
	}
	noCryptoLibs = []forbid{
		{xcrypto, "graph stores and merges signed data but never verifies it: crypto lives in keys and sea"},
		{decred, "graph never touches keys: secp256k1 lives in keys"},
	}
)

// floor is one row of the table.
type floor struct {
	pkg      string   // path relative to the module root; "" is the root package; covers sub-packages
	ours     []string // our packages it may import directly (its own tree is always allowed)
	outside  []string // outside modules it may import directly; "*" for any
	forbid   []forbid // forbidden anywhere in the dependency closure
	stdOnly  bool     // the whole dependency closure must be the standard library (plus ours allowed above)
	testOnly bool     // only test code may import it
	why      string
}

var floors = []floor{
	{pkg: "", testOnly: true, why: "the root package holds only repository-wide tests"},
	{pkg: "internal/clock", stdOnly: true, why: "leaf: injected time, usable from every layer"},
	{pkg: "internal/jsjson", stdOnly: true, why: "leaf: the one serializer for hashed and signed bytes"},
	{pkg: "internal/sched", stdOnly: true, why: "leaf: cooperative yields in loops over every world"},
	{pkg: "internal/nodetest", stdOnly: true, testOnly: true, why: "test helper for node.js interop tests"},
	{pkg: "keys", ours: leaves, outside: []string{xcrypto, decred}, forbid: noNetwork,
		why: "key handling and signatures: crypto only, no I/O stack"},
	{pkg: "graph", ours: leaves, outside: []string{bbolt}, forbid: append(slices.Clone(noNetwork[:1]), noCryptoLibs...),
		why: "the Gun graph, HAM and storage"},
	{pkg: "sea", ours: append([]string{"keys"}, leaves...), outside: []string{xcrypto, decred}, forbid: noNetwork,
		why: "SEA compatibility on top of keys"},
	{pkg: "auth", ours: append([]string{"keys", "sea", "graph"}, leaves...), outside: []string{xcrypto, decred, bbolt, xtime}, forbid: noNetwork,
		why: "identity and policy checks, below the wire"},
	{pkg: "heartbeat", ours: append([]string{"keys", "sea", "graph", "auth"}, leaves...), outside: []string{bbolt, xtime}, forbid: noNetwork,
		why: "the metronome: everything below api, no transport"},
	{pkg: "world", ours: append([]string{"keys", "sea", "graph", "auth", "heartbeat"}, leaves...), outside: []string{xcrypto, decred, bbolt, xtime}, forbid: noNetwork,
		why: "private worlds: membership and sealed envelopes, below the wire"},
	{pkg: "web", stdOnly: true, why: "embedded browser assets served by api"},
	{pkg: "api", ours: allOurs, outside: anything, why: "wires the outside world: HTTP, websockets, metrics"},
	{pkg: "client", ours: allOurs, outside: anything, why: "the Go client library"},
	{pkg: "cmd", ours: anything, outside: anything, why: "binaries: parse flags and wire"},
}

// pkgInfo is the part of `go list -json` output the checks use.
type pkgInfo struct {
	ImportPath   string
	Standard     bool
	DepOnly      bool
	Module       *struct{ Path string }
	Imports      []string
	TestImports  []string
	XTestImports []string
	Deps         []string
	Error        *struct{ Err string }
}

// rel returns p relative to the module root, and whether p is ours.
func rel(p string) (string, bool) {
	if p == module {
		return "", true
	}
	r, ok := strings.CutPrefix(p, module+"/")
	return r, ok
}

// under reports whether path p is pkg or below it ("" matches only "").
func under(p, pkg string) bool {
	if pkg == "" {
		return p == ""
	}
	return p == pkg || strings.HasPrefix(p, pkg+"/")
}

func matchFloor(r string) (floor, bool) {
	best, found := floor{}, false
	for _, f := range floors {
		if under(r, f.pkg) && (!found || len(f.pkg) > len(best.pkg)) {
			best, found = f, true
		}
	}
	return best, found
}

func isTestOnly(r string) bool {
	f, ok := matchFloor(r)
	return ok && f.testOnly
}

// moduleOf returns the module path of a non-standard package.
func moduleOf(all map[string]*pkgInfo, p string) string {
	if info := all[p]; info != nil && info.Module != nil {
		return info.Module.Path
	}
	return p
}

// chain returns an import chain from src to dst through the packages in all,
// for error messages.
func chain(all map[string]*pkgInfo, src, dst string) string {
	prev := map[string]string{src: ""}
	queue := []string{src}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if p == dst {
			var path []string
			for ; p != ""; p = prev[p] {
				path = append(path, strings.TrimPrefix(p, module+"/"))
			}
			slices.Reverse(path)
			return strings.Join(path, " -> ")
		}
		if info := all[p]; info != nil {
			for _, q := range info.Imports {
				if _, seen := prev[q]; !seen {
					prev[q] = p
					queue = append(queue, q)
				}
			}
		}
	}
	return src + " -> ... -> " + dst
}

func matchesForbid(dep, mod string, f forbid) bool {
	return dep == f.path || strings.HasPrefix(dep, f.path+"/") || mod == f.path
}

// checkFloors returns one message per broken floor edge.
func checkFloors(all map[string]*pkgInfo) []string {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }

	var ours []*pkgInfo
	for _, info := range all {
		if _, ok := rel(info.ImportPath); ok && !info.DepOnly {
			ours = append(ours, info)
		}
	}
	slices.SortFunc(ours, func(a, b *pkgInfo) int { return strings.Compare(a.ImportPath, b.ImportPath) })

	for _, info := range ours {
		r, _ := rel(info.ImportPath)
		name := r
		if name == "" {
			name = "(root)"
		}
		f, ok := matchFloor(r)
		if !ok {
			top, _, _ := strings.Cut(r, "/")
			if top == "internal" {
				top = r
			}
			bad("%s: package %q has no floor: add a row for %q to the floors table in layers_test.go", name, info.ImportPath, top)
			continue
		}

		// Test imports: only the cmd rule applies.
		for _, imp := range slices.Concat(info.TestImports, info.XTestImports) {
			if ir, ok := rel(imp); ok && under(ir, "cmd") && !under(r, "cmd") {
				bad("%s: tests import %s: nothing imports cmd (binaries only parse flags and wire)", name, ir)
			}
		}

		for _, imp := range info.Imports {
			ir, isOurs := rel(imp)
			switch {
			case isOurs:
				switch {
				case f.pkg != "" && under(ir, f.pkg):
					// within its own floor's tree (a package and its sub-packages)
				case under(ir, "cmd") && !under(r, "cmd"):
					bad("%s imports %s: nothing imports cmd (binaries only parse flags and wire)", name, ir)
				case isTestOnly(ir):
					bad("%s imports %s from non-test code: it is for tests only", name, ir)
				case slices.Contains(f.ours, "*"):
				case !slices.ContainsFunc(f.ours, func(a string) bool { return under(ir, a) }):
					bad("%s imports %s: the %s floor allows only %v of ours (%s)", name, ir, f.pkg, f.ours, f.why)
				}
			case all[imp] != nil && all[imp].Standard:
			default:
				mod := moduleOf(all, imp)
				if f.stdOnly {
					bad("%s imports %s (module %s): %s must depend on the standard library only (%s)", name, imp, mod, f.pkg, f.why)
				} else if !slices.Contains(f.outside, "*") && !slices.Contains(f.outside, mod) {
					bad("%s imports %s (module %s): the %s floor allows only outside modules %v (%s)", name, imp, mod, f.pkg, f.outside, f.why)
				}
			}
		}

		// The transitive closure: one message per forbidden module or
		// package tree (Deps is sorted, so a tree's root comes first).
		reported := map[string]bool{}
		for _, dep := range info.Deps {
			d := all[dep]
			if _, isOurs := rel(dep); isOurs || (d != nil && d.Standard) || d == nil && !strings.Contains(strings.SplitN(dep, "/", 2)[0], ".") {
				// ours (checked directly above) or the standard library
			} else if f.stdOnly {
				if mod := moduleOf(all, dep); !reported[mod] {
					reported[mod] = true
					bad("%s depends on %s (%s): %s must depend on the standard library only (%s)", name, dep, chain(all, info.ImportPath, dep), f.pkg, f.why)
				}
				continue
			}
			mod := ""
			if d != nil && d.Module != nil {
				mod = d.Module.Path
			}
			for _, fb := range f.forbid {
				if !reported[fb.path] && matchesForbid(dep, mod, fb) {
					reported[fb.path] = true
					bad("%s depends on %s (%s): forbidden in %s because %s", name, dep, chain(all, info.ImportPath, dep), f.pkg, fb.reason)
				}
			}
		}
	}
	return errs
}

// goList runs `go list -e -deps -test=false -json` on the whole module.
func goList(t *testing.T) map[string]*pkgInfo {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go not in PATH: %v", err)
	}
	cmd := exec.Command(goBin, "list", "-e", "-deps",
		"-json=ImportPath,Standard,DepOnly,Module,Imports,TestImports,XTestImports,Deps,Error", "./...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	all := map[string]*pkgInfo{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkgInfo
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		all[p.ImportPath] = &p
	}
	return all
}

func TestPackageFloors(t *testing.T) {
	all := goList(t)
	n := 0
	for p, info := range all {
		if _, ok := rel(p); ok && !info.DepOnly {
			n++
			if info.Error != nil {
				// A package that does not load is reported by its own tests;
				// its imports are still checked as far as they are known.
				t.Logf("note: %s: %s", p, info.Error.Err)
			}
		}
	}
	if n < 3 {
		t.Fatalf("go list found only %d packages of ours", n)
	}
	for _, e := range checkFloors(all) {
		t.Error(e)
	}
}

// TestCheckFloorsCatches runs the checker on made-up module graphs, so that a
// green TestPackageFloors means something.
func TestCheckFloorsCatches(t *testing.T) {
	ours := func(r string) string {
		if r == "" {
			return module
		}
		return module + "/" + r
	}
	std := func(p string) *pkgInfo { return &pkgInfo{ImportPath: p, Standard: true, DepOnly: true} }
	ext := func(p, mod string, imports ...string) *pkgInfo {
		return &pkgInfo{ImportPath: p, DepOnly: true, Module: &struct{ Path string }{mod}, Imports: imports}
	}
	pkg := func(r string, imports []string, deps ...string) *pkgInfo {
		return &pkgInfo{ImportPath: ours(r), Imports: imports, Deps: append(slices.Clone(imports), deps...)}
	}
	base := func() map[string]*pkgInfo {
		m := map[string]*pkgInfo{}
		for _, p := range []*pkgInfo{
			std("fmt"), std("net/http"), std("crypto/tls"), std("testing"),
			ext(bbolt, bbolt, "golang.org/x/sys/unix"), ext("golang.org/x/sys/unix", "golang.org/x/sys"),
			ext(xcrypto+"/scrypt", xcrypto), ext(chi, chi, "net/http"), ext(websocket, websocket, "net/http"),
			ext(promGo+"/prometheus", promGo),
			pkg("internal/clock", []string{"fmt"}),
			pkg("internal/jsjson", []string{"fmt"}),
		} {
			m[p.ImportPath] = p
		}
		return m
	}

	tests := []struct {
		name string
		add  []*pkgInfo
		want []string // substrings, one per expected message; nil means clean
	}{
		{"clean graph with bbolt", []*pkgInfo{pkg("graph", []string{ours("internal/jsjson"), bbolt}, "golang.org/x/sys/unix")}, nil},
		{"graph imports keys", []*pkgInfo{pkg("keys", nil), pkg("graph", []string{ours("keys")})},
			[]string{"graph imports keys"}},
		{"graph pulls net/http transitively", []*pkgInfo{pkg("graph", []string{chi}, "net/http")},
			[]string{"graph imports " + chi, "depends on net/http (graph -> " + chi + " -> net/http)"}},
		{"graph uses x/crypto", []*pkgInfo{pkg("graph", []string{xcrypto + "/scrypt"})},
			[]string{"allows only outside modules", "forbidden in graph because graph stores"}},
		{"keys imports websocket", []*pkgInfo{pkg("keys", []string{websocket}, "net/http")},
			[]string{"keys imports " + websocket, "depends on net/http", "depends on " + websocket}},
		{"clock imports bbolt", []*pkgInfo{pkg("internal/clock", []string{bbolt}, "golang.org/x/sys/unix")},
			[]string{"standard library only", "depends on " + bbolt, "depends on golang.org/x/sys/unix"}},
		{"clock imports jsjson", []*pkgInfo{pkg("internal/clock", []string{ours("internal/jsjson")})},
			[]string{"clock imports internal/jsjson"}},
		{"api imports cmd", []*pkgInfo{pkg("cmd/luminary", nil), pkg("api", []string{ours("cmd/luminary"), promGo + "/prometheus", "net/http"})},
			[]string{"nothing imports cmd"}},
		{"graph test imports cmd", []*pkgInfo{pkg("cmd/luminary", nil), func() *pkgInfo {
			p := pkg("graph", nil)
			p.XTestImports = []string{ours("cmd/luminary")}
			return p
		}()}, []string{"tests import cmd/luminary"}},
		{"non-test import of nodetest", []*pkgInfo{pkg("internal/nodetest", []string{"testing"}), pkg("api", []string{ours("internal/nodetest")})},
			[]string{"imports internal/nodetest from non-test code"}},
		{"test import of nodetest is fine", []*pkgInfo{pkg("internal/nodetest", []string{"testing"}), func() *pkgInfo {
			p := pkg("graph", nil)
			p.TestImports = []string{ours("internal/nodetest")}
			return p
		}()}, nil},
		{"new top-level package", []*pkgInfo{pkg("metrics", nil)}, []string{`add a row for "metrics"`}},
		{"new internal package", []*pkgInfo{pkg("internal/util", nil)}, []string{`add a row for "internal/util"`}},
		{"sub-package inherits its floor", []*pkgInfo{pkg("graph/store", []string{"net/http"})},
			[]string{"graph/store depends on net/http"}},
		{"heartbeat below api", []*pkgInfo{pkg("keys", nil), pkg("sea", nil), pkg("graph", nil), pkg("auth", nil),
			pkg("heartbeat", []string{ours("keys"), ours("sea"), ours("graph"), ours("auth"), bbolt}, "golang.org/x/sys/unix")}, nil},
		{"sub-package imports its parent", []*pkgInfo{pkg("keys", nil), pkg("heartbeat", []string{ours("keys")}),
			pkg("heartbeat/heartbeattest", []string{ours("heartbeat"), ours("keys")})}, nil},
		{"heartbeat imports api", []*pkgInfo{pkg("api", nil), pkg("heartbeat", []string{ours("api")})},
			[]string{"heartbeat imports api"}},
		{"cmd may import anything", []*pkgInfo{pkg("api", nil), pkg("cmd/luminary", []string{ours("api"), chi, "net/http"})}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			all := base()
			for _, p := range tt.add {
				all[p.ImportPath] = p
			}
			got := checkFloors(all)
			if len(tt.want) == 0 && len(got) > 0 {
				t.Fatalf("unexpected violations:\n%s", strings.Join(got, "\n"))
			}
			for _, w := range tt.want {
				if !slices.ContainsFunc(got, func(g string) bool { return strings.Contains(g, w) }) {
					t.Errorf("no violation mentions %q; got:\n%s", w, strings.Join(got, "\n"))
				}
			}
		})
	}
}
