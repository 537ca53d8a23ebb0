package flow

import (
	"context"
	"fmt"

	"github.com/slipway-dev/slipway/internal/deploy"
)

// RollbackStore is what a rollback request reads and writes; *store.Store implements it.
type RollbackStore interface {
	DeploymentGet(ctx context.Context, id int64) (deploy.Deployment, error)
	RollbackEnqueue(ctx context.Context, run deploy.Run, d deploy.NewDeployment) (runID, deploymentID int64, err error)
}

// Rollbacker turns "put back what deployment N deployed" into a queued deployment: same service,
// environment and target, N's image by digest, no checkout and no build. It goes through the queue
// like any deployment, so it waits for a running one and supersedes queued ones.
type Rollbacker struct {
	st     RollbackStore
	policy PolicyFunc
}

// NewRollbacker builds a Rollbacker; policy (nil allows everything) is checked before a rollback
// is queued, and the executor checks it again when it runs.
func NewRollbacker(st RollbackStore, policy PolicyFunc) *Rollbacker {
	return &Rollbacker{st: st, policy: policy}
}

// Rollback queues the rollback to deployment id, asked for by who.
func (r *Rollbacker) Rollback(ctx context.Context, id int64, who string) (runID, deploymentID int64, err error) {
	to, err := r.st.DeploymentGet(ctx, id)
	if err != nil {
		return 0, 0, err
	}
	if to.Status != deploy.StatusSucceeded || to.ImageDigest == "" {
		return 0, 0, deploy.Errorf(deploy.ECONFLICT,
			"deployment %d is %s: only a version that went live can be rolled back to", id, to.Status)
	}
	if err := r.policy.check(to.Repo, to.Spec.Destination); err != nil {
		return 0, 0, deploy.Errorf(deploy.EFORBIDDEN, "%v", err)
	}
	spec := to.Spec
	spec.RollbackOf = to.ID
	return r.st.RollbackEnqueue(ctx,
		deploy.Run{Repo: to.Repo, AfterSHA: to.CommitSHA, Pusher: who,
			Message: fmt.Sprintf("rollback of %s/%s to deployment %d", to.Service, to.Environment, to.ID)},
		deploy.NewDeployment{Repo: to.Repo, Service: to.Service, Environment: to.Environment,
			Platform: to.Platform, Spec: spec, CommitSHA: to.CommitSHA,
			ImageRef: to.ImageRef, ImageDigest: to.ImageDigest})
}
