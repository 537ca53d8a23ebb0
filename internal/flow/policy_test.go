package flow_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/internal/pipeline"
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
		// A rule that allows the target but not the image: the image is checked when it runs too.
		f.policy = pipeline.Policy{Rules: []pipeline.Rule{{Repo: f.d.Repo, Targets: []string{"docker:api"},
			Images: []string{"registry.example.com/other/*"}}}}.CheckSpec
		err := f.handle()
		var fe *queue.FinishError
		if !errors.As(err, &fe) || fe.Status != "failed" || !strings.Contains(err.Error(), "may not push image") {
			t.Errorf("rollback %v: %v, want a permanent failure naming the refused image", rollback, err)
		}
		if calls := f.target.Calls(); len(calls) != 0 {
			t.Errorf("rollback %v: the target was called: %v", rollback, calls)
		}
		if n := len(f.builder.Requests()); n != 0 {
			t.Errorf("rollback %v: %d builds", rollback, n)
		}
	}
}
