package swarm_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/dockercli/dockertest"
	"github.com/slipway-dev/slipway/internal/pipeline"
	"github.com/slipway-dev/slipway/internal/target/swarm"
)

type fixture struct {
	env  dockertest.Env
	tgt  *swarm.Target
	name string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	env := dockertest.Require(t)
	tgt, err := swarm.New(swarm.Config{
		DockerBinary:  env.CLI,
		Host:          env.Host,
		UpdateMonitor: time.Second,
		PollInterval:  200 * time.Millisecond,
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{env: env, tgt: tgt, name: dockertest.Name("slipway-swarm")}
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
	// busybox sleep ignores SIGTERM: a short grace period keeps every update quick, and a short
	// monitor the create itself.
	f.env.Docker(t, "service", "create", "--quiet", "--detach=false", "--name", f.name,
		"--network", "host", "--stop-grace-period", "1s", "--update-monitor", "1s", image)
}

func (f *fixture) rollout(image string) deploy.Rollout {
	return deploy.Rollout{
		DeploymentID: time.Now().UnixNano(), Repo: "acme/api", Service: "api", Environment: "test", Image: image,
		Target: pipeline.Target{Service: "api", Environment: "test", Kind: pipeline.KindSwarm,
			Swarm: &pipeline.SwarmTarget{Service: f.name}},
	}
}

func (f *fixture) deploy(t *testing.T, ctx context.Context, r deploy.Rollout, log *dockertest.Log) error {
	t.Helper()
	start := time.Now()
	err := f.tgt.Deploy(ctx, r, log.Func)
	t.Logf("Deploy took %s", time.Since(start).Round(time.Millisecond))
	return err
}

// requireRunning checks the service's spec and that one of its tasks runs image.
func (f *fixture) requireRunning(t *testing.T, image string) {
	t.Helper()
	if got := f.env.Docker(t, "service", "inspect", "--format", "{{.Spec.TaskTemplate.ContainerSpec.Image}}", f.name); got != image {
		t.Fatalf("service image = %s, want %s", got, image)
	}
	running := f.env.Docker(t, "service", "ps", "--no-trunc", "--filter", "desired-state=running",
		"--format", "{{.Image}} {{.CurrentState}}", f.name)
	for line := range strings.Lines(running) {
		if strings.HasPrefix(line, image+" Running") {
			return
		}
	}
	t.Fatalf("no task runs %s:\n%s", image, running)
}

func TestDeployUpdatesServiceAndRollsBack(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	first, second := f.sleeper(t, "first"), f.sleeper(t, "second")
	f.create(t, first)

	log := dockertest.NewLog(t, nil)
	if err := f.deploy(t, context.Background(), f.rollout(second), log); err != nil {
		t.Fatalf("deploy: %v", err)
	}
	f.requireRunning(t, second)

	start := time.Now()
	r := f.rollout(first)
	r.Previous = second
	if err := f.tgt.Rollback(context.Background(), r, dockertest.NewLog(t, nil).Func); err != nil {
		t.Fatalf("rollback: %v", err)
	}
	t.Logf("Rollback took %s", time.Since(start).Round(time.Millisecond))
	f.requireRunning(t, first)

	// The same image again changes no task; Swarm records no update, and that is a success.
	if err := f.deploy(t, context.Background(), f.rollout(first), dockertest.NewLog(t, nil)); err != nil {
		t.Fatalf("deploying the running image again: %v", err)
	}
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
	f.requireRunning(t, good)
}

func TestDeployCancelledRollsBack(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	good, next := f.sleeper(t, "before-cancel"), f.sleeper(t, "cancelled")
	f.create(t, good)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The CLI's first progress line: the update has reached the service.
	log := dockertest.NewLog(t, func(line string) {
		if strings.Contains(line, "overall progress") {
			cancel()
		}
	})
	err := f.deploy(t, ctx, f.rollout(next), log)
	if !errors.Is(err, context.Canceled) || !errors.Is(err, deploy.ErrRolledBack) {
		t.Fatalf("cancelled deploy: %v, want context.Canceled and ErrRolledBack", err)
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
