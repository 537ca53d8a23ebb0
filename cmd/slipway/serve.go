package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/slipway-dev/slipway/internal/build"
	"github.com/slipway-dev/slipway/internal/config"
	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/metrics"
	"github.com/slipway-dev/slipway/internal/pipeline"
	"github.com/slipway-dev/slipway/internal/queue"
	"github.com/slipway-dev/slipway/internal/registry"
	"github.com/slipway-dev/slipway/internal/source"
	"github.com/slipway-dev/slipway/internal/store"
	"github.com/slipway-dev/slipway/internal/target/docker"
	"github.com/slipway-dev/slipway/internal/target/swarm"
	"github.com/slipway-dev/slipway/internal/web"
	"github.com/slipway-dev/slipway/internal/webhook"
	"github.com/slipway-dev/slipway/internal/worker"
	"github.com/slipway-dev/slipway/migrations"
)

func serve(ctx context.Context, args, env []string, stderr io.Writer) error {
	cfg, _, err := loadConfig("serve", args, env, stderr)
	if err != nil {
		return err
	}
	if err := cfg.ValidateServe(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	logger := newLogger(cfg, stderr)
	st, err := store.Open(ctx, cfg.DatabaseURL.Reveal(), int32(cfg.Workers*2+8))
	if err != nil {
		return err
	}
	defer st.Close()
	if cfg.MigrateFirst() {
		if err := applyMigrations(ctx, st, logger); err != nil {
			return err
		}
	}
	ms, err := store.LoadMigrations(migrations.FS)
	if err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	metrics.RegisterQueueDepth(reg, st, []string{store.KindRun, store.KindDeployment}, logger)

	notifier := st.NewNotifier(logger)
	hook, err := webhook.NewHandler(webhook.Config{
		Notify:  notifier.Notify,
		Secrets: reveal(cfg.Webhook.Secrets),
		MaxBody: cfg.Webhook.MaxBodyBytes,
		Repos:   config.Repos(cfg.Repositories),
	}, st, m, logger)
	if err != nil {
		return err
	}

	handlers, err := kinds(ctx, cfg, st, logger)
	if err != nil {
		return err
	}
	owner, err := ownerID()
	if err != nil {
		return err
	}
	q, err := queue.New(queue.Config{
		Owner:         owner,
		Workers:       cfg.Workers,
		Lease:         cfg.Queue.Lease.D(),
		PollInterval:  cfg.Queue.PollInterval.D(),
		RescueEvery:   cfg.Queue.RescueEvery.D(),
		BackoffBase:   cfg.Queue.BackoffBase.D(),
		ShutdownGrace: cfg.Queue.ShutdownGrace.D(),
		Kinds:         handlers,
	}, st, m, logger)
	if err != nil {
		return err
	}

	router := web.NewRouter(web.Deps{
		Webhook:  hook,
		Ready:    readiness{st: st, migrations: ms},
		Gatherer: reg,
		API:      st,
		Tokens:   reveal(cfg.API.Tokens),
		Version:  version,
		Logger:   logger,
	})
	srv := &http.Server{Handler: router, ReadHeaderTimeout: 10 * time.Second}
	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.ListenAddr, err)
	}
	logger.InfoContext(ctx, "slipway serving", "addr", ln.Addr().String(), "owner", owner, "workers", cfg.Workers, "version", version)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serving HTTP: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		// Stop taking webhooks first; in-flight requests get a few seconds to finish.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(gctx), 10*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	})
	g.Go(func() error { return q.Run(gctx) })
	g.Go(func() error { notifier.Run(gctx); return nil })
	err = g.Wait()
	logger.Info("slipway stopped", "err", err)
	return err
}

func reveal(secrets []config.Secret) [][]byte {
	out := make([][]byte, len(secrets))
	for i, s := range secrets {
		out[i] = []byte(s.Reveal())
	}
	return out
}

// ownerID names this replica in leases: readable, and unique even across restarts on one host.
func ownerID() (string, error) {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("making owner id: %w", err)
	}
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b)), nil
}

type readiness struct {
	st         *store.Store
	migrations []store.Migration
}

func (r readiness) Ready(ctx context.Context) error {
	if err := r.st.Ping(ctx); err != nil {
		return fmt.Errorf("database unreachable: %w", err)
	}
	n, err := r.st.MigrationsPending(ctx, r.migrations)
	if err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("%d migrations pending", n)
	}
	return nil
}

// kinds wires the queue's item kinds to their handlers.
func kinds(ctx context.Context, cfg config.Config, st *store.Store, logger *slog.Logger) ([]queue.Kind, error) {
	src, err := source.New(source.Config{Dir: cfg.Git.CacheDir, WorkDir: cfg.Git.WorkDir, Timeout: cfg.Git.Timeout.D()},
		logger.With("component", "source"))
	if err != nil {
		return nil, fmt.Errorf("setting up the git cache: %w", err)
	}
	planner := worker.NewPlanner(worker.PlannerConfig{
		Filename: cfg.PipelineFile, Policy: cfg.Policy, Tokens: cfg.Token,
	}, st, src, logger.With("component", "planner"))

	dc := cfg.Docker
	var builder deploy.Builder
	builder, err = build.New(build.Config{DockerBinary: dc.Binary, Host: dc.Host, BuildKit: dc.BuildKit,
		Network: dc.BuildNetwork, Timeout: cfg.Stages.Build.D()}, logger.With("component", "build"))
	if err != nil {
		// Without a docker CLI Slipway still takes webhooks and plans runs; deployments fail with why.
		logger.WarnContext(ctx, "builds and pushes unavailable on this host", "err", err)
		builder = unavailable{err}
	}
	creds := registry.Static{}
	var insecure []string
	for _, r := range cfg.Registries {
		if r.Username != "" {
			creds[r.Host] = registry.Login{User: r.Username, Password: r.Password.Reveal()}
		}
		if r.Insecure {
			insecure = append(insecure, r.Host)
		}
	}
	var reg deploy.Registry
	reg, err = registry.New(registry.Config{DockerBinary: dc.Binary, Host: dc.Host, Insecure: insecure,
		Timeout: cfg.Stages.Push.D()}, creds, logger.With("component", "registry"))
	if err != nil {
		reg = unavailable{err}
	}
	dockerTarget, err := docker.New(docker.Config{DockerBinary: dc.Binary, Host: dc.Host, StableFor: dc.StableFor.D()}, logger.With("component", "target.docker"))
	if err != nil {
		return nil, err
	}
	swarmTarget, err := swarm.New(swarm.Config{DockerBinary: dc.Binary, Host: dc.Host, UpdateMonitor: dc.SwarmUpdateMonitor.D()}, logger.With("component", "target.swarm"))
	if err != nil {
		return nil, err
	}
	executor := worker.NewExecutor(worker.ExecutorConfig{
		BuildTimeout: cfg.Stages.Build.D(), PushTimeout: cfg.Stages.Push.D(), DeployTimeout: cfg.Stages.Deploy.D(),
		Tokens: cfg.Token, InputsHash: build.InputsHash,
	}, st, src, builder, reg, map[string]deploy.Target{
		pipeline.KindDocker: dockerTarget,
		pipeline.KindSwarm:  swarmTarget,
	}, logger.With("component", "executor"))

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
