package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/internal/dockercli/dockertest"
	"github.com/slipway-dev/slipway/internal/imagebuild"
	"github.com/slipway-dev/slipway/internal/testenv"
)

// TestTag pushes an image once and tags it again through the registry API, on a registry with no
// login, one with basic auth and one with token auth: the new tag reads back as the pushed digest,
// a wrong password or an unknown digest fails with an error that names no secret.
func TestTag(t *testing.T) {
	e := dockertest.Require(t)
	const user = "deployer"
	password := "pw-" + nonce()
	registries := []struct {
		name string
		host string
	}{
		{"open", e.Registry},
		{"basic", testenv.AuthRegistry(t, user, password)},
		{"token", startAuthRegistry(t, user, password)},
	}
	for _, reg := range registries {
		t.Run(reg.name, func(t *testing.T) {
			t.Parallel()
			repo := reg.host + "/slipway-test/tag-" + nonce()
			buildImage(t, e, imagebuild.BuildKitOn, repo+":in-1")
			r, err := New(Config{Engine: dockertest.Engine(t, e.CLI, e.Host), StateDir: t.TempDir()},
				Static{reg.host: {user, password}}, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			var out lines
			d, err := r.Push(t.Context(), repo+":in-1", out.log)
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Tag(t.Context(), repo+":commit", d); err != nil {
				t.Fatal(err)
			}
			if got, ok, err := r.Digest(t.Context(), repo+":commit"); err != nil || !ok || got != d {
				t.Errorf("Digest(%s:commit) = %q, %v, %v; want %s", repo, got, ok, err, d)
			}

			absent := "sha256:" + strings.Repeat("ab", 32)
			err = r.Tag(t.Context(), repo+":other", absent)
			if err == nil || !strings.Contains(err.Error(), "has no manifest "+absent) {
				t.Errorf("tagging an absent digest: %v", err)
			}
			if _, ok, _ := r.Digest(t.Context(), repo+":other"); ok {
				t.Error("a failed tag left the tag in the registry")
			}
			if reg.name == "open" {
				return
			}
			wrong, err := New(Config{Engine: dockertest.Engine(t, e.CLI, e.Host), StateDir: t.TempDir()},
				Static{reg.host: {user, "wrong-" + password}}, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			err = wrong.Tag(t.Context(), repo+":wrong", d)
			if err == nil {
				t.Fatal("tagged with a wrong password")
			}
			assertNoSecret(t, "tag error", err.Error(), user, "wrong-"+password)
		})
	}
}

// TestTagRefuses checks what Tag refuses before it writes: references that are not repo:tag,
// digests that are not sha256, and a manifest whose bytes do not hash to the digest asked for
// (which must never be put under the tag).
func TestTagRefuses(t *testing.T) {
	good := []byte(`{"schemaVersion":2}`)
	sum := sha256.Sum256(good)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	var puts int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch req.Method {
		case http.MethodGet:
			w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
			w.Write([]byte(`{"schemaVersion":2,"evil":true}`))
		case http.MethodPut:
			puts++
			w.WriteHeader(http.StatusCreated)
		}
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	r, err := New(Config{Engine: dockertest.Engine(t, "true", ""), StateDir: t.TempDir()}, nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, ref, digest, want string
	}{
		{"digest reference", host + "/app@" + digest, digest, "want repository:tag"},
		{"no sha256", host + "/app:v1", "sha512:" + strings.Repeat("0", 128), "want sha256"},
		{"short digest", host + "/app:v1", "sha256:abc", "want sha256"},
		{"manifest does not hash to the digest", host + "/app:v1", digest, "does not hash to it"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := r.Tag(context.Background(), tt.ref, tt.digest)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
	if puts != 0 {
		t.Errorf("%d manifests put after a refusal", puts)
	}
}
