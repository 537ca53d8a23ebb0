package queue_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/metrics"
	"github.com/slipway-dev/slipway/internal/queue"
	"github.com/slipway-dev/slipway/internal/store"
	"github.com/slipway-dev/slipway/internal/testenv"
)

func enqueueOne(t *testing.T, st *store.Store, runID int64) int64 {
	t.Helper()
	ids, err := st.DeploymentsEnqueue(context.Background(), []deploy.NewDeployment{
		{RunID: runID, Repo: "o/r", Service: "api", Environment: "prod", CommitSHA: sha}})
	if err != nil || len(ids) > 1 {
		t.Fatalf("enqueue: %v %v", ids, err)
	}
	if len(ids) == 0 {
		return 0
	}
	return ids[0]
}

// Defect: latest wins followed planning order. A push whose planning was retried after a newer
// push had planned and deployed rolled its older commit out over the newer one. Order comes from
// the push (its run's id, the order of receipt): an older push planned late is superseded.
func TestOlderPushPlannedLateIsSuperseded(t *testing.T) {
	st := testenv.Store(t)
	older, newer := newRun(t, st), newRun(t, st) // received in this order
	var ran atomic.Int64
	startQueue(t, st, "w", 2, handlers{deployment: func(_ context.Context, job queue.Job) error {
		ran.Add(1)
		return nil
	}}, nil)
	n := enqueueOne(t, st, newer) // the newer push plans first...
	waitFor(t, "newer succeeded", func() bool { s, _, _ := status(t, st, "deployments", n); return s == "succeeded" })
	enqueueOne(t, st, older) // ...then the older one's planning, retried, commits
	var o int64
	if err := st.Pool().QueryRow(context.Background(), `SELECT id FROM deployments WHERE run_id = $1`, older).Scan(&o); err != nil {
		t.Fatal(err)
	}
	if s, _, msg := status(t, st, "deployments", o); s != "superseded" || msg != fmt.Sprintf("superseded by deployment %d of a later push", n) {
		t.Errorf("older push's deployment: %s %q", s, msg)
	}
	if got := ran.Load(); got != 1 {
		t.Errorf("%d deployments ran, want 1", got)
	}
}

// Defect: a worker paused past its lease resumed and kept writing. Every write of a claimed item
// is conditional on the claim (owner and attempt): the stale worker's are refused.
func TestStaleClaimWritesAreRefused(t *testing.T) {
	st := testenv.Store(t)
	ctx := context.Background()
	id := enqueueOne(t, st, newRun(t, st))
	stale, ok, err := st.QueueClaim(ctx, store.KindDeployment, "replica-a", 50*time.Millisecond)
	if err != nil || !ok || stale.ID != id {
		t.Fatalf("claim: %+v %v %v", stale, ok, err)
	}
	// Its lease runs out; the rescuer hands the deployment to the same replica's next attempt
	// (same owner, so only the attempt tells the claims apart).
	waitFor(t, "rescued", func() bool {
		rescued, err := st.QueueRescue(ctx, store.KindDeployment, time.Millisecond)
		return err == nil && len(rescued) == 1
	})
	var fresh store.Claimed
	waitFor(t, "claimed again", func() bool {
		fresh, ok, err = st.QueueClaim(ctx, store.KindDeployment, "replica-a", time.Minute)
		return err == nil && ok
	})
	if fresh.Attempt != stale.Attempt+1 {
		t.Fatalf("attempts %d then %d", stale.Attempt, fresh.Attempt)
	}
	if err := st.DeploymentLogsAppend(ctx, fresh.Claim, []store.LogLine{{Stream: "system", Line: "attempt 2", CreatedAt: time.Now()}}); err != nil {
		t.Fatalf("fresh log write: %v", err)
	}

	writes := map[string]error{
		"stage":     st.DeploymentStage(ctx, stale.Claim, deploy.StatusDeploying),
		"image":     st.DeploymentImage(ctx, stale.Claim, "x:1", "sha256:0", nil),
		"log":       st.DeploymentLogsAppend(ctx, stale.Claim, []store.LogLine{{Stream: "system", Line: "stale", CreatedAt: time.Now()}}),
		"heartbeat": func() error { _, err := st.QueueHeartbeat(ctx, stale.Claim, time.Minute); return err }(),
		"finish":    st.QueueFinish(ctx, stale.Claim, "succeeded", ""),
		"retry":     func() error { _, err := st.QueueRetry(ctx, stale.Claim, "x", 0); return err }(),
		"release":   st.QueueRelease(ctx, stale.Claim),
	}
	for what, err := range writes {
		if !errors.Is(err, store.ErrNotHeld) {
			t.Errorf("stale %s: %v, want ErrNotHeld", what, err)
		}
	}
	var s, image string
	var logs, staleLogs int
	if err := st.Pool().QueryRow(ctx, `SELECT status, image_ref,
		(SELECT count(*) FROM deployment_logs WHERE deployment_id = $1),
		(SELECT count(*) FROM deployment_logs WHERE deployment_id = $1 AND attempt = $2)
		FROM deployments WHERE id = $1`, id, stale.Attempt).Scan(&s, &image, &logs, &staleLogs); err != nil {
		t.Fatal(err)
	}
	if s != "building" || image != "" || logs != 1 || staleLogs != 0 {
		t.Errorf("after stale writes: status %s, image %q, %d log lines (%d of the stale attempt)", s, image, logs, staleLogs)
	}
	// The fresh claim still holds.
	if err := st.QueueFinish(ctx, fresh.Claim, "succeeded", ""); err != nil {
		t.Errorf("fresh finish: %v", err)
	}
}

// A worker that cannot renew its lease stops its work (its context is cancelled and Held fails)
// before the lease runs out, and writes nothing: the item is left to the rescuer.
func TestWorkerStopsWhenLeaseCannotBeRenewed(t *testing.T) {
	st := testenv.Store(t)
	id := enqueueOne(t, st, newRun(t, st))
	type outcome struct{ cause, held error }
	got := make(chan outcome, 1)
	broken := &failingHeartbeat{Store: st}
	q, err := queue.New(queue.Config{Owner: "w", Workers: 1, Lease: 900 * time.Millisecond,
		PollInterval: 50 * time.Millisecond, RescueEvery: time.Hour,
		Kinds: []queue.Kind{{Name: store.KindDeployment, DoneStatus: "succeeded", Handler: func(ctx context.Context, job queue.Job) error {
			<-ctx.Done()
			got <- outcome{context.Cause(ctx), job.Held()}
			return ctx.Err()
		}}}}, broken, testMetrics(), discard())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = q.Run(ctx) }()
	select {
	case o := <-got:
		if o.cause == nil || o.held == nil || errors.Is(o.cause, queue.ErrCancelRequested) {
			t.Errorf("cause %v, held %v: want both to say the lease is lost", o.cause, o.held)
		}
	case <-time.After(time.Minute):
		t.Fatal("the worker never stopped")
	}
	if s, _, _ := status(t, st, "deployments", id); s != "building" {
		t.Errorf("status %s: a worker without its lease wrote its outcome", s)
	}
}

// failingHeartbeat is a store whose lease renewals fail, as when the database is unreachable.
type failingHeartbeat struct{ *store.Store }

func (failingHeartbeat) QueueHeartbeat(context.Context, store.Claim, time.Duration) (bool, error) {
	return false, errors.New("connection refused")
}

// A deployment lost while it was changing its target goes back to the queue at once, even out of
// attempts or cancelled, so that its next worker puts the target back; overtaking pushes wait.
func TestRescueOfTouchedTarget(t *testing.T) {
	st := testenv.Store(t)
	ctx := context.Background()
	id := enqueueOne(t, st, newRun(t, st))
	if _, err := st.Pool().Exec(ctx, `UPDATE deployments SET max_attempts = 1 WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	c, ok, err := st.QueueClaim(ctx, store.KindDeployment, "dead", 50*time.Millisecond)
	if err != nil || !ok {
		t.Fatalf("claim: %v %v", ok, err)
	}
	if err := st.DeploymentStage(ctx, c.Claim, deploy.StatusDeploying); err != nil {
		t.Fatal(err)
	}
	if _, err := st.QueueCancel(ctx, store.KindDeployment, id, store.Cancel{By: "test"}); err != nil {
		t.Fatal(err)
	}
	newer := enqueueOne(t, st, newRun(t, st))
	waitFor(t, "rescued", func() bool {
		rescued, err := st.QueueRescue(ctx, store.KindDeployment, time.Hour)
		return err == nil && len(rescued) == 1 && rescued[0].Status == "queued"
	})
	// Claimable now (no backoff), before the newer deployment, though out of attempts and cancelled.
	again, ok, err := st.QueueClaim(ctx, store.KindDeployment, "next", time.Minute)
	if err != nil || !ok || again.ID != id {
		t.Fatalf("claim after rescue: %+v %v %v (newer is %d)", again, ok, err, newer)
	}
	d, err := st.DeploymentGet(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !d.TargetTouched || !d.CancelRequested || d.Attempt <= d.MaxAttempts {
		t.Errorf("deployment %+v: want target touched, cancel requested, out of attempts", d)
	}
}

func testMetrics() *metrics.Metrics { return metrics.New(prometheus.NewRegistry()) }

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// Defect: the one-active rule keyed on (repository, service, environment), so two names for one
// target (ACME/x and acme/x, or two services naming one container) rolled it out at once and the
// service ended down. It keys on the target too.
func TestOneActiveRolloutPerTarget(t *testing.T) {
	st := testenv.Store(t)
	ctx := context.Background()
	web := deploy.Spec{Destination: deploy.Destination{Platform: deploy.PlatformDocker, Docker: &deploy.Container{Container: "web"}}}
	var ids []int64
	for _, repo := range []string{"ACME/x", "acme/x"} {
		got, err := st.DeploymentsEnqueue(ctx, []deploy.NewDeployment{{RunID: newRun(t, st), Repo: repo,
			Service: "web", Environment: "prod", Platform: deploy.PlatformDocker, Spec: web, CommitSHA: sha}})
		if err != nil || len(got) != 1 {
			t.Fatalf("enqueue: %v %v", got, err)
		}
		ids = append(ids, got[0])
	}
	first, ok, err := st.QueueClaim(ctx, store.KindDeployment, "w", time.Minute)
	if err != nil || !ok || first.ID != ids[0] {
		t.Fatalf("first claim: %+v %v %v", first, ok, err)
	}
	if c, ok, err := st.QueueClaim(ctx, store.KindDeployment, "w", time.Minute); err != nil || ok {
		t.Fatalf("second claim while the target is busy: %+v %v %v", c, ok, err)
	}
	// Even a claim that skips the filter (a race) is refused by the database.
	if _, err := st.Pool().Exec(ctx, `UPDATE deployments SET status = 'building' WHERE id = $1`, ids[1]); err == nil {
		t.Error("two active deployments of one target were accepted")
	}
	if err := st.QueueFinish(ctx, first.Claim, "succeeded", ""); err != nil {
		t.Fatal(err)
	}
	if c, ok, err := st.QueueClaim(ctx, store.KindDeployment, "w", time.Minute); err != nil || !ok || c.ID != ids[1] {
		t.Fatalf("claim after the first finished: %+v %v %v", c, ok, err)
	}
}
