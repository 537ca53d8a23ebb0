// Package worker holds the two queue handlers that turn a push into live containers: the Planner
// reads a run's pipeline file and queues its deployments; the Executor drives one deployment
// through build, push and rollout.
package worker

import (
	"context"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/pipeline"
	"github.com/slipway-dev/slipway/internal/source"
	"github.com/slipway-dev/slipway/internal/store"
)

// Store is what the handlers read and write; *store.Store implements it.
type Store interface {
	RunGet(ctx context.Context, id int64) (deploy.Run, error)
	DeploymentsPlan(ctx context.Context, c store.Claim, queue, refused []deploy.NewDeployment) ([]int64, error)
	DeploymentGet(ctx context.Context, id int64) (deploy.Deployment, error)
	DeploymentStage(ctx context.Context, c store.Claim, status deploy.Status) error
	DeploymentImage(ctx context.Context, c store.Claim, ref, digest string, replaced *int64) error
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

// Spec is what a deployment row carries in its target column: how to build the service and where
// to roll it out, as the pipeline file said at the pushed commit. Execution never re-reads the file.
type Spec struct {
	Build  pipeline.Service `json:"build"`
	Target pipeline.Target  `json:"target"`
	// RollbackOf and Digest are set on a rollback: roll Build.Image@Digest, the image deployment
	// RollbackOf put live, out again; nothing is checked out or built.
	RollbackOf int64  `json:"rollback_of,omitempty"`
	Digest     string `json:"digest,omitempty"`
}

func repoFor(run deploy.Run, tokens TokenFunc) source.Repo {
	r := source.Repo{FullName: run.Repo, CloneURL: run.CloneURL}
	if tokens != nil {
		r.Token = tokens(run.Repo)
	}
	return r
}
