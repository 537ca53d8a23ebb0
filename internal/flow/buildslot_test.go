package flow_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/flow"
	"github.com/slipway-dev/slipway/internal/queue"
	"github.com/slipway-dev/slipway/internal/store"
)

// Builds take a build slot; the rest of a deployment does not. With one slot, the second of two
// deployments waits for the first build to end (saying so in its log), then builds; both deploy.
func TestExecutorBuildSlots(t *testing.T) {
	f := newExecFixture(t)
	second := f.d
	second.ID, second.Service = 43, "worker"
	second.Spec.Destination.Service = "worker"
	second.Spec.Destination.Docker = &deploy.Container{Container: "worker"}
	f.st.putRun(f.run)
	f.st.putDeployment(f.d)
	f.st.putDeployment(second)

	var running, peak atomic.Int32
	f.builder.BuildFunc = func(ctx context.Context, _ deploy.BuildRequest, _ deploy.LogFunc) error {
		n := running.Add(1)
		defer running.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		// Hold the slot until the other deployment says it waits for one (its log is flushed
		// within the log writer's interval); the deadline only stops a hang.
		for deadline := time.Now().Add(time.Minute); !strings.Contains(f.st.log(), "waiting for a build slot"); {
			if time.Now().After(deadline) {
				t.Error("no deployment ever waited for a build slot")
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		return nil
	}
	e := flow.NewExecutor(flow.ExecutorConfig{Builds: 1,
		InputsHash: func(deploy.BuildRequest) (string, error) { return inputsHash, nil },
	}, f.st, f.src, f.builder, f.registry, f.targets, slog.New(slog.DiscardHandler))

	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, id := range []int64{f.d.ID, second.ID} {
		wg.Go(func() {
			errs[i] = e.Handle(f.ctx, queue.Job{Claim: store.Claim{Kind: store.KindDeployment, ID: id, Owner: "w", Attempt: 1}})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("deployment %d: %v", i, err)
		}
	}
	if p := peak.Load(); p != 1 {
		t.Errorf("%d builds ran at once with one build slot", p)
	}
	if n := len(f.calls("Deploy")); n != 2 {
		t.Errorf("%d deploys, want 2", n)
	}
}
