package flow_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/flow"
	"github.com/slipway-dev/slipway/internal/queue"
)

// Defect: under a rules policy a rollback put a forbidden image back. The policy is checked again
// when any deployment runs, not only when its push was planned: a refused one touches nothing.
func TestExecutorChecksPolicyWhenItRuns(t *testing.T) {
	for _, rollback := range []bool{false, true} {
		f := newExecFixture(t)
		if rollback {
			f.d.Spec.RollbackOf, f.d.ImageDigest = f.live.ID, liveDigest
		}
		f.policy = func(repo string, dest deploy.Destination) error {
			return errors.New(repo + " may not deploy to " + dest.Ref())
		}
		err := f.handle()
		var fe *queue.FinishError
		if !errors.As(err, &fe) || fe.Status != "failed" || !strings.Contains(err.Error(), "may not deploy to docker:api") {
			t.Errorf("rollback %v: %v, want a permanent failure naming the refusal", rollback, err)
		}
		if calls := f.target.Calls(); len(calls) != 0 {
			t.Errorf("rollback %v: the target was called: %v", rollback, calls)
		}
		if n := len(f.builder.Requests()); n != 0 {
			t.Errorf("rollback %v: %d builds", rollback, n)
		}
	}
}

// A rollback the policy refuses is not even queued: the API answers 403.
func TestRollbackChecksPolicy(t *testing.T) {
	st := &rollbackStore{d: deploy.Deployment{ID: 9, Repo: "acme/app", Status: deploy.StatusSucceeded, ImageDigest: liveDigest,
		Spec: deploy.Spec{Destination: deploy.Destination{Platform: deploy.PlatformDocker, Docker: &deploy.Container{Container: "web"}}}}}
	rb := flow.NewRollbacker(st, func(string, deploy.Destination) error { return errors.New("not allowed") })
	if _, _, err := rb.Rollback(context.Background(), 9, "ada"); deploy.ErrorCode(err) != deploy.EFORBIDDEN {
		t.Errorf("rollback: %v, want EFORBIDDEN", err)
	}
	if st.queued {
		t.Error("a refused rollback was queued")
	}
}

type rollbackStore struct {
	d      deploy.Deployment
	queued bool
}

func (s *rollbackStore) DeploymentGet(context.Context, int64) (deploy.Deployment, error) {
	return s.d, nil
}

func (s *rollbackStore) RollbackEnqueue(context.Context, deploy.Run, deploy.NewDeployment) (int64, int64, error) {
	s.queued = true
	return 1, 2, nil
}
