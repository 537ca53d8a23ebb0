package webhook_test

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/slipway-dev/slipway/internal/config"
	"github.com/slipway-dev/slipway/internal/testenv"
	"github.com/slipway-dev/slipway/internal/webhook"
)

// Secrets of the multi-tenant configuration below.
const (
	globalSecret = "global-secret-for-the-rest"
	oneSecret    = "acme-one-own-secret"
	orgSecret    = "acme-organisation-secret"
	fourNew      = "other-four-new-secret"
	fourOld      = "other-four-old-secret"
)

// tenants is a server of several repositories: acme/one has its own secret, acme/two signs with
// its organisation's, solo/three with the global one, other/four is rotating its own.
func tenants(t *testing.T) config.Config {
	t.Helper()
	file := filepath.Join(t.TempDir(), "slipway.yml")
	yml := `
webhook:
  secrets: [` + globalSecret + `]
orgs:
  - name: Acme
    webhook_secret: ` + orgSecret + `
repositories:
  - name: acme/one
    webhook_secret: ` + oneSecret + `
  - name: acme/two
  - name: solo/three
  - name: other/four
    webhook_secret: [` + fourNew + `, ` + fourOld + `]
`
	if err := os.WriteFile(file, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(file, []string{"SLIPWAY_DATABASE_URL=postgres://u@localhost/db"})
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.ValidateServe(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// Attack (issue 7, item 1): with one webhook secret for the whole server, any repository admin who
// could create a webhook could forge pushes for every repository. A delivery is valid only when
// signed by its repository's own secret, else its organisation's, else the global one.
func TestSecretPerRepository(t *testing.T) {
	cfg := tenants(t)
	f := newFixtureOn(t, testenv.Store(t), webhook.Config{
		Secrets: reveal(cfg.Webhook.Secrets), Keys: cfg.WebhookSecrets, Repos: config.Repos(cfg.Repositories),
	})
	cases := []struct {
		repo, key string
		code      int
	}{
		{"acme/one", oneSecret, 202},
		{"Acme/One", oneSecret, 202},
		{"acme/one", orgSecret, 401},    // its own secret replaces the organisation's
		{"acme/one", globalSecret, 401}, // and the global one
		{"acme/two", orgSecret, 202},
		{"acme/two", oneSecret, 401}, // one repository's secret cannot sign another's push
		{"acme/two", globalSecret, 401},
		{"solo/three", globalSecret, 202},
		{"solo/three", oneSecret, 401},
		{"solo/three", orgSecret, 401},
		{"other/four", fourNew, 202},
		{"other/four", fourOld, 202}, // rotation: either may sign
		{"other/four", globalSecret, 401},
		{"acme/unlisted", orgSecret, 200}, // not configured: ignored, once authenticated
		{"acme/unlisted", globalSecret, 401},
		{"nobody/unlisted", globalSecret, 200},
	}
	for i, c := range cases {
		t.Run(fmt.Sprintf("%s signed with %s", c.repo, c.key), func(t *testing.T) {
			body := pushWith(t, func(m map[string]any) {
				field(m, "repository")["full_name"] = c.repo
				m["after"] = fmt.Sprintf("%040x", i+1)
			})
			r := f.post(t, "push", fmt.Sprintf("tenant-%d", i), "application/json", body, sign(body, c.key))
			if r.code != c.code {
				t.Errorf("status %d %+v, want %d", r.code, r.body, c.code)
			}
		})
	}
	// The signed form of a delivery picks its secret the same way.
	body := []byte(url.Values{"payload": {string(pushBody(t, "acme/one", "refs/heads/main"))}}.Encode())
	if r := f.post(t, "push", "tenant-form", "application/x-www-form-urlencoded", body, sign(body, oneSecret)); r.code != 202 {
		t.Errorf("form-encoded push signed with its own secret: %d %+v", r.code, r.body)
	}
	if r := f.post(t, "push", "tenant-form-2", "application/x-www-form-urlencoded", body, sign(body, globalSecret)); r.code != 401 {
		t.Errorf("form-encoded push signed with the global secret: %d %+v", r.code, r.body)
	}
	// A body naming the repository twice is read as every decoder reads it: the last one.
	two := pushBody(t, "acme/two", "refs/heads/main")
	dup := append(append([]byte(`{"repository":{"full_name":"acme/one"},`), two[1:len(two)-1]...), '}')
	if r := f.post(t, "push", "tenant-dup", "application/json", dup, sign(dup, oneSecret)); r.code != 401 {
		t.Errorf("body naming acme/one then acme/two, signed by acme/one: %d %+v", r.code, r.body)
	}
	ping := []byte(`{"zen":"hi","repository":{"full_name":"acme/one"}}`)
	if r := f.post(t, "ping", "tenant-ping", "application/json", ping, sign(ping, oneSecret)); r.code != 200 {
		t.Errorf("ping signed with its repository's secret: %d %+v", r.code, r.body)
	}
	orgPing := []byte(`{"zen":"hi","organization":{"login":"ACME"}}`)
	if r := f.post(t, "ping", "tenant-org-ping", "application/json", orgPing, sign(orgPing, orgSecret)); r.code != 200 {
		t.Errorf("organisation ping signed with its secret: %d %+v", r.code, r.body)
	}
}

func reveal(secrets []config.Secret) [][]byte {
	out := make([][]byte, len(secrets))
	for i, s := range secrets {
		out[i] = []byte(s.Reveal())
	}
	return out
}
