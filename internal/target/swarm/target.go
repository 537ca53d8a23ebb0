// Package swarm deploys to an existing Docker Swarm service: it updates the service's image and
// lets Swarm roll the tasks over, roll back on failure, and report how it went. Slipway updates
// services; it does not own their definition, so it never creates one.
package swarm

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/dockercli"
)

// Config configures a Target; zero values take the defaults named on each field.
type Config struct {
	// DockerBinary is the docker CLI to run, "docker" (found on PATH) by default.
	DockerBinary string
	// Host is DOCKER_HOST for the CLI, a manager of the swarm; "" inherits the server's
	// environment.
	Host string
	// UpdateMonitor is how long Swarm watches each updated task for failure before it moves on,
	// 5s by default. It is also the rollback's monitor, so that a failed update comes back as fast
	// as it went out.
	UpdateMonitor time.Duration
	// Timeout bounds a whole deploy, update and wait; 10m by default. A deploy that runs out of
	// time is rolled back, as a cancelled one is.
	Timeout time.Duration
	// RollbackTimeout bounds the `docker service rollback` Slipway starts itself after a
	// cancellation, a timeout or a paused update, and the wait for it; 5m by default.
	RollbackTimeout time.Duration
	// PollInterval is how often the service is read while Swarm finishes an update or rollback
	// the CLI stopped watching; 500ms by default.
	PollInterval time.Duration
}

// Target deploys to services of one swarm.
type Target struct {
	cfg    Config
	docker *dockercli.CLI
	logger *slog.Logger
}

var _ deploy.Target = (*Target)(nil)

// New returns a Target running cfg.DockerBinary against cfg.Host.
func New(cfg Config, logger *slog.Logger) (*Target, error) {
	if logger == nil {
		return nil, errors.New("swarm target: a logger is required")
	}
	cfg.DockerBinary = cmp.Or(cfg.DockerBinary, "docker")
	cfg.UpdateMonitor = cmp.Or(cfg.UpdateMonitor, 5*time.Second)
	cfg.Timeout = cmp.Or(cfg.Timeout, 10*time.Minute)
	cfg.RollbackTimeout = cmp.Or(cfg.RollbackTimeout, 5*time.Minute)
	cfg.PollInterval = cmp.Or(cfg.PollInterval, 500*time.Millisecond)
	if err := dockercli.CheckDurations("swarm target", map[string]time.Duration{
		"UpdateMonitor": cfg.UpdateMonitor, "Timeout": cfg.Timeout,
		"RollbackTimeout": cfg.RollbackTimeout, "PollInterval": cfg.PollInterval,
	}); err != nil {
		return nil, err
	}
	return &Target{
		cfg:    cfg,
		docker: dockercli.New(cfg.DockerBinary, cfg.Host, logger),
		logger: logger,
	}, nil
}

// Deploy updates the service r.Target.Swarm.Service to r.Image and waits until Swarm reports the
// update completed and a task runs the image. When Swarm (or Slipway, after a cancellation or a
// timeout) rolled the service back, the error wraps deploy.ErrRolledBack.
func (t *Target) Deploy(ctx context.Context, r deploy.Rollout, log deploy.LogFunc) error {
	rolledBack, err := t.update(ctx, r, log)
	return deploy.RolloutError(false, r.Image, rolledBack, err)
}

// Rollback updates the service to r.Image, a known-good image, as Deploy does. It is not `docker
// service rollback`, which only returns to the spec before the last update, whatever that was.
// Its failure is a plain error even when Swarm rolled the update back.
func (t *Target) Rollback(ctx context.Context, r deploy.Rollout, log deploy.LogFunc) error {
	rolledBack, err := t.update(ctx, r, log)
	return deploy.RolloutError(true, r.Image, rolledBack, err)
}

func checkRollout(r deploy.Rollout) (service string, err error) {
	if r.Target.Swarm == nil {
		return "", fmt.Errorf("target %q is not a swarm target", r.Target.Ref())
	}
	if err := dockercli.CheckName("swarm service", r.Target.Swarm.Service); err != nil {
		return "", err
	}
	if err := dockercli.CheckPinned(r.Image); err != nil {
		return "", err
	}
	return r.Target.Swarm.Service, nil
}

func say(log deploy.LogFunc, format string, args ...any) {
	log(dockercli.Stream, fmt.Sprintf(format, args...))
}
