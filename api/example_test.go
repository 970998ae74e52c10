package api_test

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"

	"github.com/krestianstvo/luminary/api"
	"github.com/krestianstvo/luminary/graph"
)

// A relay over an in-memory graph, mounted on an HTTP server. Gun peers
// connect to ws://host/gun; /healthz, /readyz and /metrics are served too.
func ExampleNewServer() {
	store := graph.NewMemoryStore()
	db := graph.NewDB(store, graph.DBConfig{})
	srv, err := api.NewServer(api.Config{DB: db})
	if err != nil {
		panic(err)
	}
	hs := httptest.NewServer(srv) // or &http.Server{Handler: srv, ReadHeaderTimeout: ...}
	srv.Start()                   // dials Config.Peers, if any

	resp, err := hs.Client().Get(hs.URL + "/readyz")
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Print(resp.StatusCode, " ", string(body))

	// Shut down in this order: the relay (closes WebSockets with 1001),
	// the HTTP server, the DB, the store.
	_ = srv.Shutdown(context.Background())
	hs.Close()
	_ = db.Close()
	_ = store.Close()
	// Output: 200 ready
}
