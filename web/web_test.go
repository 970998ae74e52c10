package web_test

import (
	"bytes"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/krestianstvo/luminary/internal/nodetest"
	"github.com/krestianstvo/luminary/web"
)

// distFiles are the files npm run build writes.
var distFiles = []string{"app.js", "index.html", "status.html", "status.js", "style.css", "uplot.css"}

func TestDistPresent(t *testing.T) {
	for _, name := range distFiles {
		b, err := fs.ReadFile(web.FS(), name)
		if err != nil {
			t.Errorf("%v (run npm run build)", err)
			continue
		}
		if len(b) == 0 {
			t.Errorf("%s is empty", name)
		}
	}
}

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(web.Handler())
	defer srv.Close()
	for path, want := range map[string]string{
		"/":          `<script type="module" src="app.js">`,
		"/status":    `<script type="module" src="status.js">`,
		"/app.js":    "",
		"/uplot.css": ".uplot",
	} {
		res, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d", path, res.StatusCode)
		}
		if !strings.Contains(string(body), want) {
			t.Errorf("GET %s: body lacks %q", path, want)
		}
	}
	res, err := http.Get(srv.URL + "/nope.js")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("GET /nope.js: %d, want 404", res.StatusCode)
	}
}

// TestDistUpToDate rebuilds the bundle into a temporary directory with the
// pinned esbuild and compares it byte for byte with the committed web/dist.
func TestDistUpToDate(t *testing.T) {
	nodetest.Require(t)
	root := nodetest.Root(t)
	if _, err := os.Stat(filepath.Join(root, "node_modules", "esbuild")); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("esbuild is not installed (npm ci at the repository root): %v", err)
		}
		t.Skipf("esbuild is not installed (npm ci at the repository root)")
	}
	out := t.TempDir()
	if _, err := nodetest.Run(t, 2*time.Minute, "build.mjs", "--outdir", out); err != nil {
		t.Fatal(err)
	}
	fresh, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range fresh {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, distFiles) {
		t.Errorf("build wrote %v, want %v", names, distFiles)
	}
	committed, err := fs.ReadDir(web.FS(), ".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range committed {
		if !slices.Contains(names, e.Name()) {
			t.Errorf("web/dist/%s is not produced by the build: remove it", e.Name())
		}
	}
	for _, name := range names {
		want, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join("dist", name))
		if err != nil {
			t.Errorf("web/dist/%s: %v (run npm run build)", name, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("web/dist/%s is stale: run npm run build", name)
		}
	}
}

// TestNodeUnit runs the JavaScript unit tests (web/test/*.test.mjs except the
// browser test) under go test.
func TestNodeUnit(t *testing.T) {
	nodetest.Require(t)
	out, err := nodetest.Run(t, 5*time.Minute, filepath.Join("test", "unit.mjs"))
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	t.Log(lines[len(lines)-1])
}
