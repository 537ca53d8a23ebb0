// Package swarm deploys to an existing Docker Swarm service through the Engine API: it updates the
// service's image and lets Swarm roll the tasks over, roll back on failure, and report how it went.
// Slipway updates services; it does not own their definition, so it never creates one.
package swarm

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/dockercli"
	"github.com/slipway-dev/slipway/internal/engine"
)

// Config configures a Target; zero values take the defaults named on each field. How long a
// deploy may take is the caller's: the context's deadline bounds it.
type Config struct {
	// UpdateMonitor is how long Swarm watches each updated task for failure before it moves on,
	// 5s by default. It is also the rollback's monitor, so that a failed update comes back as fast
	// as it went out.
	UpdateMonitor time.Duration
	// RollbackTimeout bounds the rollback Slipway starts itself after a cancellation, a passed
	// deadline or a paused update, and the wait for it; 5m by default.
	RollbackTimeout time.Duration
	// PollInterval is the longest wait between two reads of the service's tasks while Swarm
	// updates or rolls back; the reads start 100ms apart and the gap doubles up to it. Swarm's
	// verdict comes from the engine's events as it happens; without them, from these reads. 1s by
	// default.
	PollInterval time.Duration
	// PullAuth gives the X-Registry-Auth that a service update hands to the nodes, which pull
	// the image themselves; nil, or "", leaves the service the login it was last given (an ECR
	// token in it expires after 12 hours). *registry.Registry's PullAuth is one.
	PullAuth func(ctx context.Context, ref string) (string, error)
}

// engineAPI is the part of the Engine API client the target uses. Every call and option it makes
// exists in API 1.41 (Docker 20.10), the oldest engine Slipway supports.
type engineAPI interface {
	ServiceInspectWithRaw(ctx context.Context, serviceID string, opts swarm.ServiceInspectOptions) (swarm.Service, []byte, error)
	ServiceUpdate(ctx context.Context, serviceID string, version swarm.Version, spec swarm.ServiceSpec, opts swarm.ServiceUpdateOptions) (swarm.ServiceUpdateResponse, error)
	TaskList(ctx context.Context, opts swarm.TaskListOptions) ([]swarm.Task, error)
	TaskLogs(ctx context.Context, taskID string, opts container.LogsOptions) (io.ReadCloser, error)
	Events(ctx context.Context, opts events.ListOptions) (<-chan events.Message, <-chan error)
}

var _ engineAPI = (*client.Client)(nil)

// Target deploys to services of one swarm. It is safe for concurrent use.
type Target struct {
	cfg    Config
	api    engineAPI
	logger *slog.Logger
}

var _ deploy.Target = (*Target)(nil)

// New returns a Target updating services through eng, a manager of the swarm.
func New(cfg Config, eng *engine.Engine, logger *slog.Logger) (*Target, error) {
	switch {
	case eng == nil || eng.API == nil:
		return nil, errors.New("swarm target: a docker engine is required")
	case logger == nil:
		return nil, errors.New("swarm target: a logger is required")
	}
	cfg.UpdateMonitor = cmp.Or(cfg.UpdateMonitor, 5*time.Second)
	cfg.RollbackTimeout = cmp.Or(cfg.RollbackTimeout, 5*time.Minute)
	cfg.PollInterval = cmp.Or(cfg.PollInterval, time.Second)
	if err := dockercli.CheckDurations("swarm target", map[string]time.Duration{
		"UpdateMonitor": cfg.UpdateMonitor, "RollbackTimeout": cfg.RollbackTimeout, "PollInterval": cfg.PollInterval,
	}); err != nil {
		return nil, err
	}
	return &Target{cfg: cfg, api: eng.API, logger: logger}, nil
}

// Deploy updates the service r.Destination.Swarm.Service to r.Image and waits until Swarm reports the
// update completed and a task runs the image. When Swarm (or Slipway, after a cancellation or a
// passed deadline) rolled the service back, the error wraps deploy.ErrRolledBack.
func (t *Target) Deploy(ctx context.Context, r deploy.Rollout, log deploy.LogFunc) error {
	rolledBack, err := t.update(ctx, r, log)
	return deploy.RolloutError(false, r.Image, rolledBack, err)
}

// Rollback updates the service to r.Image, a known-good image, as Deploy does. It is not Swarm's
// rollback, which only returns to the spec before the last update, whatever that was. Its failure
// is a plain error even when Swarm rolled the update back.
func (t *Target) Rollback(ctx context.Context, r deploy.Rollout, log deploy.LogFunc) error {
	rolledBack, err := t.update(ctx, r, log)
	return deploy.RolloutError(true, r.Image, rolledBack, err)
}

func checkRollout(r deploy.Rollout) (service string, err error) {
	if r.Destination.Swarm == nil {
		return "", fmt.Errorf("target %q is not a swarm target", r.Destination.Ref())
	}
	if err := dockercli.CheckName("swarm service", r.Destination.Swarm.Service); err != nil {
		return "", err
	}
	if err := dockercli.CheckPinned(r.Image); err != nil {
		return "", err
	}
	return r.Destination.Swarm.Service, nil
}

// stream is the LogFunc stream of every line the target writes: the deploy stage's.
const stream = "deploy"

func say(log deploy.LogFunc, format string, args ...any) {
	log(stream, fmt.Sprintf(format, args...))
}
