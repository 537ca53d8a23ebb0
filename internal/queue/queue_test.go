package queue_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
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

const sha = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"

type handlers struct {
	run, deployment queue.Handler
}

// startQueue runs a queue named owner until the test ends (or stop is called) and waits until it
// listens, so a notification sent after this returns is not missed.
func startQueue(t *testing.T, st *store.Store, owner string, workers int, h handlers, tune func(*queue.Config)) (stop func()) {
	t.Helper()
	return startQueueOn(t, st, owner, workers, h, tune)
}

// startQueueOn is startQueue on a queue.Store that may wrap the real one.
func startQueueOn(t *testing.T, qs queue.Store, owner string, workers int, h handlers, tune func(*queue.Config)) (stop func()) {
	t.Helper()
	noop := func(context.Context, queue.Job) error { return nil }
	if h.run == nil {
		h.run = noop
	}
	if h.deployment == nil {
		h.deployment = noop
	}
	cfg := queue.Config{
		Owner: owner, Workers: workers,
		Lease: 2 * time.Second, PollInterval: 200 * time.Millisecond, RescueEvery: 100 * time.Millisecond,
		BackoffBase: 10 * time.Millisecond, ShutdownGrace: 5 * time.Second,
		Kinds: []queue.Kind{
			{Name: store.KindRun, DoneStatus: "planned", Handler: h.run},
			{Name: store.KindDeployment, DoneStatus: "succeeded", Handler: h.deployment},
		},
	}
	if tune != nil {
		tune(&cfg)
	}
	q, err := queue.New(cfg, qs, metrics.New(prometheus.NewRegistry()), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = q.Run(ctx) }()
	select {
	case <-q.Listening():
	case <-time.After(10 * time.Second):
		t.Fatal("queue never started listening")
	}
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

func newRun(t *testing.T, st *store.Store) int64 {
	t.Helper()
	id, err := st.RunCreate(context.Background(), deploy.Run{Trigger: "test", Repo: "o/r", Ref: "refs/heads/main", Branch: "main", AfterSHA: sha})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func status(t *testing.T, st *store.Store, table string, id int64) (string, int, string) {
	t.Helper()
	var s, e string
	var attempt int
	err := st.Pool().QueryRow(context.Background(), "SELECT status, attempt, error FROM "+table+" WHERE id = $1", id).Scan(&s, &attempt, &e)
	if err != nil {
		t.Fatal(err)
	}
	return s, attempt, e
}

// waitFor polls the database until cond holds: the state lives there, not in the test's memory.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func countWhere(t *testing.T, st *store.Store, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := st.Pool().QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Many goroutines claim straight from the table: every item is claimed exactly once.
func TestClaimExactlyOnce(t *testing.T) {
	st := testenv.Store(t)
	runID := newRun(t, st)
	_, err := st.Pool().Exec(context.Background(), `
		INSERT INTO deployments (run_id, repo, service, environment, commit_sha)
		SELECT $1, 'o/r', 'svc' || i, 'prod', $2 FROM generate_series(1, 300) i`, runID, sha)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[int64]int{}
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c, ok, err := st.QueueClaim(context.Background(), store.KindDeployment, fmt.Sprintf("g%d", g), time.Minute)
				if err != nil {
					t.Error(err)
					return
				}
				if !ok {
					return
				}
				mu.Lock()
				seen[c.ID]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != 300 {
		t.Errorf("claimed %d distinct items, want 300", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("item %d claimed %d times", id, n)
		}
	}
}

// Two queues stand for two replicas while pushes keep coming: every run is planned exactly once;
// no deployment runs twice; no service+environment ever has two deployments running at once; and
// for each one the newest push is what ends up deployed, older ones succeeding or superseded.
func TestTwoReplicas(t *testing.T) {
	st := testenv.Store(t)
	const waves, keys = 20, 6
	var (
		mu        sync.Mutex
		ran       = map[string]int{}
		active    = map[string]int{}
		violation atomic.Bool
	)
	record := func(kind string) queue.Handler {
		return func(ctx context.Context, job queue.Job) error {
			key := ""
			if kind == store.KindDeployment {
				if err := st.Pool().QueryRow(ctx, "SELECT service FROM deployments WHERE id = $1", job.ID).Scan(&key); err != nil {
					return err
				}
			}
			mu.Lock()
			ran[fmt.Sprintf("%s:%d", kind, job.ID)]++
			active[key]++
			if key != "" && active[key] > 1 {
				violation.Store(true)
			}
			mu.Unlock()
			time.Sleep(2 * time.Millisecond) // hold the key long enough for a competing claim to try
			mu.Lock()
			active[key]--
			mu.Unlock()
			return nil
		}
	}
	h := handlers{run: record(store.KindRun), deployment: record(store.KindDeployment)}
	startQueue(t, st, "replica-a", 8, h, nil)
	startQueue(t, st, "replica-b", 8, h, nil)
	newest := map[string]int64{}
	for range waves {
		for k := range keys {
			svc := fmt.Sprintf("svc%d", k)
			ids, err := st.DeploymentsEnqueue(context.Background(), []deploy.NewDeployment{
				{RunID: newRun(t, st), Repo: "o/r", Service: svc, Environment: "prod", CommitSHA: sha}})
			if err != nil || len(ids) != 1 {
				t.Fatalf("enqueue: %v %v", ids, err)
			}
			newest[svc] = ids[0]
		}
	}
	waitFor(t, "all items final", func() bool {
		return countWhere(t, st, `SELECT count(*) FROM deployments WHERE status NOT IN ('succeeded', 'superseded')`) == 0 &&
			countWhere(t, st, `SELECT count(*) FROM runs WHERE status = 'planned'`) == waves*keys
	})
	for svc, id := range newest {
		if s, _, _ := status(t, st, "deployments", id); s != "succeeded" {
			t.Errorf("newest deployment of %s is %s", svc, s)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for k, n := range ran {
		if n != 1 {
			t.Errorf("%s ran %d times", k, n)
		}
	}
	if violation.Load() {
		t.Error("two deployments of one service+environment ran at once")
	}
	if n := countWhere(t, st, `SELECT count(*) FROM deployments WHERE lease_owner IS NOT NULL`); n != 0 {
		t.Errorf("%d leases left behind", n)
	}
}

// The database refuses a second active deployment of one service+environment whatever the Go code does.
func TestOneActiveIndex(t *testing.T) {
	st := testenv.Store(t)
	r1, r2 := newRun(t, st), newRun(t, st)
	_, err := st.Pool().Exec(context.Background(), `
		INSERT INTO deployments (run_id, repo, service, environment, commit_sha, status)
		VALUES ($1, 'o/r', 'api', 'prod', $3, 'building'), ($2, 'o/r', 'api', 'prod', $3, 'deploying')`, r1, r2, sha)
	if err == nil {
		t.Fatal("two active deployments of o/r api prod were accepted")
	}
}

// A worker that dies (claims, then never heartbeats) loses its item to the rescuer; another worker
// completes it.
func TestRescueLostWorker(t *testing.T) {
	st := testenv.Store(t)
	runID := newRun(t, st)
	if _, err := st.DeploymentsEnqueue(context.Background(), []deploy.NewDeployment{
		{RunID: runID, Repo: "o/r", Service: "api", Environment: "prod", CommitSHA: sha}}); err != nil {
		t.Fatal(err)
	}
	c, ok, err := st.QueueClaim(context.Background(), store.KindDeployment, "dead-worker", 300*time.Millisecond)
	if err != nil || !ok {
		t.Fatalf("claim: %v %v", ok, err)
	}
	ran := make(chan queue.Job, 1)
	startQueue(t, st, "survivor", 2, handlers{deployment: func(_ context.Context, job queue.Job) error {
		ran <- job
		return nil
	}}, nil)
	select {
	case job := <-ran:
		if job.ID != c.ID || job.Attempt != 2 {
			t.Errorf("rescued job %+v, want id %d attempt 2", job, c.ID)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("lost item never rescued")
	}
	waitFor(t, "succeeded", func() bool { s, _, _ := status(t, st, "deployments", c.ID); return s == "succeeded" })
}

// Out of attempts, a lost item fails with a reason instead of hanging.
func TestRescueGivesUp(t *testing.T) {
	st := testenv.Store(t)
	runID := newRun(t, st)
	if _, err := st.Pool().Exec(context.Background(), `UPDATE runs SET max_attempts = 1 WHERE id = $1`, runID); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := st.QueueClaim(context.Background(), store.KindRun, "dead-worker", 100*time.Millisecond); err != nil || !ok {
		t.Fatalf("claim: %v %v", ok, err)
	}
	startQueue(t, st, "survivor", 1, handlers{run: func(context.Context, queue.Job) error {
		t.Error("an item out of attempts ran again")
		return nil
	}}, nil)
	waitFor(t, "failed", func() bool { s, _, _ := status(t, st, "runs", runID); return s == "failed" })
	_, _, msg := status(t, st, "runs", runID)
	if msg != "lease of dead-worker expired while planning (attempt 1 of 1): worker lost" {
		t.Errorf("error = %q", msg)
	}
}

func TestOutcomes(t *testing.T) {
	errBoom := errors.New("boom")
	cases := []struct {
		name        string
		handler     func(attempt int) error
		wantStatus  string
		wantAttempt int
		wantError   string
	}{
		{"success", func(int) error { return nil }, "planned", 1, ""},
		{"retry then success", func(a int) error {
			if a == 1 {
				return errBoom
			}
			return nil
		}, "planned", 2, ""},
		{"retries used up", func(int) error { return errBoom }, "failed", 5, "boom"},
		{"permanent", func(int) error { return queue.Permanent(errors.New("bad pipeline file")) }, "failed", 1, "bad pipeline file"},
		{"chosen status", func(int) error { return queue.Finish("skipped", errors.New("no service matched")) }, "skipped", 1, "no service matched"},
		{"panic", func(a int) error {
			if a == 1 {
				panic("handler bug")
			}
			return nil
		}, "planned", 2, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := testenv.Store(t)
			startQueue(t, st, "w", 1, handlers{run: func(_ context.Context, job queue.Job) error { return c.handler(job.Attempt) }}, nil)
			id := newRun(t, st)
			waitFor(t, c.wantStatus, func() bool { s, _, _ := status(t, st, "runs", id); return deploy.Status(s).Final() || s == "failed" })
			s, attempt, msg := status(t, st, "runs", id)
			if s != c.wantStatus || attempt != c.wantAttempt || msg != c.wantError {
				t.Errorf("got %s attempt %d error %q, want %s attempt %d error %q", s, attempt, msg, c.wantStatus, c.wantAttempt, c.wantError)
			}
		})
	}
}

// Cancelling a claimed item reaches its worker's context; a queued one never runs.
func TestCancel(t *testing.T) {
	st := testenv.Store(t)
	started := make(chan int64, 1)
	cause := make(chan error, 1)
	// Heartbeats never report the cancel here: only NOTIFY can deliver it, however long it takes.
	startQueueOn(t, deafToCancel{st}, "w", 1, handlers{run: func(ctx context.Context, job queue.Job) error {
		select {
		case started <- job.ID:
		default:
			t.Errorf("run %d started while another was waiting to be seen", job.ID)
		}
		<-ctx.Done()
		select {
		case cause <- context.Cause(ctx):
		default:
		}
		return ctx.Err()
	}}, nil)
	running := newRun(t, st)
	<-started
	waiting := newRun(t, st) // the single worker is busy: this one stays queued
	if s, err := st.QueueCancel(context.Background(), store.KindRun, waiting, store.Cancel{By: "test"}); err != nil || s != "cancelled" {
		t.Fatalf("cancel queued: %q %v", s, err)
	}
	if s, err := st.QueueCancel(context.Background(), store.KindRun, running, store.Cancel{By: "test"}); err != nil || s != "planning" {
		t.Fatalf("cancel running: %q %v", s, err)
	}
	select {
	case err := <-cause:
		if !errors.Is(err, queue.ErrCancelRequested) {
			t.Errorf("cause %v", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("cancel never reached the worker")
	}
	waitFor(t, "cancelled", func() bool { s, _, _ := status(t, st, "runs", running); return s == "cancelled" })
	if _, err := st.QueueCancel(context.Background(), store.KindRun, running, store.Cancel{By: "test"}); deploy.ErrorCode(err) != deploy.ECONFLICT {
		t.Errorf("cancelling a cancelled run: %v", err)
	}
	if _, err := st.QueueCancel(context.Background(), store.KindRun, 999999, store.Cancel{By: "test"}); deploy.ErrorCode(err) != deploy.ENOTFOUND {
		t.Errorf("cancelling a missing run: %v", err)
	}
	select {
	case id := <-started:
		t.Errorf("cancelled run %d ran", id)
	default:
	}
}

// On shutdown, running items may finish within the grace period; what is left is released, not
// failed, and another replica completes it.
func TestShutdown(t *testing.T) {
	st := testenv.Store(t)
	release := make(chan struct{})
	started := make(chan struct{}, 2)
	stopA := startQueue(t, st, "a", 2, handlers{run: func(ctx context.Context, job queue.Job) error {
		started <- struct{}{}
		select {
		case <-release: // finishes in time
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}}, func(c *queue.Config) { c.ShutdownGrace = 3 * time.Second })
	quick, slow := newRun(t, st), newRun(t, st)
	<-started
	<-started
	// Shut down, and let exactly one finish during the grace period: the send is taken by a
	// handler still running, which the grace period lets finish.
	stopped := make(chan struct{})
	go func() { stopA(); close(stopped) }()
	release <- struct{}{}
	<-stopped
	states := map[string]int{}
	for _, id := range []int64{quick, slow} {
		s, attempt, _ := status(t, st, "runs", id)
		states[s]++
		if s == "queued" && attempt != 0 {
			t.Errorf("released item counted an attempt: %d", attempt)
		}
	}
	if states["planned"] != 1 || states["queued"] != 1 {
		t.Fatalf("after shutdown: %v, want one planned and one queued", states)
	}
	startQueue(t, st, "b", 2, handlers{}, nil)
	waitFor(t, "released item completed", func() bool {
		return countWhere(t, st, `SELECT count(*) FROM runs WHERE status = 'planned'`) == 2
	})
}

// Latest wins: newer pushes supersede queued deployments of the same service+environment, never a
// running one, and the newest runs after the running one finishes.
func TestLatestWins(t *testing.T) {
	st := testenv.Store(t)
	gate := make(chan struct{})
	var order []int64
	var mu sync.Mutex
	startQueue(t, st, "w", 4, handlers{deployment: func(ctx context.Context, job queue.Job) error {
		mu.Lock()
		order = append(order, job.ID)
		first := len(order) == 1
		mu.Unlock()
		if first {
			<-gate
		}
		return nil
	}}, nil)
	enqueue := func() int64 {
		ids, err := st.DeploymentsEnqueue(context.Background(), []deploy.NewDeployment{
			{RunID: newRun(t, st), Repo: "o/r", Service: "api", Environment: "prod", CommitSHA: sha}})
		if err != nil || len(ids) != 1 {
			t.Fatalf("enqueue: %v %v", ids, err)
		}
		return ids[0]
	}
	first := enqueue()
	waitFor(t, "first building", func() bool { s, _, _ := status(t, st, "deployments", first); return s == "building" })
	second, third := enqueue(), enqueue()
	if s, _, msg := status(t, st, "deployments", second); s != "superseded" || msg != fmt.Sprintf("superseded by deployment %d of a later push", third) {
		t.Errorf("second: %s %q", s, msg)
	}
	if s, _, _ := status(t, st, "deployments", first); s != "building" {
		t.Errorf("running deployment touched: %s", s)
	}
	close(gate)
	waitFor(t, "third succeeded", func() bool { s, _, _ := status(t, st, "deployments", third); return s == "succeeded" })
	mu.Lock()
	defer mu.Unlock()
	if len(order) != 2 || order[0] != first || order[1] != third {
		t.Errorf("ran %v, want [%d %d]", order, first, third)
	}
}

// Planning a run twice (a retry after a crash) does not queue its deployments twice.
func TestEnqueueIdempotent(t *testing.T) {
	st := testenv.Store(t)
	runID := newRun(t, st)
	ds := []deploy.NewDeployment{
		{RunID: runID, Repo: "o/r", Service: "api", Environment: "prod", CommitSHA: sha},
		{RunID: runID, Repo: "o/r", Service: "web", Environment: "prod", CommitSHA: sha},
	}
	for i, want := range []int{2, 0} {
		ids, err := st.DeploymentsEnqueue(context.Background(), ds)
		if err != nil || len(ids) != want {
			t.Fatalf("enqueue %d: %v %v", i, ids, err)
		}
	}
	if n := countWhere(t, st, `SELECT count(*) FROM deployments`); n != 2 {
		t.Errorf("%d deployments", n)
	}
}

// A queue never runs more items at once than it has worker slots.
func TestWorkerLimit(t *testing.T) {
	st := testenv.Store(t)
	var now, peak atomic.Int32
	both := make(chan struct{}) // closed once two items run at once: the first two wait for it
	var once sync.Once
	startQueue(t, st, "w", 2, handlers{run: func(context.Context, queue.Job) error {
		n := now.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		if n == 2 {
			once.Do(func() { close(both) })
		}
		<-both
		now.Add(-1)
		return nil
	}}, nil)
	for range 12 {
		newRun(t, st)
	}
	waitFor(t, "all planned", func() bool {
		return countWhere(t, st, `SELECT count(*) FROM runs WHERE status = 'planned'`) == 12
	})
	if p := peak.Load(); p != 2 {
		t.Errorf("peak concurrency %d, want 2", p)
	}
}

// An item that only waits (Job.Waiting) holds no worker slot: with one worker, items that wait
// are held together, up to MaxHeld, and every one finishes after it resumes.
func TestWaitingFreesTheSlot(t *testing.T) {
	st := testenv.Store(t)
	var held, peak atomic.Int32
	full := make(chan struct{}) // closed once MaxHeld items wait at once
	release := make(chan struct{})
	var once sync.Once
	startQueue(t, st, "w", 1, handlers{run: func(ctx context.Context, job queue.Job) error {
		resume := job.Waiting()
		n := held.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		if n == 3 {
			once.Do(func() { close(full) })
		}
		select {
		case <-release:
		case <-ctx.Done():
			return ctx.Err()
		}
		held.Add(-1)
		resume()
		return nil
	}}, func(c *queue.Config) { c.MaxHeld = 3 })
	for range 7 {
		newRun(t, st)
	}
	select {
	case <-full:
	case <-time.After(time.Minute): // only stops a hang
		t.Fatalf("%d items held at once with one worker, want 3: waiting items keep their slot", held.Load())
	}
	close(release)
	waitFor(t, "all planned", func() bool {
		return countWhere(t, st, `SELECT count(*) FROM runs WHERE status = 'planned'`) == 7
	})
	if p := peak.Load(); p != 3 {
		t.Errorf("peak held %d, want MaxHeld 3", p)
	}
}

// A deployment rescued after a newer push of its service was queued never runs: the newer one
// deploys and the old one ends superseded.
func TestRescuedDeploymentDoesNotOverrideNewer(t *testing.T) {
	st := testenv.Store(t)
	enqueue := func() int64 {
		ids, err := st.DeploymentsEnqueue(context.Background(), []deploy.NewDeployment{
			{RunID: newRun(t, st), Repo: "o/r", Service: "api", Environment: "prod", CommitSHA: sha}})
		if err != nil || len(ids) != 1 {
			t.Fatalf("enqueue: %v %v", ids, err)
		}
		return ids[0]
	}
	old := enqueue()
	if c, ok, err := st.QueueClaim(context.Background(), store.KindDeployment, "dead-worker", 300*time.Millisecond); err != nil || !ok || c.ID != old {
		t.Fatalf("claim: %+v %v %v", c, ok, err)
	}
	newer := enqueue() // waits: the old one is active until its lease runs out
	var mu sync.Mutex
	var ran []int64
	startQueue(t, st, "survivor", 2, handlers{deployment: func(_ context.Context, job queue.Job) error {
		mu.Lock()
		ran = append(ran, job.ID)
		mu.Unlock()
		return nil
	}}, nil)
	waitFor(t, "old superseded", func() bool { s, _, _ := status(t, st, "deployments", old); return s == "superseded" })
	waitFor(t, "newer succeeded", func() bool { s, _, _ := status(t, st, "deployments", newer); return s == "succeeded" })
	mu.Lock()
	defer mu.Unlock()
	if len(ran) != 1 || ran[0] != newer {
		t.Errorf("ran %v, want only %d", ran, newer)
	}
	if _, _, msg := status(t, st, "deployments", old); msg != fmt.Sprintf("superseded by deployment %d of a later push", newer) {
		t.Errorf("old deployment's error %q", msg)
	}
}

// deafToCancel is a store whose heartbeats never report a cancel request.
type deafToCancel struct{ *store.Store }

func (d deafToCancel) QueueHeartbeat(ctx context.Context, c store.Claim, lease time.Duration) (bool, error) {
	_, err := d.Store.QueueHeartbeat(ctx, c, lease)
	return false, err
}
