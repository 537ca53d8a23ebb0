package flow

import (
	"cmp"
	"context"
	"errors"
	"fmt"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/queue"
)

// resume handles a deployment whose target an earlier attempt was changing when its worker was
// lost. When the deployment must not go on (it was cancelled, it is out of attempts, or a later
// push overtook it), it puts back what the database records as live and ends the deployment:
// done is true. Otherwise the rollout starts over, which begins from whatever it finds.
func (e *Executor) resume(ctx context.Context, p plan) (done bool, err error) {
	status, reason := deploy.Status(""), ""
	switch {
	case p.d.CancelRequested:
		status, reason = deploy.StatusCancelled, "cancelled on request"
	case p.job.Attempt > p.d.MaxAttempts:
		status, reason = deploy.StatusFailed, cmp.Or(p.d.Error, "worker lost")+"; out of attempts"
	default:
		newer, ok, err := e.st.DeploymentOvertakenBy(ctx, p.d)
		if err != nil {
			return true, err
		}
		if !ok {
			p.lw.Logf("attempt %d was interrupted while rolling out: starting the rollout over", p.job.Attempt-1)
			return false, nil
		}
		status, reason = deploy.StatusSuperseded, fmt.Sprintf("superseded by deployment %d of a later push", newer)
	}
	p.lw.Logf("an earlier attempt was interrupted while rolling out, and this deployment ends (%s): putting back what is live", reason)
	// A cancel request would cancel ctx at the next heartbeat: the restore must finish anyway. The
	// claim's fence still stops it if the lease is lost.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.DeployTimeout)
	defer cancel()
	if err := p.target.Restore(rctx, p.rollout(""), p.lw.Log); err != nil {
		p.lw.Logf("could not put the live version back: %v", err)
		return true, queue.Finish(string(deploy.StatusFailed), fmt.Errorf("%s; putting the live version back failed: %w", reason, err))
	}
	if p.hasLive {
		p.lw.Logf("deployment %d's version runs again", p.live.ID)
	}
	return true, queue.Finish(string(status), errors.New(reason))
}
