package docker_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/deploy/deploytest"
	"github.com/slipway-dev/slipway/internal/dockercli/dockertest"
	"github.com/slipway-dev/slipway/internal/engine"
	"github.com/slipway-dev/slipway/internal/registry"
	"github.com/slipway-dev/slipway/internal/rollout/docker"
)

// fixture is one test's engine, target and container name, the container removed at the end.
type fixture struct {
	env  dockertest.Env
	tgt  *docker.Target
	name string
	port int // for the web images, which serve on the host network
	// What the database would record live: the last deployment that succeeded.
	nextID    int64
	liveID    int64
	liveImage string
	liveSpec  deploy.Destination
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	env := dockertest.Require(t)
	eng, err := engine.New(env.CLI, env.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eng.Close() })
	tgt, err := docker.New(docker.Config{
		StableFor:   2 * time.Second,
		StopTimeout: time.Second, // busybox as PID 1 ignores SIGTERM
	}, eng, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{env: env, tgt: tgt, name: dockertest.Name("slipway-docker"), port: dockertest.FreePort(t), nextID: 1}
	t.Cleanup(func() {
		ids, _ := env.TryDocker("ps", "--all", "--quiet", "--filter", "label="+docker.LabelTarget+"="+f.name)
		for _, id := range append(strings.Fields(ids), f.name) {
			_, _ = env.TryDocker("rm", "--force", id)
		}
	})
	return f
}

// containers lists the target's containers as "name image status", sorted by name.
func (f *fixture) containers(t *testing.T) []string {
	t.Helper()
	out := f.env.Docker(t, "ps", "--all", "--filter", "label="+docker.LabelTarget+"="+f.name,
		"--format", "{{.Names}} {{.Label \"dev.slipway.deployment\"}} {{.State}}")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	slices.Sort(lines)
	return lines
}

// web builds an image whose httpd serves body on the fixture's port.
func (f *fixture) web(t *testing.T, body string) string {
	t.Helper()
	return f.env.Image(t, "web-"+body,
		"RUN mkdir /www && echo "+body+" > /www/index.html",
		`CMD ["sh", "-c", "exec httpd -f -h /www -p 127.0.0.1:$PORT"]`)
}

func (f *fixture) rollout(image string, mod ...func(*deploy.Container)) deploy.Rollout {
	spec := &deploy.Container{Container: f.name, Env: map[string]string{"PORT": fmt.Sprint(f.port)}}
	for _, m := range mod {
		m(spec)
	}
	id := f.nextID
	f.nextID++
	return deploy.Rollout{
		DeploymentID: id, Repo: "acme/web", Service: "web", Environment: "test", Image: image,
		Destination: deploy.Destination{Service: "web", Environment: "test", Platform: deploy.PlatformDocker, Docker: spec},
		Previous:    f.liveImage, PreviousID: f.liveID, PreviousDestination: f.liveSpec,
	}
}

// deploy runs r and, when it succeeds, records it live as the executor would.
func (f *fixture) deploy(t *testing.T, r deploy.Rollout) (*dockertest.Log, error) {
	t.Helper()
	log := dockertest.NewLog(t, nil)
	start := time.Now()
	err := f.tgt.Deploy(context.Background(), r, log.Func)
	t.Logf("Deploy took %s", time.Since(start).Round(time.Millisecond))
	if err == nil {
		f.liveID, f.liveImage, f.liveSpec = r.DeploymentID, r.Image, r.Destination
	}
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

// requireNoPrevious checks that the target has one container: the one under its name.
func (f *fixture) requireNoPrevious(t *testing.T) {
	t.Helper()
	if got := f.containers(t); len(got) != 1 || !strings.HasPrefix(got[0], f.name+" ") {
		t.Fatalf("containers of the target: %q, want only %s", got, f.name)
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
		`{{index .Config.Labels "dev.slipway.target"}} {{index .Config.Labels "dev.slipway.service"}} {{index .Config.Labels "dev.slipway.environment"}} {{index .Config.Labels "dev.slipway.deployment"}}`, f.name)
	if labels != f.name+" web test 1" {
		t.Errorf("labels = %q", labels)
	}

	// The stability window is a wait: the worker's slot is lent out for it, and taken back.
	r2 := f.rollout(v2)
	var waits deploytest.Waits
	r2.Waiting = waits.Waiting
	log, err := f.deploy(t, r2)
	if err != nil {
		t.Fatalf("second deploy: %v", err)
	}
	if waited, resumed := waits.Counts(); waited != 1 || resumed != 1 {
		t.Errorf("the rollout said it waits %d times and resumed %d times, want 1 and 1", waited, resumed)
	}
	f.requireRunning(t, v2, "two")
	f.requireNoPrevious(t)
	if !log.Contains("stays in the engine") {
		t.Error("the log does not say the previous image is kept")
	}

	r := f.rollout(v1)
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

// The verdict comes from the engine's health events, not from a clock: a check that always fails
// makes the container unhealthy however slow the machine is.
func TestDeployRollsBackWhenNeverHealthy(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	good := f.web(t, "healthy")
	sick := f.env.Image(t, "sick",
		`HEALTHCHECK --interval=200ms --timeout=30s --retries=1 CMD ["sh", "-c", "echo not ready; exit 1"]`,
		`CMD ["sleep", "600"]`)
	if _, err := f.deploy(t, f.rollout(good)); err != nil {
		t.Fatalf("first deploy: %v", err)
	}

	_, err := f.deploy(t, f.rollout(sick, func(s *deploy.Container) { s.HealthTimeout = 10 * time.Minute }))
	if !errors.Is(err, deploy.ErrRolledBack) {
		t.Fatalf("deploy of an unhealthy image: %v, want ErrRolledBack", err)
	}
	t.Logf("Deploy error: %v", err)
	if !strings.Contains(err.Error(), "unhealthy") || !strings.Contains(err.Error(), "not ready") {
		t.Errorf("error does not say why: %v", err)
	}
	f.requireRunning(t, good, "healthy")
}

// With a HEALTHCHECK, healthy is up: the deployment does not wait out the stability window
// (an hour here, which the test's deadline would cut short).
func TestDeployHealthyEndsTheWait(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	eng, err := engine.New(f.env.CLI, f.env.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eng.Close() })
	if f.tgt, err = docker.New(docker.Config{StableFor: time.Hour, StopTimeout: time.Second}, eng,
		slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	ready := f.env.Image(t, "ready", `HEALTHCHECK --interval=200ms --timeout=30s --retries=1 CMD ["true"]`, `CMD ["sleep", "600"]`)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute) // a hang guard only
	defer cancel()
	if err := f.tgt.Deploy(ctx, f.rollout(ready, func(s *deploy.Container) { s.HealthTimeout = 20 * time.Minute }),
		dockertest.NewLog(t, nil).Func); err != nil {
		t.Fatalf("deploy of a healthy image: %v", err)
	}
	f.requireRunning(t, ready, "")
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
		`HEALTHCHECK --interval=1s --timeout=10m CMD ["sleep", "600"]`,
		`CMD ["sleep", "600"]`)
	if _, err := f.deploy(t, f.rollout(good)); err != nil {
		t.Fatalf("first deploy: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Cancel once the new container runs and the old one is stopped: mid-rollout.
	log := dockertest.NewLog(t, func(line string) {
		if strings.HasPrefix(line, "waiting for") {
			cancel()
		}
	})
	r := f.rollout(slow, func(s *deploy.Container) { s.HealthTimeout = time.Minute })
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

	r := f.rollout(image, func(s *deploy.Container) { s.Env["TRICKY"] = tricky })
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

// interrupted leaves the target as a worker killed mid-rollout would: the live container stopped
// and set aside, and deployment id's container of image under the name, started if running.
func (f *fixture) interrupted(t *testing.T, id int64, image string, running bool) {
	t.Helper()
	f.env.Docker(t, "stop", "--time", "1", f.name)
	f.env.Docker(t, "rename", f.name, f.name+"-slipway-previous")
	args := []string{"create", "--name", f.name, "--network", "host", "--env", fmt.Sprintf("PORT=%d", f.port),
		"--label", docker.LabelTarget + "=" + f.name, "--label", docker.LabelRepo + "=acme/web",
		"--label", fmt.Sprintf("%s=%d", docker.LabelDeployment, id), image}
	f.env.Docker(t, args...)
	if running {
		f.env.Docker(t, "start", f.name)
	}
}

// Defect: the retry of an interrupted rollout took the container it found set aside for the one
// to keep, removed the live one and "restored" the broken one. The live version is the one the
// database records, found by its label, whatever names an earlier attempt left.
func TestRetryAfterInterruptedRolloutKeepsLiveVersion(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	good := f.web(t, "live")
	crash := f.env.Image(t, "crash", `CMD ["sh", "-c", "echo config missing >&2; exit 3"]`)
	if _, err := f.deploy(t, f.rollout(good)); err != nil {
		t.Fatalf("first deploy: %v", err)
	}
	r := f.rollout(crash)
	f.interrupted(t, r.DeploymentID, crash, true) // attempt 1 died just after starting it

	_, err := f.deploy(t, r) // attempt 2
	if !errors.Is(err, deploy.ErrRolledBack) {
		t.Fatalf("attempt 2: %v, want ErrRolledBack", err)
	}
	f.requireRunning(t, good, "live")
	f.requireNoPrevious(t)
}

// Defect: a worker lost between stopping the live container and starting the new one left the
// service with nothing running. Restore, which the next worker runs, puts the live version back.
func TestRestoreAfterCrashBetweenStopAndStart(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	good, next := f.web(t, "before"), f.web(t, "after")
	if _, err := f.deploy(t, f.rollout(good)); err != nil {
		t.Fatalf("first deploy: %v", err)
	}
	r := f.rollout(next)
	f.interrupted(t, r.DeploymentID, next, false)

	if err := f.tgt.Restore(context.Background(), r, dockertest.NewLog(t, nil).Func); err != nil {
		t.Fatalf("restore: %v", err)
	}
	f.requireRunning(t, good, "before")
	f.requireNoPrevious(t)

	// The live container is gone altogether: Restore makes it again from what the database records.
	f.env.Docker(t, "rm", "--force", f.name)
	if err := f.tgt.Restore(context.Background(), r, dockertest.NewLog(t, nil).Func); err != nil {
		t.Fatalf("restore without a container: %v", err)
	}
	f.requireRunning(t, good, "before")
	f.requireNoPrevious(t)
}

// A worker that lost its claim touches nothing: the target is the new owner's.
func TestDeployWithoutClaimChangesNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	good, next := f.web(t, "kept"), f.web(t, "never")
	if _, err := f.deploy(t, f.rollout(good)); err != nil {
		t.Fatalf("first deploy: %v", err)
	}
	before := f.containers(t)
	lost := errors.New("lease lost")
	r := f.rollout(next)
	r.Held = func() error { return lost }
	if _, err := f.deploy(t, r); !errors.Is(err, lost) {
		t.Fatalf("deploy without the claim: %v, want %v", err, lost)
	}
	if after := f.containers(t); !slices.Equal(before, after) {
		t.Errorf("containers changed: %q, then %q", before, after)
	}
	f.requireRunning(t, good, "kept")
}

// Defect: a repository replaced another's container, and one Slipway never created. The labels
// say whose a container is: another repository's is refused, an unlabelled one only adopted.
func TestDeployRefusesContainersItDoesNotOwn(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	mine, theirs := f.web(t, "mine"), f.web(t, "theirs")
	// A container made by hand under the name.
	f.env.Docker(t, "run", "--detach", "--name", f.name, "--network", "host", "--env", fmt.Sprintf("PORT=%d", f.port), theirs)
	if _, err := f.deploy(t, f.rollout(mine)); err == nil || !strings.Contains(err.Error(), "not created by Slipway") {
		t.Fatalf("deploy over a hand-made container: %v", err)
	}
	if got := f.env.Docker(t, "container", "inspect", "--format", "{{.State.Status}} {{.Config.Image}}", f.name); got != "running "+theirs {
		t.Errorf("the hand-made container was touched: %s", got)
	}
	r := f.rollout(mine)
	r.Adopt = true
	if _, err := f.deploy(t, r); err != nil {
		t.Fatalf("adopting deploy: %v", err)
	}
	f.requireRunning(t, mine, "mine")

	other := f.rollout(theirs)
	other.Repo, other.Adopt = "evil/repo", true
	if _, err := f.deploy(t, other); err == nil || !strings.Contains(err.Error(), "belongs to repository acme/web") {
		t.Fatalf("deploy by another repository: %v", err)
	}
	f.requireRunning(t, mine, "mine")
}

// An image the engine does not hold (a rollback to one pruned since) is pulled with the registry's
// login: without PullAuth the registry refuses the engine, with it the container runs.
func TestDeployPullsWithTheRegistryLogin(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p := f.env.PrivateImage(t, "web-private",
		"RUN mkdir /www && echo private > /www/index.html",
		`CMD ["sh", "-c", "exec httpd -f -h /www -p 127.0.0.1:$PORT"]`)
	private := p.Ref

	log, err := f.deploy(t, f.rollout(private))
	if err == nil || !strings.Contains(err.Error(), "pulling "+private) {
		t.Fatalf("deploy without a login: %v, want the pull refused", err)
	}
	if log.Contains(p.Password) {
		t.Error("the log shows the password")
	}

	creds, err := registry.New(registry.Config{Engine: dockertest.Engine(t, f.env.CLI, f.env.Host), StateDir: t.TempDir()},
		registry.Static{p.Host: {User: p.User, Password: p.Password}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	eng := dockertest.Engine(t, f.env.CLI, f.env.Host)
	f.tgt, err = docker.New(docker.Config{StableFor: time.Second, StopTimeout: time.Second, PullAuth: creds.PullAuth},
		eng, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if log, err = f.deploy(t, f.rollout(private)); err != nil {
		t.Fatalf("deploy with the login: %v", err)
	}
	if !log.Contains("pulling " + private) {
		t.Error("the log does not say the image was pulled")
	}
	f.requireRunning(t, private, "private")
}
