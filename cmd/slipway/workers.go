package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/slipway-dev/slipway/internal/config"
	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/engine"
	"github.com/slipway-dev/slipway/internal/flow"
	"github.com/slipway-dev/slipway/internal/imagebuild"
	"github.com/slipway-dev/slipway/internal/queue"
	"github.com/slipway-dev/slipway/internal/registry"
	"github.com/slipway-dev/slipway/internal/rollout/docker"
	"github.com/slipway-dev/slipway/internal/rollout/swarm"
	"github.com/slipway-dev/slipway/internal/source"
	"github.com/slipway-dev/slipway/internal/store"
)

// gitCache opens the mirrors that plans, builds and manual deploys read repositories from.
func gitCache(cfg config.Config, logger *slog.Logger) (*source.Cache, error) {
	workDir := cfg.Git.WorkDir
	if workDir == "" && cfg.StateDir != "" {
		workDir = filepath.Join(cfg.StateDir, "checkouts")
	}
	cache, err := source.New(source.Config{Dir: cfg.Git.CacheDir, WorkDir: workDir, Timeout: cfg.Git.Timeout.D()},
		logger.With("component", "source"))
	if err != nil {
		return nil, fmt.Errorf("setting up the git cache: %w", err)
	}
	return cache, nil
}

// kinds wires the queue's item kinds to their handlers.
func kinds(ctx context.Context, cfg config.Config, st *store.Store, eng *engine.Engine, cache *source.Cache, logger *slog.Logger) ([]queue.Kind, error) {
	// Every fetch goes to the configured remote of its repository, never a URL from a payload.
	src := source.Pin(cache, cfg.Remote)
	planner := flow.NewPlanner(flow.PlannerConfig{
		Filename: cfg.PipelineFile, Policy: cfg.Policy, Tokens: cfg.Token,
	}, st, src, logger.With("component", "planner"))

	dc := cfg.Docker
	var builder deploy.Builder
	builder, err := imagebuild.New(imagebuild.Config{Engine: eng, BuildKit: dc.BuildKit,
		Network: dc.BuildNetwork, Timeout: cfg.Stages.Build.D()}, logger.With("component", "build"))
	if err != nil {
		// Without a docker CLI Slipway still takes webhooks and plans runs; deployments fail with why.
		logger.WarnContext(ctx, "builds and pushes unavailable on this host", "err", err)
		builder = unavailable{err}
	}
	static := registry.Static{}
	var insecure []string
	for _, r := range cfg.Registries {
		if r.Username != "" {
			static[r.Host] = registry.Login{User: r.Username, Password: r.Password.Reveal()}
		}
		if r.Insecure {
			insecure = append(insecure, r.Host)
		}
	}
	targets := map[string]deploy.Target{}
	var creds registry.Credentials = static
	// AWS only with aws.region: without it an "ecs" deployment fails saying that this server has
	// no such target, and ECR hosts get the static logins only.
	aws := newAWS(ctx, cfg.AWS, logger.With("component", "aws"))
	if aws != nil {
		if creds, err = aws.credentials(static, cfg.Stages.Push.D(), logger.With("component", "registry.ecr")); err != nil {
			return nil, err
		}
	}
	var reg deploy.Registry
	var pullAuth func(context.Context, string) (string, error) // nil: the targets pull anonymously
	if r, err := registry.New(registry.Config{Engine: eng, StateDir: cfg.StateDir, Insecure: insecure,
		Timeout: cfg.Stages.Push.D()}, creds, logger.With("component", "registry")); err != nil {
		reg = unavailable{err}
	} else {
		reg, pullAuth = r, r.PullAuth
	}
	if aws != nil {
		ecsTarget, err := aws.ecsTarget(reg, logger.With("component", "target.ecs"))
		if err != nil {
			return nil, err
		}
		targets[deploy.PlatformECS] = ecsTarget
	}
	dockerTarget, err := docker.New(docker.Config{StableFor: dc.StableFor.D(), PullAuth: pullAuth}, eng, logger.With("component", "target.docker"))
	if err != nil {
		return nil, err
	}
	swarmTarget, err := swarm.New(swarm.Config{UpdateMonitor: dc.SwarmUpdateMonitor.D(), PullAuth: pullAuth}, eng, logger.With("component", "target.swarm"))
	if err != nil {
		return nil, err
	}
	targets[deploy.PlatformDocker], targets[deploy.PlatformSwarm] = dockerTarget, swarmTarget
	executor := flow.NewExecutor(flow.ExecutorConfig{Builds: cfg.Builds, Policy: cfg.Policy.CheckSpec, Adopts: cfg.Policy.Adopts,
		BuildTimeout: cfg.Stages.Build.D(), PushTimeout: cfg.Stages.Push.D(), DeployTimeout: cfg.Stages.Deploy.D(),
		Tokens: cfg.Token, InputsHash: imagebuild.InputsHash,
	}, st, src, builder, reg, targets, logger.With("component", "executor"))

	return []queue.Kind{
		{Name: store.KindRun, DoneStatus: string(deploy.StatusPlanned), Handler: planner.Handle},
		{Name: store.KindDeployment, DoneStatus: string(deploy.StatusSucceeded), Handler: executor.Handle},
	}, nil
}

// unavailable stands in for a component whose tool is missing on this host; each call fails with
// the reason, so the deployments that need it fail with a message instead of the server not starting.
type unavailable struct{ err error }

func (u unavailable) Build(context.Context, deploy.BuildRequest, deploy.LogFunc) error { return u.err }
func (u unavailable) Digest(context.Context, string) (string, bool, error)             { return "", false, u.err }
func (u unavailable) Push(context.Context, string, deploy.LogFunc) (string, error)     { return "", u.err }
func (u unavailable) Tag(context.Context, string, string) error                        { return u.err }
