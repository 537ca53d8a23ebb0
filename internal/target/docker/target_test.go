package docker_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/dockercli/dockertest"
	"github.com/slipway-dev/slipway/internal/pipeline"
	"github.com/slipway-dev/slipway/internal/target/docker"
)

// fixture is one test's engine, target and container name, the container removed at the end.
type fixture struct {
	env  dockertest.Env
	tgt  *docker.Target
	name string
	port int // for the web images, which serve on the host network
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	env := dockertest.Require(t)
	tgt, err := docker.New(docker.Config{
		DockerBinary: env.CLI,
		Host:         env.Host,
		StableFor:    time.Second,
		StopTimeout:  time.Second, // busybox as PID 1 ignores SIGTERM
		PollInterval: 100 * time.Millisecond,
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{env: env, tgt: tgt, name: dockertest.Name("slipway-docker"), port: dockertest.FreePort(t)}
	t.Cleanup(func() {
		for _, n := range []string{f.name, f.name + "-slipway-previous"} {
			_, _ = env.TryDocker("rm", "--force", n)
		}
	})
	return f
}

// web builds an image whose httpd serves body on the fixture's port.
func (f *fixture) web(t *testing.T, body string) string {
	t.Helper()
	return f.env.Image(t, "web-"+body,
		"RUN mkdir /www && echo "+body+" > /www/index.html",
		`CMD ["sh", "-c", "exec httpd -f -h /www -p 127.0.0.1:$PORT"]`)
}

func (f *fixture) rollout(image string, mod ...func(*pipeline.DockerTarget)) deploy.Rollout {
	spec := &pipeline.DockerTarget{Container: f.name, Env: map[string]string{"PORT": fmt.Sprint(f.port)}}
	for _, m := range mod {
		m(spec)
	}
	return deploy.Rollout{
		DeploymentID: time.Now().UnixNano(), Repo: "acme/web", Service: "web", Environment: "test", Image: image,
		Target: pipeline.Target{Service: "web", Environment: "test", Kind: pipeline.KindDocker, Docker: spec},
	}
}

func (f *fixture) deploy(t *testing.T, r deploy.Rollout) (*dockertest.Log, error) {
	t.Helper()
	log := dockertest.NewLog(t, nil)
	start := time.Now()
	err := f.tgt.Deploy(context.Background(), r, log.Func)
	t.Logf("Deploy took %s", time.Since(start).Round(time.Millisecond))
	return log, err
}

// requireRunning checks that the container runs image and, for a web image, serves body.
func (f *fixture) requireRunning(t *testing.T, image, body string) {
	t.Helper()
	got := f.env.Docker(t, "container", "inspect", "--format",
		"{{.State.Status}} {{.Config.Image}} {{.HostConfig.RestartPolicy.Name}}", f.name)
	if want := "running " + image + " unless-stopped"; got != want {
		t.Fatalf("container %s: got %q, want %q", f.name, got, want)
	}
	if body == "" {
		return
	}
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", f.port))
	if err != nil {
		t.Fatalf("fetching the page: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if strings.TrimSpace(string(b)) != body {
		t.Fatalf("page = %q, want %q", b, body)
	}
}

func (f *fixture) requireNoPrevious(t *testing.T) {
	t.Helper()
	if out, err := f.env.TryDocker("container", "inspect", f.name+"-slipway-previous"); err == nil {
		t.Fatalf("previous container left behind: %s", out)
	}
}

func TestDeployReplacesAndRollsBack(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	v1, v2 := f.web(t, "one"), f.web(t, "two")

	if _, err := f.deploy(t, f.rollout(v1)); err != nil {
		t.Fatalf("first deploy: %v", err)
	}
	f.requireRunning(t, v1, "one")
	labels := f.env.Docker(t, "container", "inspect", "--format",
		`{{index .Config.Labels "slipway.service"}} {{index .Config.Labels "slipway.environment"}}`, f.name)
	if labels != "web test" {
		t.Errorf("labels = %q", labels)
	}

	log, err := f.deploy(t, f.rollout(v2))
	if err != nil {
		t.Fatalf("second deploy: %v", err)
	}
	f.requireRunning(t, v2, "two")
	f.requireNoPrevious(t)
	if !log.Contains("stays in the engine") {
		t.Error("the log does not say the previous image is kept")
	}

	r := f.rollout(v1)
	r.Previous = v2
	if err := f.tgt.Rollback(context.Background(), r, dockertest.NewLog(t, nil).Func); err != nil {
		t.Fatalf("rollback: %v", err)
	}
	f.requireRunning(t, v1, "one")
	f.requireNoPrevious(t)
}

func TestDeployRollsBackWhenContainerExits(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	good := f.web(t, "good")
	crash := f.env.Image(t, "crash", `CMD ["sh", "-c", "echo starting; echo config missing >&2; exit 3"]`)
	if _, err := f.deploy(t, f.rollout(good)); err != nil {
		t.Fatalf("first deploy: %v", err)
	}

	log, err := f.deploy(t, f.rollout(crash))
	if !errors.Is(err, deploy.ErrRolledBack) {
		t.Fatalf("deploy of a crashing image: %v, want ErrRolledBack", err)
	}
	t.Logf("Deploy error: %v", err)
	if !strings.Contains(err.Error(), "container exited with code 3 after") {
		t.Errorf("error does not say why: %v", err)
	}
	if !log.Contains("| config missing") {
		t.Error("the log does not show the container's output")
	}
	f.requireRunning(t, good, "good")
	f.requireNoPrevious(t)
}

func TestDeployRollsBackWhenNeverHealthy(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	good := f.web(t, "healthy")
	sick := f.env.Image(t, "sick",
		`HEALTHCHECK --interval=200ms --timeout=1s --retries=1 CMD ["sh", "-c", "echo not ready; exit 1"]`,
		`CMD ["sleep", "600"]`)
	if _, err := f.deploy(t, f.rollout(good)); err != nil {
		t.Fatalf("first deploy: %v", err)
	}

	start := time.Now()
	_, err := f.deploy(t, f.rollout(sick, func(s *pipeline.DockerTarget) { s.HealthTimeout = 2 * time.Second }))
	if !errors.Is(err, deploy.ErrRolledBack) {
		t.Fatalf("deploy of an unhealthy image: %v, want ErrRolledBack", err)
	}
	t.Logf("Deploy error: %v", err)
	if !strings.Contains(err.Error(), "not healthy after 2s") || !strings.Contains(err.Error(), "not ready") {
		t.Errorf("error does not say why: %v", err)
	}
	if d := time.Since(start); d < 2*time.Second {
		t.Errorf("gave up after %s, before the health timeout", d)
	}
	f.requireRunning(t, good, "healthy")
}

func TestDeployFailsWithoutPrevious(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	crash := f.env.Image(t, "crash", `CMD ["sh", "-c", "echo starting; echo config missing >&2; exit 3"]`)

	_, err := f.deploy(t, f.rollout(crash))
	if err == nil || errors.Is(err, deploy.ErrRolledBack) {
		t.Fatalf("deploy of a crashing image with nothing to go back to: %v, want a plain error", err)
	}
	if out, err := f.env.TryDocker("container", "inspect", f.name); err == nil {
		t.Errorf("failed container left behind: %s", out)
	}
}

func TestDeployCancelledRestoresPrevious(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	good := f.web(t, "steady")
	slow := f.env.Image(t, "slow",
		`HEALTHCHECK --interval=1s --retries=1 CMD ["false"]`,
		`CMD ["sleep", "600"]`)
	if _, err := f.deploy(t, f.rollout(good)); err != nil {
		t.Fatalf("first deploy: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Cancel once the new container runs and the old one is stopped: mid-rollout.
	log := dockertest.NewLog(t, func(line string) {
		if strings.HasPrefix(line, "health: starting") {
			cancel()
		}
	})
	r := f.rollout(slow, func(s *pipeline.DockerTarget) { s.HealthTimeout = time.Minute })
	err := f.tgt.Deploy(ctx, r, log.Func)
	if !errors.Is(err, context.Canceled) || !errors.Is(err, deploy.ErrRolledBack) {
		t.Fatalf("cancelled deploy: %v, want context.Canceled and ErrRolledBack", err)
	}
	f.requireRunning(t, good, "steady")
	f.requireNoPrevious(t)
}

func TestDeployPassesEnvVerbatim(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	image := f.web(t, "env")
	tricky := "a b; $(touch /tmp/pwned) `id` \"q\" 'x' | & > * \\n $HOME ${PORT}\nsecond line"

	r := f.rollout(image, func(s *pipeline.DockerTarget) { s.Env["TRICKY"] = tricky })
	if _, err := f.deploy(t, r); err != nil {
		t.Fatalf("deploy: %v", err)
	}
	// What the container's main process got, not what a docker exec would be given.
	environ := f.env.Docker(t, "exec", f.name, "cat", "/proc/1/environ")
	var got string
	for kv := range strings.SplitSeq(environ, "\x00") {
		if v, ok := strings.CutPrefix(kv, "TRICKY="); ok {
			got = v
		}
	}
	if got != tricky {
		t.Errorf("TRICKY in the container = %q, want %q", got, tricky)
	}
	if _, err := f.env.TryDocker("exec", f.name, "test", "-e", "/tmp/pwned"); err == nil {
		t.Error("the env value was run by a shell")
	}
}
