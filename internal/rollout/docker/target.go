// Package docker deploys to a named container on the server's own Docker engine, through the
// Engine API: it creates the new container beside the running one, swaps them, watches the new
// one through the engine's events, and puts the previous one back when it fails.
//
// What the previous version is comes from the database (the deployment recorded live) and the
// labels Slipway puts on every container it creates, never from a name an interrupted attempt
// may have left: a retry, a crash or a paused worker can leave any of the states in between, and
// the next attempt starts from what it finds.
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
	"github.com/slipway-dev/slipway/internal/engine"
)

// Config configures a Target; zero values take the defaults named on each field.
type Config struct {
	// StableFor is how long a new container must keep running before it counts as up; 3s by
	// default. Most broken containers (bad command, missing config) exit within it. Waiting costs
	// nothing: the target listens to the engine's events.
	StableFor time.Duration
	// HealthTimeout is how long a container with a HEALTHCHECK has to become healthy, 60s by
	// default; a target block's own HealthTimeout wins.
	HealthTimeout time.Duration
	// StopTimeout is the grace period the old container gets to stop, 5s by default: the service
	// is down from then until the new container runs, so it is kept short.
	StopTimeout time.Duration
	// RestoreTimeout bounds putting the previous container back after a failure or a
	// cancellation, which runs even when the deployment's context is done; 2m by default.
	RestoreTimeout time.Duration
	// PullAuth gives the engine's X-Registry-Auth for pulling an image the engine does not have
	// (a rollback to an image pruned since, a server that did not build it); nil, or "", pulls
	// anonymously. *registry.Registry's PullAuth is one.
	PullAuth func(ctx context.Context, ref string) (string, error)
}

// Target deploys to containers on one Docker engine.
type Target struct {
	cfg    Config
	eng    *engine.Engine
	logger *slog.Logger
}

var _ deploy.Target = (*Target)(nil)

// New returns a Target on eng.
func New(cfg Config, eng *engine.Engine, logger *slog.Logger) (*Target, error) {
	if eng == nil || logger == nil {
		return nil, errors.New("docker target: an engine and a logger are required")
	}
	cfg.StableFor = cmp.Or(cfg.StableFor, 3*time.Second)
	cfg.HealthTimeout = cmp.Or(cfg.HealthTimeout, 60*time.Second)
	cfg.StopTimeout = cmp.Or(cfg.StopTimeout, 5*time.Second)
	cfg.RestoreTimeout = cmp.Or(cfg.RestoreTimeout, 2*time.Minute)
	if err := dockercli.CheckDurations("docker target", map[string]time.Duration{
		"StableFor": cfg.StableFor, "HealthTimeout": cfg.HealthTimeout, "StopTimeout": cfg.StopTimeout,
		"RestoreTimeout": cfg.RestoreTimeout,
	}); err != nil {
		return nil, err
	}
	return &Target{cfg: cfg, eng: eng, logger: logger}, nil
}

// Deploy replaces the container r.Destination.Docker.Container with one running r.Image, and waits for
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

// Restore puts the live version (r.PreviousID, r.Previous) back under the container's name after
// an interrupted attempt, removing whatever else of this target it finds.
func (t *Target) Restore(ctx context.Context, r deploy.Rollout, log deploy.LogFunc) error {
	spec := r.Destination.Docker
	if spec == nil {
		return fmt.Errorf("target %q is not a docker target", r.Destination.Ref())
	}
	if err := dockercli.CheckName("container", spec.Container); err != nil {
		return err
	}
	s, err := t.survey(ctx, spec.Container, r.PreviousID)
	if err != nil {
		return err
	}
	if err := s.checkOwner(r); err != nil {
		return err
	}
	if err := t.clear(ctx, r, s.others, log); err != nil {
		return err
	}
	prev := s.live
	if prev == nil {
		if r.Previous == "" {
			say(log, "nothing was live on %s before: nothing to put back", spec.Container)
			return nil
		}
		if prev, err = t.recreate(ctx, r, log); err != nil {
			return err
		}
	}
	return t.restart(ctx, r, spec.Container, prev, log)
}

func checkRollout(r deploy.Rollout) (*deploy.Container, error) {
	spec := r.Destination.Docker
	if spec == nil {
		return nil, fmt.Errorf("target %q is not a docker target", r.Destination.Ref())
	}
	if err := dockercli.CheckName("container", spec.Container); err != nil {
		return nil, err
	}
	if err := dockercli.CheckPinned(r.Image); err != nil {
		return nil, err
	}
	return spec, nil
}

func say(log deploy.LogFunc, format string, args ...any) {
	log(dockercli.Stream, fmt.Sprintf(format, args...))
}
