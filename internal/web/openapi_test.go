package web_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
)

// The OpenAPI document lists exactly the routes the router serves under /api/v1, with the
// same methods, and it is what /api/v1/openapi.json answers.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	f := newAPIFixture(t)
	code, doc := f.get(t, "/api/v1/openapi.json")
	if code != http.StatusOK || doc["openapi"] != "3.1.0" {
		t.Fatalf("GET /api/v1/openapi.json: %d, openapi %v", code, doc["openapi"])
	}
	var documented []string
	paths, _ := doc["paths"].(map[string]any)
	for p, item := range paths {
		for method, op := range item.(map[string]any) {
			documented = append(documented, strings.ToUpper(method)+" /api/v1"+p)
			o, _ := op.(map[string]any)
			if o["operationId"] == nil || o["responses"] == nil {
				t.Errorf("%s %s: no operationId or responses", method, p)
			}
		}
	}
	var served []string
	err := chi.Walk(f.router.(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		if strings.HasPrefix(route, "/api/v1/") {
			served = append(served, method+" "+strings.TrimSuffix(route, "/"))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(documented)
	slices.Sort(served)
	if !slices.Equal(documented, served) {
		t.Errorf("documented routes differ from served ones:\ndocumented %q\nserved     %q", documented, served)
	}
	if len(served) < 10 {
		t.Errorf("only %d routes under /api/v1: %q", len(served), served)
	}
	// Every $ref points at a component that exists.
	raw, _ := json.Marshal(doc)
	comps := doc["components"].(map[string]any)
	for _, ref := range refs(string(raw)) {
		parts := strings.Split(strings.TrimPrefix(ref, "#/components/"), "/")
		group, _ := comps[parts[0]].(map[string]any)
		if len(parts) != 2 || group[parts[1]] == nil {
			t.Errorf("dangling $ref %s", ref)
		}
	}
}

func refs(doc string) []string {
	var out []string
	for _, part := range strings.Split(doc, `"$ref":"`)[1:] {
		out = append(out, part[:strings.IndexByte(part, '"')])
	}
	return out
}
