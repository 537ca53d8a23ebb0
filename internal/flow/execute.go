package flow

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/pipeline"
	"github.com/slipway-dev/slipway/internal/queue"
)

// ExecutorConfig configures an Executor. Each stage runs under its own timeout.
type ExecutorConfig struct {
	// Builds is how many builds may run at once, 0 for two per CPU. Builds are CPU-heavy; the
	// rest of a deployment (push, rollout) mostly waits, so it holds no build slot, and a
	// monorepo push overlaps the builds of some services with the rollouts of others.
	Builds        int
	BuildTimeout  time.Duration // checkout and build (default 30m)
	PushTimeout   time.Duration // default 10m
	DeployTimeout time.Duration // default 15m
	Tokens        TokenFunc
	// Policy is checked before every rollout; nil allows every destination.
	Policy PolicyFunc
	// Adopts says whether a target Slipway did not create may be taken over; nil adopts none.
	Adopts func(deploy.Destination) bool
	// InputsHash names an image by what went into it, so an unchanged service is not rebuilt.
	InputsHash func(deploy.BuildRequest) (string, error)
}

// Executor drives one deployment: checkout, build (or reuse), push, rollout.
type Executor struct {
	cfg      ExecutorConfig
	st       Store
	src      Source
	builder  deploy.Builder
	registry deploy.Registry
	targets  map[string]deploy.Target
	logger   *slog.Logger
	builds   chan struct{} // a token per build slot
}

// NewExecutor builds an Executor; targets maps a target kind ("docker", "swarm", "ecs") to its Target.
func NewExecutor(cfg ExecutorConfig, st Store, src Source, b deploy.Builder, r deploy.Registry,
	targets map[string]deploy.Target, logger *slog.Logger) *Executor {
	cfg.BuildTimeout = cmp.Or(cfg.BuildTimeout, 30*time.Minute)
	cfg.PushTimeout = cmp.Or(cfg.PushTimeout, 10*time.Minute)
	cfg.DeployTimeout = cmp.Or(cfg.DeployTimeout, 15*time.Minute)
	// Two per CPU: a build also waits on the engine and the disk, and the monorepo benchmark
	// gains little beyond it (issue 11's note), while a bound keeps a large push from thrashing.
	cfg.Builds = cmp.Or(cfg.Builds, 2*runtime.NumCPU())
	return &Executor{cfg: cfg, st: st, src: src, builder: b, registry: r, targets: targets, logger: logger,
		builds: make(chan struct{}, cfg.Builds)}
}

// Handle is the queue handler for deployments.
func (e *Executor) Handle(ctx context.Context, job queue.Job) error {
	d, err := e.st.DeploymentGet(ctx, job.ID)
	if err != nil {
		return err
	}
	run, err := e.st.RunGet(ctx, d.RunID)
	if err != nil {
		return err
	}
	logger := e.logger.With("deployment_id", d.ID, "service", d.Service, "environment", d.Environment, "sha", short(d.CommitSHA))
	lw := newLogWriter(e.st, job.Claim, func() { job.Refused("log") }, logger)
	defer lw.Close()
	lw.Logf("attempt %d by %s: %s of %s at %s to %s", job.Attempt, job.Owner, d.Service, d.Repo, short(d.CommitSHA), d.Environment)

	spec := d.Spec
	target, ok := e.targets[spec.Destination.Platform]
	if !ok {
		return queue.Permanent(fmt.Errorf("this server has no %q target configured", spec.Destination.Platform))
	}
	p := plan{job: job, d: d, run: run, spec: spec, target: target, lw: lw,
		adopt: e.cfg.Adopts != nil && e.cfg.Adopts(spec.Destination)}
	if p.live, p.hasLive, err = e.st.DeploymentLive(ctx, d.Repo, d.Service, d.Environment); err != nil {
		return err
	}
	if d.TargetTouched {
		// Putting back what was live is allowed whatever the policy says now: it undoes a change.
		if done, err := e.resume(ctx, p); done {
			return err
		}
	}
	if err := e.cfg.Policy.check(d.Repo, spec); err != nil {
		lw.Logf("refused: %v", err)
		return queue.Permanent(fmt.Errorf("refused when it was to run: %w", err))
	}
	err = e.execute(ctx, p)
	if err != nil {
		lw.Logf("%s", describe(ctx, err))
		logger.WarnContext(ctx, "deployment did not succeed", "err", err)
	}
	return err
}

// plan is what one attempt at a deployment works from.
type plan struct {
	job     queue.Job
	d       deploy.Deployment
	run     deploy.Run
	spec    deploy.Spec
	target  deploy.Target
	lw      *logWriter
	live    deploy.Deployment // what the database records as live there, if hasLive
	hasLive bool
	adopt   bool // the policy adopts the target should it find it unowned
}

// rollout is the request to the target for image, with what is recorded live as the previous
// version and the claim's fence.
func (p plan) rollout(image string) deploy.Rollout {
	r := deploy.Rollout{DeploymentID: p.d.ID, Repo: p.d.Repo, Service: p.d.Service,
		Environment: p.d.Environment, Image: image, Destination: p.spec.Destination, Held: p.job.Held,
		Waiting: p.job.Waiting, Adopt: p.adopt}
	if p.hasLive {
		r.Previous, r.PreviousID = pinned(p.live), p.live.ID
		r.PreviousDestination = p.live.Spec.Destination
	}
	return r
}

func describe(ctx context.Context, err error) string {
	if cause := context.Cause(ctx); cause != nil {
		return "stopped: " + cause.Error()
	}
	return "error: " + err.Error()
}

func (e *Executor) execute(ctx context.Context, p plan) error {
	d, spec, lw := p.d, p.spec, p.lw
	var imageRef, digest string
	switch {
	case d.ImageDigest != "":
		// A rollback, or a retry after the image was pushed: nothing to build.
		imageRef, digest = cmp.Or(d.ImageRef, spec.Build.Image+"@"+d.ImageDigest), d.ImageDigest
		if spec.RollbackOf != 0 {
			lw.Logf("rollback to deployment %d: no build, its image %s@%s", spec.RollbackOf, spec.Build.Image, digest)
		} else {
			lw.Logf("image %s@%s was pushed by an earlier attempt: no build", spec.Build.Image, digest)
		}
	default:
		if err := e.st.DeploymentStage(ctx, p.job.Claim, deploy.StatusBuilding); err != nil {
			return err
		}
		var err error
		if imageRef, digest, err = e.image(ctx, p); err != nil {
			return err
		}
	}
	var replaced *int64
	if p.hasLive {
		replaced = &p.live.ID
	}
	if err := e.st.DeploymentImage(ctx, p.job.Claim, imageRef, digest, replaced); err != nil {
		return err
	}
	if err := e.st.DeploymentStage(ctx, p.job.Claim, deploy.StatusDeploying); err != nil {
		return err
	}
	image := spec.Build.Image + "@" + digest
	r := p.rollout(image)
	r.Record = func(ctx context.Context, res deploy.Result) error {
		return e.st.DeploymentResult(ctx, p.job.Claim, res)
	}
	lw.Logf("rolling out %s to %s %s (live: %s)", image, spec.Destination.Platform, spec.Destination.Name(), cmp.Or(r.Previous, "none"))
	dctx, cancel := context.WithTimeoutCause(ctx, e.cfg.DeployTimeout,
		fmt.Errorf("the deploy stage did not finish within %s (stages.deploy_timeout): %w", e.cfg.DeployTimeout, context.DeadlineExceeded))
	defer cancel()
	var err error
	if spec.RollbackOf == 0 {
		err = p.target.Deploy(dctx, r, lw.Log)
	} else {
		err = p.target.Rollback(dctx, r, lw.Log)
	}
	switch {
	case err == nil:
		lw.Logf("live: %s", image)
		return nil
	case errors.Is(err, deploy.ErrRolledBack):
		return queue.Finish(string(deploy.StatusRolledBack), fmt.Errorf("rollout failed: %w", err))
	case ctx.Err() != nil:
		return ctx.Err()
	default:
		return queue.Permanent(fmt.Errorf("rollout failed: %w", err))
	}
}

// image returns the pushed image for the deployment's commit, building it only when the registry
// does not already hold an image made from the same build inputs.
func (e *Executor) image(ctx context.Context, p plan) (ref, digest string, err error) {
	d, run, spec, lw := p.d, p.run, p.spec, p.lw
	bctx, cancel := context.WithTimeoutCause(ctx, e.cfg.BuildTimeout,
		fmt.Errorf("checkout and build did not finish within %s (stages.build_timeout)", e.cfg.BuildTimeout))
	defer cancel()
	co, err := e.src.Checkout(bctx, repoFor(run, e.cfg.Tokens), d.CommitSHA)
	if err != nil {
		return "", "", fmt.Errorf("checking out %s: %w", short(d.CommitSHA), err)
	}
	defer co.Close()
	if err := pipeline.CheckBuild(co.Dir, d.Service, spec.Build); err != nil {
		return "", "", queue.Permanent(err)
	}
	req := deploy.BuildRequest{
		Dir: co.Dir, Context: spec.Build.Context, Dockerfile: spec.Build.Dockerfile,
		BuildArgs: spec.Build.BuildArgs, Stage: spec.Build.Stage,
		Labels: map[string]string{
			"org.opencontainers.image.revision": d.CommitSHA,
			"org.opencontainers.image.source":   d.Repo,
			"dev.slipway.service":               d.Service,
		},
	}
	hash, err := e.cfg.InputsHash(req)
	if err != nil {
		return "", "", queue.Permanent(fmt.Errorf("hashing build inputs: %w", err))
	}
	contentRef := spec.Build.Image + ":in-" + hash
	commitRef := spec.Build.Image + ":" + d.CommitSHA
	if digest, ok, err := e.registry.Digest(bctx, contentRef); err != nil {
		lw.Logf("could not ask the registry for %s (building anyway): %v", contentRef, err)
	} else if ok {
		lw.Logf("registry already holds %s (%s) built from identical inputs: build skipped", contentRef, digest)
		// The commit's tag too, as a build would have left it; without it the image is still
		// the right one, under its inputs tag.
		if err := e.registry.Tag(bctx, commitRef, digest); err != nil {
			if ctx.Err() != nil {
				return "", "", ctx.Err()
			}
			lw.Logf("could not tag %s (deploying %s): %v", commitRef, contentRef, err)
			return contentRef, digest, nil
		}
		return commitRef, digest, nil
	}

	req.Tags = []string{contentRef, commitRef}
	release, err := e.buildSlot(bctx, lw)
	if err != nil {
		return "", "", err
	}
	lw.Logf("building %s (dockerfile %s, context %s)", commitRef, req.Dockerfile, req.Context)
	started := time.Now()
	err = e.builder.Build(bctx, req, lw.Log)
	release()
	if err != nil {
		if ctx.Err() != nil {
			return "", "", ctx.Err()
		}
		return "", "", queue.Permanent(fmt.Errorf("build failed: %w", err))
	}
	lw.Logf("built in %s", time.Since(started).Round(time.Millisecond))

	if err := e.st.DeploymentStage(ctx, p.job.Claim, deploy.StatusPushing); err != nil {
		return "", "", err
	}
	pctx, pcancel := context.WithTimeoutCause(ctx, e.cfg.PushTimeout,
		fmt.Errorf("the push did not finish within %s (stages.push_timeout)", e.cfg.PushTimeout))
	defer pcancel()
	digest, err = e.registry.Push(pctx, contentRef, lw.Log)
	if err != nil {
		return "", "", fmt.Errorf("pushing %s: %w", contentRef, err)
	}
	// The commit's tag, for people and other tools: the registry already holds the image, so
	// the tag is two requests to it, not another docker push.
	if err := e.registry.Tag(pctx, commitRef, digest); err != nil {
		if ctx.Err() != nil {
			return "", "", ctx.Err()
		}
		lw.Logf("could not tag %s through the registry API (pushing it instead): %v", commitRef, err)
		if _, err := e.registry.Push(pctx, commitRef, lw.Log); err != nil {
			return "", "", fmt.Errorf("pushing %s: %w", commitRef, err)
		}
	}
	lw.Logf("pushed %s@%s", spec.Build.Image, digest)
	return commitRef, digest, nil
}

// buildSlot waits for one of the replica's build slots and returns its release.
func (e *Executor) buildSlot(ctx context.Context, lw *logWriter) (release func(), err error) {
	select {
	case e.builds <- struct{}{}:
	default:
		lw.Logf("waiting for a build slot (%d builds at once on this server)", cap(e.builds))
		select {
		case e.builds <- struct{}{}:
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
	return func() { <-e.builds }, nil
}

// pinned is the digest reference of what a deployment put live.
func pinned(d deploy.Deployment) string {
	if d.ImageDigest == "" {
		return ""
	}
	if d.Spec.Build.Image == "" {
		return ""
	}
	return d.Spec.Build.Image + "@" + d.ImageDigest
}
