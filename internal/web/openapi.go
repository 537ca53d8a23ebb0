package web

import (
	"net/http"

	assets "github.com/slipway-dev/slipway/web"
)

// openAPIPath is the API's OpenAPI 3.1 document in the embedded assets; a test checks it
// against the routes the router really serves.
const openAPIPath = "static/openapi.json"

func serveOpenAPI(w http.ResponseWriter, req *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	http.ServeFileFS(w, req, assets.FS, openAPIPath)
}
