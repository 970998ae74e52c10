package service

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/krestianstvo/luminary/api"
	"github.com/krestianstvo/luminary/api/rest"
)

// Handler assembles the relay's HTTP surface: the Gun wire and the health
// and metrics routes of gun (api.Server: /gun, /healthz, /readyz,
// /metrics), the HTTP API (restAPI: /api/…, /.well-known/luminary,
// /openapi.yaml; nil leaves it out) and, for every other path, site (the
// embedded web pages; nil answers 404).
func Handler(gun *api.Server, restAPI *rest.API, site http.Handler) http.Handler {
	r := chi.NewRouter()
	for _, p := range []string{"/gun", "/healthz", "/readyz", "/metrics"} {
		r.Handle(p, gun)
	}
	if restAPI != nil {
		restAPI.Mount(r)
	}
	if site != nil {
		r.Handle("/*", site)
	} else {
		r.NotFound(http.NotFound)
	}
	return r
}
