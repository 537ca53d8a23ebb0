package flow

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/pipeline"
	"github.com/slipway-dev/slipway/internal/queue"
	"github.com/slipway-dev/slipway/internal/source"
	"github.com/slipway-dev/slipway/internal/store"
)

// PlannerConfig configures a Planner.
type PlannerConfig struct {
	Filename string          // the pipeline file, default .slipway.yml
	Policy   pipeline.Policy // which repositories may deploy to which targets, and push which images
	Tokens   TokenFunc
}

// Planner reads a run's pipeline file at the pushed commit and queues one deployment per service
// and environment the push touches.
type Planner struct {
	cfg    PlannerConfig
	st     Store
	src    Source
	logger *slog.Logger
}

// NewPlanner builds a Planner.
func NewPlanner(cfg PlannerConfig, st Store, src Source, logger *slog.Logger) *Planner {
	cfg.Filename = cmp.Or(cfg.Filename, pipeline.DefaultFilename)
	return &Planner{cfg: cfg, st: st, src: src, logger: logger}
}

// Handle is the queue handler for runs.
func (p *Planner) Handle(ctx context.Context, job queue.Job) error {
	run, err := p.st.RunGet(ctx, job.ID)
	if err != nil {
		return err
	}
	logger := p.logger.With("run_id", run.ID, "repo", run.Repo, "sha", run.AfterSHA)
	repo := repoFor(run, p.cfg.Tokens)
	data, err := p.src.ReadFile(ctx, repo, run.AfterSHA, p.cfg.Filename)
	switch {
	case errors.Is(err, source.ErrNotFound):
		return queue.Permanent(fmt.Errorf("no %s at commit %s (or the commit is not in %s)", p.cfg.Filename, short(run.AfterSHA), run.Repo))
	case errors.Is(err, source.ErrInvalidSHA), errors.Is(err, source.ErrInvalidRepo), errors.Is(err, source.ErrTooLarge):
		return queue.Permanent(err)
	case errors.Is(err, source.ErrNotRegular):
		return queue.Permanent(fmt.Errorf("%s at commit %s must be a file, not a symlink, a directory or a submodule "+
			"(symlinks are not followed): %w", p.cfg.Filename, short(run.AfterSHA), err))
	case err != nil:
		return fmt.Errorf("reading %s: %w", p.cfg.Filename, err) // network trouble: retry
	}
	file, err := pipeline.Parse(p.cfg.Filename, data)
	if err != nil {
		return queue.Permanent(fmt.Errorf("invalid pipeline file:\n%w", err))
	}
	// No before commit is a new branch, as GitHub's all zeros are: every path counts as changed.
	before := cmp.Or(run.BeforeSHA, newBranch)
	changed, all, err := p.src.ChangedPaths(ctx, repo, before, run.AfterSHA)
	switch {
	case errors.Is(err, source.ErrInvalidSHA):
		return queue.Permanent(fmt.Errorf("listing changed paths: the push's before commit: %w", err))
	case errors.Is(err, source.ErrInvalidRepo):
		return queue.Permanent(fmt.Errorf("listing changed paths: %w", err))
	case err != nil:
		return fmt.Errorf("listing changed paths: %w", err) // network trouble: retry
	}
	specs, skips := file.PlanWithSkips(run.Branch, changed, all)
	if err := p.st.RunSkipped(ctx, job.Claim, skips); err != nil {
		if errors.Is(err, store.ErrNotHeld) {
			job.Refused("plan")
		}
		return err
	}
	if len(specs) == 0 {
		return queue.Finish(string(deploy.StatusSkipped), fmt.Errorf(
			"no service of %s deploys from branch %s with the paths this push changed (%d files)", p.cfg.Filename, run.Branch, len(changed)))
	}

	var allowed, refused []deploy.NewDeployment
	for _, spec := range specs {
		dest := spec.Destination
		nd := deploy.NewDeployment{RunID: run.ID, Repo: run.Repo, Service: dest.Service, Environment: dest.Environment,
			Platform: dest.Platform, Spec: spec, CommitSHA: run.AfterSHA}
		// The target, and the image: its registry host is one the server will contact.
		err := p.cfg.Policy.Check(run.Repo, dest)
		if err == nil {
			err = p.cfg.Policy.CheckImage(run.Repo, spec.Build.Image)
		}
		if err != nil {
			nd.Error = err.Error()
			refused = append(refused, nd)
			continue
		}
		allowed = append(allowed, nd)
	}
	ids, err := p.st.DeploymentsPlan(ctx, job.Claim, allowed, refused)
	if errors.Is(err, store.ErrNotHeld) {
		job.Refused("plan")
		return err
	}
	if err != nil {
		return err
	}
	logger.InfoContext(ctx, "run planned", "deployments", ids, "refused", len(refused), "all_paths", all, "changed", len(changed))
	if len(allowed) == 0 {
		reasons := make([]string, len(refused))
		for i, d := range refused {
			reasons[i] = d.Error
		}
		return queue.Permanent(fmt.Errorf("every target of this push is outside the policy for %s:\n%s", run.Repo, strings.Join(reasons, "\n")))
	}
	return nil
}

// newBranch is the before commit of a push that created its branch.
const newBranch = "0000000000000000000000000000000000000000"

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}
