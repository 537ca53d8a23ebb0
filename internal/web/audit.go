package web

import (
	"context"
	"fmt"

	"github.com/slipway-dev/slipway/internal/auth"
)

// audited records every action asked for, from the API or the dashboard, in the audit log: who
// (the context's principal), what, on which object, and whether it was accepted.
type audited struct {
	Actions
	auth *auth.Service
}

func (a audited) record(ctx context.Context, action, object string, detail map[string]any, err error) {
	if err != nil {
		detail["refused"] = err.Error()
	}
	_ = a.auth.Audit(ctx, action, object, detail) // Audit logs its own failure; the action stands
}

func (a audited) Rollback(ctx context.Context, id int64, who string) (int64, int64, error) {
	runID, depID, err := a.Actions.Rollback(ctx, id, who)
	a.record(ctx, "deployment.rollback", fmt.Sprintf("deployment:%d", id), map[string]any{"run_id": runID, "deployment_id": depID}, err)
	return runID, depID, err
}

func (a audited) Redeploy(ctx context.Context, id int64, who string) (int64, int64, error) {
	runID, depID, err := a.Actions.Redeploy(ctx, id, who)
	a.record(ctx, "deployment.redeploy", fmt.Sprintf("deployment:%d", id), map[string]any{"run_id": runID, "deployment_id": depID}, err)
	return runID, depID, err
}

func (a audited) Cancel(ctx context.Context, kind string, id int64, who, reason string) (string, error) {
	status, err := a.Actions.Cancel(ctx, kind, id, who, reason)
	a.record(ctx, kind+".cancel", fmt.Sprintf("%s:%d", kind, id), map[string]any{"reason": reason, "status": status}, err)
	return status, err
}

func (a audited) DeployRef(ctx context.Context, repo, branch, sha, who string) (int64, error) {
	runID, err := a.Actions.DeployRef(ctx, repo, branch, sha, who)
	a.record(ctx, "repo.deploy", "repo:"+repo, map[string]any{"branch": branch, "sha": sha, "run_id": runID}, err)
	return runID, err
}
