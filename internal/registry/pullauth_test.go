package registry

import (
	"encoding/base64"
	"encoding/json"
	"testing"

	"github.com/slipway-dev/slipway/internal/dockercli/dockertest"
)

func TestPullAuth(t *testing.T) {
	r, err := New(Config{Engine: dockertest.Engine(t, "true", ""), StateDir: t.TempDir()},
		Static{"registry.example.com:5000": {"deployer", "s3cret"}}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		ref                  string
		user, password, host string // "" for an anonymous pull
	}{
		{"registry.example.com:5000/app@sha256:" + testDigest[len("sha256:"):], "deployer", "s3cret", "registry.example.com:5000"},
		{"registry.example.com:5000/team/app:v1", "deployer", "s3cret", "registry.example.com:5000"},
		{"other.example.com/app:v1", "", "", ""},
		{"busybox", "", "", ""},
	} {
		t.Run(tt.ref, func(t *testing.T) {
			got, err := r.PullAuth(t.Context(), tt.ref)
			if err != nil {
				t.Fatal(err)
			}
			if tt.user == "" {
				if got != "" {
					t.Errorf("PullAuth = %q, want none", got)
				}
				return
			}
			// The Engine API's X-Registry-Auth: URL-safe base64 of the JSON AuthConfig.
			raw, err := base64.URLEncoding.DecodeString(got)
			if err != nil {
				t.Fatalf("not URL-safe base64: %v", err)
			}
			var ac struct{ Username, Password, ServerAddress string }
			if err := json.Unmarshal(raw, &ac); err != nil {
				t.Fatal(err)
			}
			if ac.Username != tt.user || ac.Password != tt.password || ac.ServerAddress != tt.host {
				t.Errorf("auth config %+v, want %s at %s", ac, tt.user, tt.host)
			}
		})
	}
	if _, err := r.PullAuth(t.Context(), "Bad/Ref"); err == nil {
		t.Error("a bad reference gave a login")
	}
}
