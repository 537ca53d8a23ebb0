// Package flow holds the use cases that turn a push into what runs, one per file: plan a run
// (plan.go: read its pipeline file, queue its deployments), execute a deployment (execute.go:
// build, push, roll out), restore a target after an interrupted attempt (restore.go), and roll back
// to what an earlier deployment put live (rollback.go). The first two are queue handlers.
package flow

import (
	"context"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/source"
	"github.com/slipway-dev/slipway/internal/store"
)

// Store is what the handlers read and write; *store.Store implements it.
type Store interface {
	RunGet(ctx context.Context, id int64) (deploy.Run, error)
	RunSkipped(ctx context.Context, c store.Claim, skips []deploy.Skip) error
	DeploymentsPlan(ctx context.Context, c store.Claim, queue, refused []deploy.NewDeployment) ([]int64, error)
	DeploymentGet(ctx context.Context, id int64) (deploy.Deployment, error)
	DeploymentStage(ctx context.Context, c store.Claim, status deploy.Status) error
	DeploymentImage(ctx context.Context, c store.Claim, ref, digest string, replaced *int64) error
	DeploymentResult(ctx context.Context, c store.Claim, res deploy.Result) error
	DeploymentLive(ctx context.Context, repo, service, environment string) (deploy.Deployment, bool, error)
	DeploymentOvertakenBy(ctx context.Context, d deploy.Deployment) (int64, bool, error)
	LogStore
}

var _ Store = (*store.Store)(nil)

// Source reads repositories at a commit; *source.Cache implements it.
type Source interface {
	ReadFile(ctx context.Context, repo source.Repo, sha, path string) ([]byte, error)
	ChangedPaths(ctx context.Context, repo source.Repo, before, after string) ([]string, bool, error)
	Checkout(ctx context.Context, repo source.Repo, sha string) (*source.Checkout, error)
}

var _ Source = (*source.Cache)(nil)

// TokenFunc returns the git token for a repository, "" for none.
type TokenFunc func(repo string) string

// PolicyFunc says whether repo may deploy spec (its destination, and its image's repository):
// nil, or an error saying why not. The server's policy is checked when a push is planned and
// again when any deployment executes (push, rollback, redeploy, manual), since it may have
// changed in between.
type PolicyFunc func(repo string, spec deploy.Spec) error

func (f PolicyFunc) check(repo string, spec deploy.Spec) error {
	if f == nil {
		return nil
	}
	return f(repo, spec)
}

func repoFor(run deploy.Run, tokens TokenFunc) source.Repo {
	r := source.Repo{FullName: run.Repo, CloneURL: run.CloneURL}
	if tokens != nil {
		r.Token = tokens(run.Repo)
	}
	return r
}
