package registry

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/dockercli/dockertest"
	"github.com/slipway-dev/slipway/internal/imagebuild"
)

func nonce() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func testLogger(t *testing.T) *slog.Logger { return slog.New(slog.NewTextHandler(t.Output(), nil)) }

// buildImage builds a one-layer image of its own (a file with a nonce) tagged ref, with the
// BuildKit setting given, and removes it at the end. It returns how long the build took.
func buildImage(t *testing.T, e dockertest.Env, buildKit, ref string) time.Duration {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM "+e.BaseImage+"\nCOPY nonce /nonce\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "nonce"), []byte(nonce()), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := imagebuild.New(imagebuild.Config{Engine: dockertest.Engine(t, e.CLI, e.Host), BuildKit: buildKit, Network: "host"}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.TryDocker("rmi", "-f", "--no-prune", ref) }) // keep shared cache layers
	start := time.Now()
	if err := b.Build(context.Background(), deploy.BuildRequest{Dir: dir, Tags: []string{ref}}, func(string, string) {}); err != nil {
		t.Fatal(err)
	}
	return time.Since(start)
}

// lines is a LogFunc that keeps what it is given.
type lines struct {
	mu    sync.Mutex
	lines []string
	each  func(line string) // called once per line, if set
}

func (l *lines) log(stream, line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if stream != "push" {
		panic("stream " + stream)
	}
	l.lines = append(l.lines, line)
	if l.each != nil {
		l.each(line)
	}
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func TestPushAndDigest(t *testing.T) {
	e := dockertest.Require(t)
	for _, mode := range []string{imagebuild.BuildKitOn, imagebuild.BuildKitOff} {
		t.Run("buildkit-"+mode, func(t *testing.T) {
			t.Parallel()
			repo := e.Registry + "/slipway-test/push-" + nonce()
			ref := repo + ":v1"
			took := buildImage(t, e, mode, ref)

			r, err := New(Config{Engine: dockertest.Engine(t, e.CLI, e.Host)}, nil, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			var out lines
			start := time.Now()
			d, err := r.Push(context.Background(), ref, out.log)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("build %s, push %s", took.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
			if !strings.HasPrefix(d, "sha256:") || len(d) != len("sha256:")+64 {
				t.Fatalf("digest %q", d)
			}
			if !strings.Contains(out.String(), "digest: "+d) {
				t.Errorf("push output does not show the digest:\n%s", out.String())
			}

			for _, tt := range []struct {
				ref    string
				want   string
				wantOK bool
			}{
				{ref, d, true},
				{repo + "@" + d, d, true},
				{repo + ":unknown", "", false},
				{e.Registry + "/slipway-test/never-pushed-" + nonce() + ":v1", "", false},
			} {
				got, ok, err := r.Digest(context.Background(), tt.ref)
				if err != nil || got != tt.want || ok != tt.wantOK {
					t.Errorf("Digest(%s) = %q, %v, %v; want %q, %v", tt.ref, got, ok, err, tt.want, tt.wantOK)
				}
			}
		})
	}
}

func TestPushFailures(t *testing.T) {
	e := dockertest.Require(t)
	r, err := New(Config{Engine: dockertest.Engine(t, e.CLI, e.Host)}, nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, ref, want string
	}{
		{"no such local image", e.Registry + "/slipway-test/absent-" + nonce() + ":v1", "does not exist"},
		{"digest only", e.Registry + "/app@sha256:" + strings.Repeat("0", 64), "no tag"},
		{"bad reference", "Bad/Ref", "invalid"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out lines
			_, err := r.Push(context.Background(), tt.ref, out.log)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.ref) {
				t.Errorf("err = %v, want it to name %s and say %q", err, tt.ref, tt.want)
			}
		})
	}
}

// TestPushWithCredentials pushes to a registry of its own that demands a login: token auth,
// whose token server (in this test) checks the password the docker engine got from our
// DOCKER_CONFIG. It proves that the credentials reach the push and Digest, that a wrong password
// fails without showing up in errors or logs, and that the private DOCKER_CONFIG is gone after.
func TestPushWithCredentials(t *testing.T) {
	e := dockertest.Require(t)
	const user = "deployer"
	password := "pw-" + nonce()
	host := startAuthRegistry(t, user, password)

	ref := host + "/slipway-test/auth-" + nonce() + ":v1"
	buildImage(t, e, imagebuild.BuildKitOn, ref)

	t.Run("right password", func(t *testing.T) {
		r, err := New(Config{Engine: dockertest.Engine(t, e.CLI, e.Host)}, Static{host: {user, password}}, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		var once sync.Once
		out := lines{each: func(string) {
			// While docker runs: one private config holding this registry's login only.
			once.Do(func() {
				dirs, _ := filepath.Glob(filepath.Join(r.configs.Path(), "push-*"))
				if len(dirs) != 1 {
					t.Errorf("docker config dirs during push: %v", dirs)
					return
				}
				auth := basicAuth(user, password)
				checkDockerConfig(t, dirs[0], `{"auths":{"`+host+`":{"auth":"`+auth+`"}}}`)
			})
		}}
		d, err := r.Push(context.Background(), ref, out.log)
		if err != nil {
			t.Fatal(err)
		}
		got, ok, err := r.Digest(context.Background(), ref)
		if err != nil || !ok || got != d {
			t.Errorf("Digest = %q, %v, %v; want %s", got, ok, err, d)
		}
		noConfigLeft(t, r)
	})

	for _, tt := range []struct {
		name  string
		creds Static
	}{
		{"wrong password", Static{host: {user, "wrong-" + password}}},
		{"no credentials", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, err := New(Config{Engine: dockertest.Engine(t, e.CLI, e.Host)}, tt.creds, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			var out lines
			_, pushErr := r.Push(context.Background(), ref, out.log)
			_, _, digestErr := r.Digest(context.Background(), ref)
			for what, err := range map[string]error{"Push": pushErr, "Digest": digestErr} {
				if err == nil {
					t.Errorf("%s succeeded", what)
					continue
				}
				t.Logf("%s: %v", what, err)
				if !strings.Contains(err.Error(), ref) {
					t.Errorf("%s error does not name %s", what, ref)
				}
				assertNoSecret(t, what+" error", err.Error(), user, "wrong-"+password)
			}
			assertNoSecret(t, "push log", out.String(), user, "wrong-"+password)
			if !strings.Contains(strings.ToLower(pushErr.Error()), "unauthorized") &&
				!strings.Contains(strings.ToLower(pushErr.Error()), "authentication required") {
				t.Errorf("push error does not say why: %v", pushErr)
			}
			noConfigLeft(t, r)
		})
	}
}

func assertNoSecret(t *testing.T, what, text, user, password string) {
	t.Helper()
	if strings.Contains(text, password) || strings.Contains(text, basicAuth(user, password)) {
		t.Errorf("%s shows the password:\n%s", what, text)
	}
}

// noConfigLeft checks that r's pushes removed their Docker configs.
func noConfigLeft(t *testing.T, r *Registry) {
	t.Helper()
	if dirs, _ := filepath.Glob(filepath.Join(r.configs.Path(), "push-*")); len(dirs) > 0 {
		t.Errorf("docker config dirs left behind: %v", dirs)
	}
}

func basicAuth(user, password string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
}
