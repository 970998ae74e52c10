package web

import (
	"net/http"
)

// Handler serves the embedded files: "/" is the world page (index.html),
// "/status" the status page (status.html), and every other path the file of
// that name (app.js, status.js, style.css, uplot.css). Unknown paths are 404.
// Mount it last, after /gun and /api.
func Handler() http.Handler {
	fsys := FS()
	files := http.FileServerFS(fsys)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/status" || r.URL.Path == "/status/" {
			http.ServeFileFS(w, r, fsys, "status.html")
			return
		}
		files.ServeHTTP(w, r)
	})
}
