// Package web holds the browser side of Luminary, built and embedded: the demo
// world page (index.html), the status page (status.html) and their bundles.
//
// Use [FS] to serve the files, e.g. http.FileServerFS(web.FS()). The
// JavaScript sources are in web/src; `npm run build` at the repository root
// bundles them with esbuild into web/dist, which is committed so that a plain
// `go build` serves a working page. A test fails when dist is out of date.
package web

import (
	"embed"
	"io/fs"
)

//go:embed dist
var dist embed.FS

// FS returns the built files, rooted at web/dist (index.html at the top).
func FS() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic("web: embedded dist is missing: " + err.Error()) // impossible: go:embed guarantees it
	}
	return sub
}
