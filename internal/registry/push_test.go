package registry

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/internal/dockercli/dockertest"
)

// TestPushWithFakeDocker runs Push against a stand-in docker that prints what a real one would
// (and, unlike a real one, the config it was given), with a fake registry behind Digest.
func TestPushWithFakeDocker(t *testing.T) {
	const other = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	const secret = "s3cret-pass-word"
	tests := []struct {
		name    string
		printed string // the digest docker "reports"
		tag     string
		exit    int
		want    string
		wantErr string
	}{
		{name: "reported digest confirmed", printed: testDigest, tag: "v1", want: testDigest},
		{name: "registry disagrees", printed: other, tag: "v1", wantErr: "reported " + other},
		{name: "tag missing after push", printed: testDigest, tag: "gone", wantErr: "has no"},
		{name: "docker fails", printed: testDigest, tag: "v1", exit: 1, wantErr: "docker push: exit status 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("TMPDIR", t.TempDir())
			fake := &fakeRegistry{auth: "basic", user: "u", password: secret}
			srv := httptest.NewServer(fake.handler(t))
			defer srv.Close()
			host := strings.TrimPrefix(srv.URL, "http://")

			docker := filepath.Join(t.TempDir(), "docker")
			script := "#!/bin/sh\n" +
				`echo "args: $*"` + "\n" +
				`echo "config: $(cat "$DOCKER_CONFIG/config.json")"` + "\n" +
				`echo "password: ` + secret + `" >&2` + "\n" +
				`echo "` + tt.tag + `: digest: ` + tt.printed + ` size: 528"` + "\n" +
				"exit " + string(rune('0'+tt.exit)) + "\n"
			if err := os.WriteFile(docker, []byte(script), 0o755); err != nil {
				t.Fatal(err)
			}
			r, err := New(Config{Engine: dockertest.Engine(t, docker, "")}, Static{host: {"u", secret}}, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			var out lines
			ref := host + "/app:" + tt.tag
			got, err := r.Push(context.Background(), ref, out.log)
			log := out.String()
			if !strings.Contains(log, "args: push "+ref) {
				t.Errorf("docker was not run as `docker push %s`:\n%s", ref, log)
			}
			if !strings.Contains(log, `config: {"auths":{"`+host+`":{"auth":"<redacted>"}}}`) {
				t.Errorf("docker did not get the registry's login, or the log shows it:\n%s", log)
			}
			assertNoSecret(t, "push log", log, "u", secret)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), ref) {
					t.Fatalf("err = %v, want it to name %s and say %q", err, ref, tt.wantErr)
				}
				assertNoSecret(t, "error", err.Error(), "u", secret)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Push = %s, want %s", got, tt.want)
			}
			noConfigLeft(t, os.Getenv("TMPDIR"))
		})
	}
}
