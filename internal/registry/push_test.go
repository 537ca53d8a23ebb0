package registry

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
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
			fake := &fakeRegistry{auth: "basic", user: "u", password: secret}
			srv := httptest.NewServer(fake.handler(t))
			defer srv.Close()
			host := strings.TrimPrefix(srv.URL, "http://")

			docker := filepath.Join(t.TempDir(), "docker")
			script := "#!/bin/sh\n" +
				`echo "args: $*"` + "\n" +
				`echo "config: $(cat "$DOCKER_CONFIG/config.json")"` + "\n" +
				`echo "config dir: $DOCKER_CONFIG $(stat -c %a "$DOCKER_CONFIG")"` + "\n" +
				`echo "password: ` + secret + `" >&2` + "\n" +
				`echo "` + tt.tag + `: digest: ` + tt.printed + ` size: 528"` + "\n" +
				"exit " + string(rune('0'+tt.exit)) + "\n"
			if err := os.WriteFile(docker, []byte(script), 0o755); err != nil {
				t.Fatal(err)
			}
			state := t.TempDir()
			r, err := New(Config{Engine: dockertest.Engine(t, docker, ""), StateDir: state},
				Static{host: {"u", secret}}, slog.New(slog.NewTextHandler(io.Discard, nil)))
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
			// The config was private and in the state dir, and is gone whatever the outcome.
			if want := "config dir: " + filepath.Join(r.configs.Path(), "push-"); !strings.Contains(log, want) || !strings.Contains(log, " 700") {
				t.Errorf("docker's config dir is not a 0700 one under %s:\n%s", r.configs.Path(), log)
			}
			noConfigLeft(t, r)
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
		})
	}
}

// TestPushCancelled: cancelling a push (a cancelled deployment, the stage's timeout) stops docker
// and removes its config.
func TestPushCancelled(t *testing.T) {
	docker := filepath.Join(t.TempDir(), "docker")
	if err := os.WriteFile(docker, []byte("#!/bin/sh\necho pushing\nexec sleep 600\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	r, err := New(Config{Engine: dockertest.Engine(t, docker, ""), StateDir: t.TempDir()}, Static{"reg.example.com": {"u", "p"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var during []string
	out := lines{each: func(string) {
		during, _ = filepath.Glob(filepath.Join(r.configs.Path(), "push-*", "config.json"))
		cancel()
	}}
	if _, err := r.Push(ctx, "reg.example.com/app:v1", out.log); !errors.Is(err, context.Canceled) {
		t.Errorf("Push = %v, want it cancelled", err)
	}
	if len(during) != 1 {
		t.Errorf("docker config during the push: %v", during)
	}
	noConfigLeft(t, r)
}

// TestNewSweepsDockerConfigs: the configs a crashed process left under the state dir are gone
// after New; those of a process still pushing stay.
func TestNewSweepsDockerConfigs(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	eng := dockertest.Engine(t, "/bin/true", "")
	live, err := New(Config{Engine: eng, StateDir: state}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	liveConfig, err := writeDockerConfig(live.configs, "reg.example.com", "bG9naW4=")
	if err != nil {
		t.Fatal(err)
	}
	dead := filepath.Join(state, "docker-config", "slipway-123", "push-456", "config.json")
	if err := os.MkdirAll(filepath.Dir(dead), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dead, []byte(`{"auths":{"reg.example.com":{"auth":"bG9naW4="}}}`), 0o600); err != nil {
		t.Fatal(err)
	}

	r, err := New(Config{Engine: eng, StateDir: state}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The live registry's lock is held by a file its state dir keeps open: keep it reachable until
	// the sweep has run, or the collector may close the file and release the lock.
	runtime.KeepAlive(live)
	if _, err := os.Stat(filepath.Join(state, "docker-config", "slipway-123")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a crashed push's config is still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(liveConfig, "config.json")); err != nil {
		t.Errorf("a live push's config was removed: %v", err)
	}
	for _, d := range []string{state, filepath.Join(state, "docker-config"), r.configs.Path()} {
		if fi, err := os.Stat(d); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: mode %v, %v; want 0700", d, fi.Mode().Perm(), err)
		}
	}
}

// TestPushCrashLeavesNoLogin kills a process in the middle of docker push, as a crash or an OOM
// kill would, then starts a new Registry the way the next server does: no file left on disk may
// hold the registry login.
func TestPushCrashLeavesNoLogin(t *testing.T) {
	const secret = "crash-password"
	tmp := t.TempDir()
	docker := filepath.Join(t.TempDir(), "docker")
	// The stand-in docker says where it is, then waits to be killed with the process that ran it.
	script := "#!/bin/sh\necho \"pid $$\"\nexec sleep 600\n"
	if err := os.WriteFile(docker, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestPushCrashHelper$", "-test.v")
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp, "SLIPWAY_TEST_CRASH_DOCKER="+docker, "SLIPWAY_TEST_CRASH_SECRET="+secret)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := 0
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if _, err := fmt.Sscanf(sc.Text(), "push: pid %d", &pgid); err == nil {
			break
		}
	}
	if pgid == 0 {
		cmd.Wait()
		t.Fatal("the helper ended before docker push ran")
	}
	cmd.Process.Kill()
	cmd.Wait()
	syscall.Kill(-pgid, syscall.SIGKILL) // the stand-in docker's group, should Pdeathsig not have ended it

	t.Setenv("TMPDIR", tmp)
	if _, err := New(Config{Engine: dockertest.Engine(t, docker, "")}, nil, nil); err != nil {
		t.Fatal(err)
	}
	auth := base64.StdEncoding.EncodeToString([]byte("u:" + secret))
	filepath.WalkDir(tmp, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		if b, err := os.ReadFile(path); err == nil && (strings.Contains(string(b), auth) || strings.Contains(string(b), secret)) {
			t.Errorf("%s holds the registry login after a crash and a restart", path)
		}
		return nil
	})
}

// TestPushCrashHelper is the process TestPushCrashLeavesNoLogin kills.
func TestPushCrashHelper(t *testing.T) {
	docker := os.Getenv("SLIPWAY_TEST_CRASH_DOCKER")
	if docker == "" {
		t.Skip("run by TestPushCrashLeavesNoLogin")
	}
	r, err := New(Config{Engine: dockertest.Engine(t, docker, "")},
		Static{"reg.example.com": {"u", os.Getenv("SLIPWAY_TEST_CRASH_SECRET")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Push(context.Background(), "reg.example.com/app:v1", func(stream, line string) {
		fmt.Println(stream + ": " + line)
	})
	t.Fatalf("Push returned (%v) instead of being killed", err)
}
