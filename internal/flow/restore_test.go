package flow_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/deploy/deploytest"
)

// TestExecutorRestore covers deployments whose target an earlier attempt was changing when its
// worker was lost (TargetTouched): either the live version is put back and the deployment ends, or
// the rollout starts over.
func TestExecutorRestore(t *testing.T) {
	// touched is deployment 42 after attempt 1 pushed its image, marked the target touched and was
	// lost; this is attempt 2.
	touched := func(f *execFixture) {
		f.d.TargetTouched = true
		f.d.ImageRef, f.d.ImageDigest = commitRef, "sha256:pushed"
		f.d.Attempt, f.attempt = 2, 2
	}
	// later is deployment 50 of run 9, a push after run 7's, to the same place.
	later := func(f *execFixture, status deploy.Status) {
		f.others = append(f.others, deploy.Deployment{ID: 50, RunID: 9, Repo: f.d.Repo, Service: f.d.Service,
			Environment: f.d.Environment, Platform: f.d.Platform, Spec: f.d.Spec, Status: status})
	}
	// restored checks that the target only got a Restore back to the live deployment, and that
	// nothing was built or recorded.
	restored := func(t *testing.T, f *execFixture) {
		t.Helper()
		f.wantRollout(t, deploytest.MethodRestore, f.rollout(""))
		wantNoBuild(t, f)
		if co := f.src.calls(); len(co) != 0 {
			t.Errorf("checked out %+v", co)
		}
		if len(f.st.writes) != 0 {
			t.Errorf("writes %v while putting back the live version", f.st.writes)
		}
	}
	restoreErr := errors.New("container api-old: no such image")

	runExecutorCases(t, []executorCase{
		{"cancel requested: restored, cancelled", func(f *execFixture) {
			touched(f)
			f.d.CancelRequested = true
			// The cancel reaches the job's context while the target is being put back: the
			// restore must finish regardless.
			f.target.RestoreFunc = func(ctx context.Context, _ deploy.Rollout, _ deploy.LogFunc) error {
				f.cancel()
				return ctx.Err()
			}
		}, func(t *testing.T, f *execFixture, err error) {
			wantFinish(t, err, "cancelled", "cancelled on request")
			restored(t, f)
		}},
		{"cancel requested, nothing live: restore removes what was left", func(f *execFixture) {
			touched(f)
			f.d.CancelRequested = true
			f.hasLive = false
		}, func(t *testing.T, f *execFixture, err error) {
			wantFinish(t, err, "cancelled", "cancelled on request")
			f.wantRollout(t, deploytest.MethodRestore, deploy.Rollout{DeploymentID: f.d.ID, Repo: f.d.Repo,
				Service: f.d.Service, Environment: f.d.Environment, Destination: f.d.Spec.Destination})
		}},
		{"cancel requested and overtaken: cancelled", func(f *execFixture) {
			touched(f)
			f.d.CancelRequested = true
			later(f, deploy.StatusQueued)
		}, func(t *testing.T, f *execFixture, err error) {
			wantFinish(t, err, "cancelled", "cancelled on request")
			restored(t, f)
		}},
		{"out of attempts: restored, failed", func(f *execFixture) {
			touched(f)
			f.d.Attempt, f.attempt = 4, 4
		}, func(t *testing.T, f *execFixture, err error) {
			wantFinish(t, err, "failed", "worker lost; out of attempts")
			restored(t, f)
		}},
		{"out of attempts after an error: failed with it", func(f *execFixture) {
			touched(f)
			f.d.Attempt, f.attempt = 4, 4
			f.d.Error = "lease lost while deploying"
		}, func(t *testing.T, f *execFixture, err error) {
			wantFinish(t, err, "failed", "lease lost while deploying; out of attempts")
			restored(t, f)
		}},
		{"last attempt: the rollout starts over", func(f *execFixture) {
			touched(f)
			f.d.Attempt, f.attempt = 3, 3
		}, func(t *testing.T, f *execFixture, err error) {
			if err != nil {
				t.Fatalf("result %v, want success", err)
			}
			f.wantRollout(t, deploytest.MethodDeploy, f.rollout(execImage+"@sha256:pushed"))
		}},
		{"overtaken by a later push: restored, superseded", func(f *execFixture) {
			touched(f)
			later(f, deploy.StatusQueued)
		}, func(t *testing.T, f *execFixture, err error) {
			wantFinish(t, err, "superseded", "superseded by deployment 50 of a later push")
			restored(t, f)
		}},
		{"later push cancelled: not overtaken, the rollout starts over", func(f *execFixture) {
			touched(f)
			later(f, deploy.StatusCancelled)
		}, func(t *testing.T, f *execFixture, err error) {
			if err != nil {
				t.Fatalf("result %v, want success", err)
			}
			f.wantRollout(t, deploytest.MethodDeploy, f.rollout(execImage+"@sha256:pushed"))
		}},
		{"nothing ends it: no restore, the rollout starts over", touched, func(t *testing.T, f *execFixture, err error) {
			if err != nil {
				t.Fatalf("result %v, want success", err)
			}
			f.wantRollout(t, deploytest.MethodDeploy, f.rollout(execImage+"@sha256:pushed"))
			wantNoBuild(t, f)
			wantStages(t, f.st, deploy.StatusDeploying)
			if log := f.st.log(); !strings.Contains(log, "attempt 1 was interrupted while rolling out: starting the rollout over") {
				t.Errorf("log does not say the rollout starts over:\n%s", log)
			}
		}},
		{"restore fails: failed with the reason", func(f *execFixture) {
			touched(f)
			f.d.CancelRequested = true
			f.target.RestoreFunc = func(context.Context, deploy.Rollout, deploy.LogFunc) error { return restoreErr }
		}, func(t *testing.T, f *execFixture, err error) {
			wantFinish(t, err, "failed", "cancelled on request; putting the live version back failed", restoreErr.Error())
			if !errors.Is(err, restoreErr) {
				t.Errorf("%v does not wrap the restore error", err)
			}
			restored(t, f)
		}},
		{"not touched: cancel left to the queue", func(f *execFixture) {
			f.d.CancelRequested = true
			later(f, deploy.StatusQueued)
		}, func(t *testing.T, f *execFixture, err error) {
			if err != nil {
				t.Fatalf("result %v, want success", err)
			}
			if calls := f.calls(deploytest.MethodRestore); len(calls) != 0 {
				t.Errorf("restored %+v", calls)
			}
		}},
	})
}
