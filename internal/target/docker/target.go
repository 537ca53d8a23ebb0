// Package docker deploys to a named container on the server's own Docker engine: it replaces the
// container with one running the new image, keeps the old one aside until the new one has proved
// itself, and puts the old one back when it does not.
package docker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/dockercli"
	"github.com/slipway-dev/slipway/internal/pipeline"
)

// Config configures a Target; zero values take the defaults named on each field.
type Config struct {
	// DockerBinary is the docker CLI to run, "docker" (found on PATH) by default.
	DockerBinary string
	// Host is DOCKER_HOST for the CLI; "" inherits the server's environment.
	Host string
	// StableFor is how long a new container must keep running before it counts as up; 3s by
	// default. Most broken containers (bad command, missing config) exit within it.
	StableFor time.Duration
	// HealthTimeout is how long a container with a HEALTHCHECK has to become healthy, 60s by
	// default; a target block's own HealthTimeout wins.
	HealthTimeout time.Duration
	// StopTimeout is the grace period docker stop gives the old container, 5s by default: the
	// service is down from then until the new container runs, so it is kept short.
	StopTimeout time.Duration
	// PollInterval is how often the container's state is read while waiting, 250ms by default.
	PollInterval time.Duration
	// RestoreTimeout bounds putting the previous container back after a failure or a
	// cancellation, which runs even when the deployment's context is done; 2m by default.
	RestoreTimeout time.Duration
}

// Target deploys to containers on one Docker engine.
type Target struct {
	cfg    Config
	docker *dockercli.CLI
	logger *slog.Logger
}

var _ deploy.Target = (*Target)(nil)

// New returns a Target running cfg.DockerBinary against cfg.Host.
func New(cfg Config, logger *slog.Logger) (*Target, error) {
	if logger == nil {
		return nil, errors.New("docker target: a logger is required")
	}
	cfg.DockerBinary = cmp.Or(cfg.DockerBinary, "docker")
	cfg.StableFor = cmp.Or(cfg.StableFor, 3*time.Second)
	cfg.HealthTimeout = cmp.Or(cfg.HealthTimeout, 60*time.Second)
	cfg.StopTimeout = cmp.Or(cfg.StopTimeout, 5*time.Second)
	cfg.PollInterval = cmp.Or(cfg.PollInterval, 250*time.Millisecond)
	cfg.RestoreTimeout = cmp.Or(cfg.RestoreTimeout, 2*time.Minute)
	if err := dockercli.CheckDurations("docker target", map[string]time.Duration{
		"StableFor": cfg.StableFor, "HealthTimeout": cfg.HealthTimeout, "StopTimeout": cfg.StopTimeout,
		"PollInterval": cfg.PollInterval, "RestoreTimeout": cfg.RestoreTimeout,
	}); err != nil {
		return nil, err
	}
	return &Target{
		cfg:    cfg,
		docker: dockercli.New(cfg.DockerBinary, cfg.Host, logger),
		logger: logger,
	}, nil
}

// Deploy replaces the container r.Target.Docker.Container with one running r.Image, and waits for
// it to keep running (and to become healthy, if its image has a HEALTHCHECK). When the new
// container fails and the previous one is running again, the error wraps deploy.ErrRolledBack.
func (t *Target) Deploy(ctx context.Context, r deploy.Rollout, log deploy.LogFunc) error {
	restored, err := t.rollout(ctx, r, log)
	return deploy.RolloutError(false, r.Image, restored, err)
}

// Rollback runs r.Image, a known-good image, exactly as Deploy would. Its failure is a plain
// error even when the container it replaced runs again, since that one is not a previous version
// to roll back to but the version being rolled back from.
func (t *Target) Rollback(ctx context.Context, r deploy.Rollout, log deploy.LogFunc) error {
	restored, err := t.rollout(ctx, r, log)
	return deploy.RolloutError(true, r.Image, restored, err)
}

func checkRollout(r deploy.Rollout) (*pipeline.DockerTarget, error) {
	spec := r.Target.Docker
	if spec == nil {
		return nil, fmt.Errorf("target %q is not a docker target", r.Target.Ref())
	}
	if err := dockercli.CheckName("container", spec.Container); err != nil {
		return nil, err
	}
	if err := dockercli.CheckPinned(r.Image); err != nil {
		return nil, err
	}
	return spec, nil
}

// previousName is where the running container waits while its replacement starts.
func previousName(name string) string { return name + "-slipway-previous" }
