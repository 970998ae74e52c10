package rest

import (
	_ "embed"
	"net/http"
)

// OpenAPI is the OpenAPI 3.0.3 description of every route, embedded from
// openapi.yaml and served at /openapi.yaml. A test checks it against the
// real routes and validates every tested request and answer with it.
//
//go:embed openapi.yaml
var OpenAPI []byte

func (a *API) serveSpec(w http.ResponseWriter, r *http.Request) {
	if r.URL.RawQuery != "" {
		a.writeError(w, r, fail(CodeInvalid, "no query parameters here"))
		return
	}
	w.Header().Set("Content-Type", "application/yaml")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(OpenAPI)
}
