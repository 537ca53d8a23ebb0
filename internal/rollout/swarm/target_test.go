package swarm_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/deploy/deploytest"
	"github.com/slipway-dev/slipway/internal/dockercli/dockertest"
	"github.com/slipway-dev/slipway/internal/engine"
	"github.com/slipway-dev/slipway/internal/registry"
	"github.com/slipway-dev/slipway/internal/rollout/swarm"
)

type fixture struct {
	env   dockertest.Env
	tgt   *swarm.Target
	calls *swarm.Calls
	name  string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	env := dockertest.Require(t)
	eng, err := engine.New(tripwire(t), env.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eng.Close() })
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	tgt, err := swarm.New(swarm.Config{UpdateMonitor: time.Second}, eng, logger)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{env: env, tgt: tgt, calls: swarm.CountCalls(tgt), name: dockertest.Name("slipway-swarm")}
}

// tripwire returns a docker CLI for the engine that only records that it ran: the target must
// reach the engine through its API alone.
func tripwire(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	ran := filepath.Join(dir, "ran")
	bin := filepath.Join(dir, "docker")
	script := "#!/bin/sh\necho \"$@\" >> '" + ran + "'\nexit 1\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if out, err := os.ReadFile(ran); err == nil {
			t.Errorf("the target ran the docker CLI:\n%s", out)
		}
	})
	return bin
}

// sleeper builds an image that runs until stopped; tag makes its digest differ from others'.
func (f *fixture) sleeper(t *testing.T, tag string) string {
	t.Helper()
	return f.env.Image(t, "swarm-sleep", "RUN echo "+tag+" > /version", `CMD ["sleep", "600"]`)
}

// create makes the service the way an operator would, running image; Slipway only updates it.
func (f *fixture) create(t *testing.T, image string) {
	t.Helper()
	t.Cleanup(func() { _, _ = f.env.TryDocker("service", "rm", f.name) })
	// busybox sleep ignores SIGTERM: a short grace period keeps every update quick, and short
	// monitors the create itself and Swarm's rollbacks to this spec.
	f.env.Docker(t, "service", "create", "--quiet", "--detach=false", "--name", f.name,
		"--network", "host", "--stop-grace-period", "1s", "--update-monitor", "1s", "--rollback-monitor", "1s", image)
}

func (f *fixture) rollout(image string) deploy.Rollout {
	return deploy.Rollout{
		DeploymentID: time.Now().UnixNano(), Repo: "acme/api", Service: "api", Environment: "test", Image: image,
		Destination: deploy.Destination{Service: "api", Environment: "test", Platform: deploy.PlatformSwarm,
			Swarm: &deploy.SwarmService{Service: f.name}},
		Adopt: true, // the test created the service, not Slipway
	}
}

func (f *fixture) deploy(t *testing.T, ctx context.Context, r deploy.Rollout, log *dockertest.Log) error {
	t.Helper()
	start := time.Now()
	err := f.tgt.Deploy(ctx, r, log.Func)
	t.Logf("Deploy took %s, API calls %v", time.Since(start).Round(time.Millisecond), f.calls.Take())
	return err
}

// requireRunning checks the service's spec and that one of its tasks runs image.
func (f *fixture) requireRunning(t *testing.T, image string) {
	t.Helper()
	if got := f.env.Docker(t, "service", "inspect", "--format", "{{.Spec.TaskTemplate.ContainerSpec.Image}}", f.name); got != image {
		t.Fatalf("service image = %s, want %s", got, image)
	}
	// Swarm reports a rollback complete once the old task is scheduled; it may still be starting.
	// Wait for it to run: the deadline only stops a hang.
	var running string
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		running = f.env.Docker(t, "service", "ps", "--no-trunc", "--filter", "desired-state=running",
			"--format", "{{.Image}} {{.CurrentState}}", f.name)
		for line := range strings.Lines(running) {
			if strings.HasPrefix(line, image+" Running") {
				return
			}
		}
	}
	t.Fatalf("no task runs %s:\n%s", image, running)
}

// taskState returns the state a progress line gives a task of image ("task 1/1 running
// repo@sha256:0123456789ab"), "" for another line.
func taskState(line, image string) string {
	repo, digest, _ := strings.Cut(image, "@sha256:")
	f := strings.Fields(line)
	if len(f) < 4 || f[0] != "task" || f[3] != repo+"@sha256:"+digest[:12] {
		return ""
	}
	return f[2]
}

func TestDeployUpdatesServiceAndRollsBack(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	first, second := f.sleeper(t, "first"), f.sleeper(t, "second")
	f.create(t, first)

	// A worker that lost its claim leaves the service alone.
	lost := errors.New("claim lost")
	r := f.rollout(second)
	r.Held = func() error { return lost }
	if err := f.deploy(t, context.Background(), r, dockertest.NewLog(t, nil)); !errors.Is(err, lost) || errors.Is(err, deploy.ErrRolledBack) {
		t.Fatalf("deploy without the claim: %v, want the claim's error", err)
	}
	f.requireRunning(t, first)

	log := dockertest.NewLog(t, nil)
	start := time.Now()
	r = f.rollout(second)
	var waits deploytest.Waits
	r.Waiting = waits.Waiting
	if err := f.tgt.Deploy(context.Background(), r, log.Func); err != nil {
		t.Fatalf("deploy: %v", err)
	}
	if waited, resumed := waits.Counts(); waited != 1 || resumed != 1 {
		t.Errorf("waiting for Swarm: said it waits %d times and resumed %d times, want 1 and 1", waited, resumed)
	}
	took, calls := time.Since(start), f.calls.Take()
	t.Logf("Deploy took %s, API calls %v", took.Round(time.Millisecond), calls)
	f.requireRunning(t, second)
	if !log.Contains("task 1/1 running") {
		t.Error("no progress line says the new task runs")
	}
	// One inspect before, one update, one events stream; reads of the service when Swarm reports a
	// change; reads of the tasks 100ms apart at first, then 1s (the default PollInterval).
	if calls["ServiceUpdate"] != 1 || calls["Events"] != 1 || calls["TaskLogs"] != 0 {
		t.Errorf("API calls %v: want 1 ServiceUpdate, 1 Events, no TaskLogs", calls)
	}
	if maxPolls := 8 + 2*int(took.Seconds()); calls["TaskList"] > maxPolls || calls["ServiceInspect"] > maxPolls {
		t.Errorf("API calls %v in %s: more than %d reads of a kind", calls, took, maxPolls)
	}

	start = time.Now()
	r = f.rollout(first)
	r.Previous = second
	if err := f.tgt.Rollback(context.Background(), r, dockertest.NewLog(t, nil).Func); err != nil {
		t.Fatalf("rollback: %v", err)
	}
	t.Logf("Rollback took %s, API calls %v", time.Since(start).Round(time.Millisecond), f.calls.Take())
	f.requireRunning(t, first)

	// The same image again changes no task; Swarm records no update, and that is a success.
	if err := f.deploy(t, context.Background(), f.rollout(first), dockertest.NewLog(t, nil)); err != nil {
		t.Fatalf("deploying the running image again: %v", err)
	}
	// So is putting back the live version when it runs already.
	r = f.rollout("")
	r.Previous = first
	if err := f.tgt.Restore(context.Background(), r, dockertest.NewLog(t, nil).Func); err != nil {
		t.Fatalf("restoring the running image: %v", err)
	}
	t.Logf("Restore: API calls %v", f.calls.Take())
	f.requireRunning(t, first)
}

func TestDeployFailingImageRollsBack(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	good := f.sleeper(t, "good")
	crash := f.env.Image(t, "swarm-crash", `CMD ["sh", "-c", "echo cannot read config >&2; exit 3"]`)
	f.create(t, good)

	log := dockertest.NewLog(t, nil)
	err := f.deploy(t, context.Background(), f.rollout(crash), log)
	if !errors.Is(err, deploy.ErrRolledBack) {
		t.Fatalf("deploy of a crashing image: %v, want ErrRolledBack", err)
	}
	t.Logf("Deploy error: %v", err)
	if !strings.Contains(err.Error(), "non-zero exit (3)") {
		t.Errorf("error does not say why the task failed: %v", err)
	}
	if !log.Contains("| cannot read config") {
		t.Error("the log does not hold the failed task's output")
	}
	f.requireRunning(t, good)
}

func TestDeployCancelledRollsBack(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	good, next := f.sleeper(t, "before-cancel"), f.sleeper(t, "cancelled")
	f.create(t, good)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The first line about a task of the new image: the update has reached the service.
	log := dockertest.NewLog(t, func(line string) {
		if taskState(line, next) != "" {
			cancel()
		}
	})
	err := f.deploy(t, ctx, f.rollout(next), log)
	if !errors.Is(err, context.Canceled) || !errors.Is(err, deploy.ErrRolledBack) {
		t.Fatalf("cancelled deploy: %v, want context.Canceled and ErrRolledBack", err)
	}
	f.requireRunning(t, good)
}

// expiring is a context whose deadline passes when the test calls expire: the target sees what a
// passing deadline shows it, at a moment the test picks from the service's state, not the clock.
type expiring struct {
	context.Context // for values only
	deadline        time.Time
	done            chan struct{}
	once            sync.Once
}

func newExpiring(deadline time.Time) *expiring {
	return &expiring{Context: context.Background(), deadline: deadline, done: make(chan struct{})}
}

func (c *expiring) Deadline() (time.Time, bool) { return c.deadline, true }
func (c *expiring) Done() <-chan struct{}       { return c.done }
func (c *expiring) expire()                     { c.once.Do(func() { close(c.done) }) }

func (c *expiring) Err() error {
	select {
	case <-c.done:
		return context.DeadlineExceeded
	default:
		return nil
	}
}

// TestDeployDeadlineRollsBack: the caller's deadline bounds the deploy (the executor's
// stages.deploy_timeout, an hour here, more than the ten minutes the target used to cap it at),
// and when it passes the target rolls back as on a cancellation.
func TestDeployDeadlineRollsBack(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	good := f.sleeper(t, "before-deadline")
	// Swarm holds a task with a health check in "starting" until the check passes, the first one
	// ten minutes away: the update cannot complete before the deadline.
	slow := f.env.Image(t, "swarm-slow", "HEALTHCHECK --interval=10m CMD true", `CMD ["sleep", "600"]`)
	f.create(t, good)

	ctx := newExpiring(time.Now().Add(time.Hour))
	hung := time.AfterFunc(3*time.Minute, func() {
		t.Error("the new task never reached starting")
		ctx.expire()
	})
	defer hung.Stop()
	log := dockertest.NewLog(t, func(line string) {
		if taskState(line, slow) == "starting" {
			ctx.expire()
		}
	})
	err := f.deploy(t, ctx, f.rollout(slow), log)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, deploy.ErrRolledBack) {
		t.Fatalf("deploy past its deadline: %v, want DeadlineExceeded and ErrRolledBack", err)
	}
	f.requireRunning(t, good)
}

func TestDeployMissingService(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	image := f.sleeper(t, "orphan")

	err := f.deploy(t, context.Background(), f.rollout(image), dockertest.NewLog(t, nil))
	if err == nil || errors.Is(err, deploy.ErrRolledBack) || !strings.Contains(err.Error(), "does not exist: create it first") {
		t.Fatalf("deploy to a missing service: %v", err)
	}
}

// A service Slipway did not create is taken over only when the policy adopts it; from then on it
// is labelled with its repository, and no other repository may change it, adopt or not.
func TestOwnership(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	first, second := f.sleeper(t, "owned-1"), f.sleeper(t, "owned-2")
	f.create(t, first)
	log := dockertest.NewLog(t, nil)

	r := f.rollout(second)
	r.Adopt = false
	if err := f.deploy(t, context.Background(), r, log); err == nil || !strings.Contains(err.Error(), "not created by Slipway") {
		t.Fatalf("deploy to an unadopted service: %v", err)
	}
	f.requireRunning(t, first)

	if err := f.deploy(t, context.Background(), f.rollout(second), log); err != nil {
		t.Fatalf("adopting deploy: %v", err)
	}
	if got := f.env.Docker(t, "service", "inspect", "--format", `{{index .Spec.Labels "dev.slipway.repo"}}`, f.name); got != "acme/api" {
		t.Errorf("owner label %q, want acme/api", got)
	}
	other := f.rollout(first)
	other.Repo = "evil/repo"
	if err := f.deploy(t, context.Background(), other, log); err == nil || !strings.Contains(err.Error(), "belongs to repository acme/api") {
		t.Fatalf("deploy by another repository: %v", err)
	}
	f.requireRunning(t, second)
}

// The nodes pull the new image themselves: the update hands them the registry's login. Without
// it a private image cannot be pulled and Swarm rolls back; with it the task runs.
func TestDeployHandsTheNodesTheRegistryLogin(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	first := f.sleeper(t, "public")
	p := f.env.PrivateImage(t, "swarm-private", `CMD ["sleep", "600"]`)
	private := p.Ref
	f.create(t, first)

	log := dockertest.NewLog(t, nil)
	if err := f.deploy(t, context.Background(), f.rollout(private), log); !errors.Is(err, deploy.ErrRolledBack) {
		t.Fatalf("deploy without a login: %v, want a rollback", err)
	}
	f.requireRunning(t, first)

	creds, err := registry.New(registry.Config{Engine: dockertest.Engine(t, f.env.CLI, f.env.Host), StateDir: t.TempDir()},
		registry.Static{p.Host: {User: p.User, Password: p.Password}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(tripwire(t), f.env.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eng.Close() })
	if f.tgt, err = swarm.New(swarm.Config{UpdateMonitor: time.Second, PullAuth: creds.PullAuth}, eng, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	f.calls = swarm.CountCalls(f.tgt)
	log = dockertest.NewLog(t, nil)
	if err := f.deploy(t, context.Background(), f.rollout(private), log); err != nil {
		t.Fatalf("deploy with the login: %v", err)
	}
	f.requireRunning(t, private)
	if log.Contains(p.Password) {
		t.Error("the log shows the password")
	}
}
