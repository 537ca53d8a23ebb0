package flow

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/source"
	"github.com/slipway-dev/slipway/internal/store"
)

// ActionStore is what the actions read and write; *store.Store implements it.
type ActionStore interface {
	DeploymentGet(ctx context.Context, id int64) (deploy.Deployment, error)
	RedeployEnqueue(ctx context.Context, run deploy.Run, d deploy.NewDeployment) (runID, deploymentID int64, err error)
	RunCreate(ctx context.Context, r deploy.Run) (int64, error)
	QueueCancel(ctx context.Context, kind string, id int64, c store.Cancel) (string, error)
}

// BranchResolver finds the commit a branch points at now; *source.Cache implements it.
type BranchResolver interface {
	BranchHead(ctx context.Context, repo source.Repo, branch string) (string, error)
}

// RemoteFunc gives the clone URL and token the server configures for a repository, or an error
// when it configures none.
type RemoteFunc func(repo string) (cloneURL, token string, err error)

// Actions are what people ask for by hand: roll back, redeploy, deploy a branch or commit, and
// cancel. Each is recorded with who asked, and goes through the queue like any push.
type Actions struct {
	st       ActionStore
	policy   PolicyFunc
	remote   RemoteFunc
	branches BranchResolver
}

// NewActions builds Actions. policy (nil allows everything) is checked before a rollback or
// redeploy is queued, and the executor checks it again when it runs; remote and branches serve
// DeployRef.
func NewActions(st ActionStore, policy PolicyFunc, remote RemoteFunc, branches BranchResolver) *Actions {
	return &Actions{st: st, policy: policy, remote: remote, branches: branches}
}

// Rollback queues the return to what deployment id put live, asked for by who: same service,
// environment and target, its image by digest, no checkout and no build.
func (a *Actions) Rollback(ctx context.Context, id int64, who string) (runID, deploymentID int64, err error) {
	to, err := a.st.DeploymentGet(ctx, id)
	if err != nil {
		return 0, 0, err
	}
	if to.Status != deploy.StatusSucceeded || to.ImageDigest == "" {
		return 0, 0, deploy.Errorf(deploy.ECONFLICT,
			"deployment %d is %s: only a version that went live can be rolled back to", id, to.Status)
	}
	return a.again(ctx, "rollback", to, who)
}

// Redeploy queues deployment id's image again, asked for by who: to restart a service on the
// same version, or to retry a rollout that failed after its image was pushed.
func (a *Actions) Redeploy(ctx context.Context, id int64, who string) (runID, deploymentID int64, err error) {
	d, err := a.st.DeploymentGet(ctx, id)
	if err != nil {
		return 0, 0, err
	}
	if d.ImageDigest == "" {
		return 0, 0, deploy.Errorf(deploy.ECONFLICT,
			"deployment %d has no pushed image (it is %s): deploy its commit instead", id, d.Status)
	}
	return a.again(ctx, "redeploy", d, who)
}

// again queues d's image once more as a run of trigger.
func (a *Actions) again(ctx context.Context, trigger string, d deploy.Deployment, who string) (runID, deploymentID int64, err error) {
	if err := a.policy.check(d.Repo, d.Spec); err != nil {
		return 0, 0, deploy.Errorf(deploy.EFORBIDDEN, "%v", err)
	}
	spec := d.Spec
	spec.RollbackOf = d.ID
	// ECS: back to the task definition recorded for d, not a new revision.
	spec.Destination = spec.Destination.RollbackTo(d.Result)
	return a.st.RedeployEnqueue(ctx,
		deploy.Run{Trigger: trigger, Repo: d.Repo, AfterSHA: d.CommitSHA, Pusher: who,
			Message: fmt.Sprintf("%s of %s/%s to deployment %d", trigger, d.Service, d.Environment, d.ID)},
		deploy.NewDeployment{Repo: d.Repo, Service: d.Service, Environment: d.Environment,
			Platform: d.Platform, Spec: spec, CommitSHA: d.CommitSHA,
			ImageRef: d.ImageRef, ImageDigest: d.ImageDigest})
}

// DeployRef queues a run of repo at a commit of branch (its head now when sha is empty), asked
// for by who. The branch says which services of the pipeline file deploy; every one of them does,
// as if the branch were new, since nothing was pushed to compare with.
func (a *Actions) DeployRef(ctx context.Context, repo, branch, sha, who string) (runID int64, err error) {
	repo = strings.ToLower(strings.TrimSpace(repo))
	branch = strings.TrimSpace(branch)
	switch {
	case repo == "" || branch == "":
		return 0, deploy.Errorf(deploy.EINVALID, "a repository and a branch are required")
	case !source.ValidBranch(branch):
		return 0, deploy.Errorf(deploy.EINVALID, "%q is not a branch name", branch)
	}
	cloneURL, token, err := a.remote(repo)
	if err != nil {
		return 0, deploy.Errorf(deploy.EINVALID, "%v", err)
	}
	src := source.Repo{FullName: repo, CloneURL: cloneURL, Token: token}
	switch sha = strings.ToLower(strings.TrimSpace(sha)); {
	case sha == "":
		sha, err = a.branches.BranchHead(ctx, src, branch)
		if errors.Is(err, source.ErrNotFound) {
			return 0, deploy.Errorf(deploy.ENOTFOUND, "%s has no branch %q", repo, branch)
		}
		if err != nil {
			return 0, fmt.Errorf("finding the head of %s: %w", branch, err)
		}
	case !source.ValidSHA(sha):
		return 0, deploy.Errorf(deploy.EINVALID, "a commit is 40 hexadecimal characters, not %q", sha)
	}
	return a.st.RunCreate(ctx, deploy.Run{Trigger: "manual", Repo: repo, Ref: "refs/heads/" + branch,
		Branch: branch, AfterSHA: sha, CloneURL: cloneURL, Pusher: who,
		Message: fmt.Sprintf("deploy of %s at %s, asked for by %s", branch, short(sha), who)})
}

// Cancel asks for a run or a deployment to stop, recording who asked and why.
func (a *Actions) Cancel(ctx context.Context, kind string, id int64, who, reason string) (string, error) {
	if len(reason) > 1000 {
		return "", deploy.Errorf(deploy.EINVALID, "a reason is at most 1000 bytes")
	}
	return a.st.QueueCancel(ctx, kind, id, store.Cancel{By: who, Reason: strings.TrimSpace(reason)})
}
