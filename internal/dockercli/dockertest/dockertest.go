// Package dockertest holds what the tests of the packages that drive docker (build, registry, the
// deploy targets) share: the test engine's settings, images built from the test base image and
// pushed to the test registry, and docker commands run against the test engine. Every helper takes
// its settings from the environment through testenv.Require, so a test that uses one skips (or
// fails in CI) without the services.
package dockertest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/engine"
	"github.com/slipway-dev/slipway/internal/testenv"
)

// Env is the test engine and registry, from the environment scripts/services.sh writes.
type Env struct {
	CLI       string // SLIPWAY_TEST_DOCKER_CLI
	Host      string // DOCKER_HOST
	Registry  string // SLIPWAY_TEST_REGISTRY, host:port
	BaseImage string // SLIPWAY_TEST_BASE_IMAGE, a busybox
}

// Require returns the test engine's settings, skipping or failing t (see testenv.Require) when
// they are missing.
func Require(t testing.TB) Env {
	t.Helper()
	return Env{
		CLI:       testenv.Require(t, "SLIPWAY_TEST_DOCKER_CLI"),
		Host:      testenv.Require(t, "DOCKER_HOST"),
		Registry:  testenv.Require(t, "SLIPWAY_TEST_REGISTRY"),
		BaseImage: testenv.Require(t, "SLIPWAY_TEST_BASE_IMAGE"),
	}
}

// Docker runs the docker CLI with args and returns its trimmed standard output, failing t if it
// fails.
func (e Env) Docker(t testing.TB, args ...string) string {
	t.Helper()
	out, err := e.TryDocker(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TryDocker runs the docker CLI with args and returns its trimmed standard output, or an error
// holding its standard error.
func (e Env) TryDocker(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.CLI, args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+e.Host, "DOCKER_BUILDKIT=0")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("docker %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

// Image builds an image FROM the base image with the Dockerfile lines given, pushes it to the
// test registry as repository name, and returns it pinned by digest (registry/name@sha256:…),
// the way Slipway deploys images.
func (e Env) Image(t testing.TB, name string, lines ...string) string {
	t.Helper()
	dockerfile := "FROM " + e.BaseImage + "\n" + strings.Join(lines, "\n") + "\n"
	// The repository is named after the content too, so that tests running at the same time never
	// push each other's build under one tag.
	sum := sha256.Sum256([]byte(dockerfile))
	return e.buildPush(t, e.Registry+"/slipway-test/"+name+"-"+hex.EncodeToString(sum[:4]), dockerfile)
}

// Private is an image in a registry of its own that wants a login, and that login.
type Private struct {
	Ref                  string // pinned by digest
	Host, User, Password string
}

// PrivateImage is Image in a registry that wants a login (testenv.AuthRegistry, started for t):
// the image is pushed with the login, then removed from the engine, so that running it means
// pulling it with the login.
func (e Env) PrivateImage(t testing.TB, name string, lines ...string) Private {
	t.Helper()
	p := Private{User: "puller", Password: "pw-" + Name("secret")}
	p.Host = testenv.AuthRegistry(t, p.User, p.Password)
	nonce := Name("")
	dockerfile := "FROM " + e.BaseImage + "\nLABEL dev.slipway.test.nonce=" + nonce + "\n" + strings.Join(lines, "\n") + "\n"
	config := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte(p.User + ":" + p.Password))
	if err := os.WriteFile(filepath.Join(config, "config.json"), []byte(`{"auths":{"`+p.Host+`":{"auth":"`+auth+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	p.Ref = e.buildPush(t, p.Host+"/slipway-test/"+name+nonce, dockerfile, "--config", config)
	e.Docker(t, "rmi", "--force", p.Ref[:strings.LastIndexByte(p.Ref, '@')]+":latest")
	return p
}

// buildPush builds dockerfile as repo:latest, pushes it (the docker CLI run with pushFlags) and
// returns it pinned by digest.
func (e Env) buildPush(t testing.TB, repo, dockerfile string, pushFlags ...string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	ref := repo + ":latest"
	// The classic builder: BuildKit needs a buildx plugin or --network host here.
	e.Docker(t, "build", "--quiet", "--tag", ref, dir)
	out := e.Docker(t, append(pushFlags, "push", ref)...)
	m := regexp.MustCompile(`digest: (sha256:[0-9a-f]{64})`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no digest in the output of docker push %s:\n%s", ref, out)
	}
	return repo + "@" + m[1]
}

// Name returns a name for a container or service that no other test, and no earlier run, uses.
func Name(prefix string) string {
	return prefix + "-" + strings.ToLower(rand.Text()[:10])
}

// FreePort returns a TCP port on 127.0.0.1 that nothing listens on at the moment.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Log collects LogFunc lines; it is safe for concurrent use, as a LogFunc must be.
type Log struct {
	mu     sync.Mutex
	lines  []string
	onLine func(line string)
}

// NewLog returns a Log that also reports each line to t and, if onLine is not nil, calls it.
func NewLog(t testing.TB, onLine func(line string)) *Log {
	return &Log{onLine: func(line string) {
		t.Logf("deploy log: %s", line)
		if onLine != nil {
			onLine(line)
		}
	}}
}

// Func is the LogFunc to hand to a target.
func (l *Log) Func(stream, line string) {
	l.mu.Lock()
	l.lines = append(l.lines, stream+": "+line)
	l.mu.Unlock()
	l.onLine(line)
}

// Contains reports whether some line contains s.
func (l *Log) Contains(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		if strings.Contains(line, s) {
			return true
		}
	}
	return false
}

// Engine returns an engine value for the docker CLI binary and host, closed when t ends. It
// contacts nothing: a fake binary works for tests that never reach an engine.
func Engine(t testing.TB, binary, host string) *engine.Engine {
	t.Helper()
	eng, err := engine.New(binary, host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eng.Close() })
	return eng
}
