// Package queue runs work stored in PostgreSQL: workers claim items with FOR UPDATE SKIP LOCKED,
// hold a lease that a heartbeat renews, and hand items back on shutdown; a rescuer takes back the
// leases of workers that died. It knows nothing of Docker or AWS: each kind of item has a Handler.
package queue

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/slipway-dev/slipway/internal/metrics"
	"github.com/slipway-dev/slipway/internal/store"
)

// Store is what the queue needs from the database; *store.Store implements it.
type Store interface {
	QueueClaim(ctx context.Context, kind, owner string, lease time.Duration) (store.Claimed, bool, error)
	QueueHeartbeat(ctx context.Context, c store.Claim, lease time.Duration) (cancel bool, err error)
	QueueFinish(ctx context.Context, c store.Claim, status, errMsg string) error
	QueueRetry(ctx context.Context, c store.Claim, errMsg string, delay time.Duration) (string, error)
	QueueRelease(ctx context.Context, c store.Claim) error
	QueueRescue(ctx context.Context, kind string, backoffBase time.Duration) ([]store.Rescued, error)
	Listen(ctx context.Context, channels []string, fn func(channel, payload string), ready func()) error
}

var _ Store = (*store.Store)(nil)

// Job is one claimed item handed to a Handler. Its Claim (owner and attempt) goes with every
// write the handler makes, so that the database refuses the writes of a worker that lost its lease.
type Job struct {
	store.Claim
	lease *lease
	stale func(write string)
	wait  func() (resume func())
}

// Waiting tells the queue that the item only waits now (for a container to prove itself, for
// Swarm or ECS to report), so that its worker slot may run another item meanwhile: a monorepo
// push then builds some services while others wait out their rollouts. The item keeps its claim,
// lease and heartbeat. Call resume when it acts again; it runs even when every slot is taken
// (what follows a wait is short), and a replica holds at most MaxHeld items in all.
func (j Job) Waiting() (resume func()) {
	if j.wait == nil {
		return func() {}
	}
	return j.wait()
}

// Held reports whether the worker may still act for the item: nil while its lease was renewed
// recently enough that no rescuer can have taken it back, an error once it may have been. A
// handler calls it before each side effect outside the database (a container stopped, a service
// updated); the job's context is cancelled at the same moment.
func (j Job) Held() error {
	if j.lease == nil {
		return nil
	}
	return j.lease.held()
}

// Refused records that the database refused a write of the handler's (store.ErrNotHeld): the
// slipway_stale_writes_refused_total metric counts them.
func (j Job) Refused(write string) {
	if j.stale != nil {
		j.stale(write)
	}
}

// Handler does the work of one item. Its context is cancelled when the item is cancelled, when
// its lease is lost, or when shutdown's grace period ends. Return nil for success, an error made
// with Finish to end with a chosen status, Permanent to fail without retrying, or any other error
// to retry with backoff.
type Handler func(ctx context.Context, job Job) error

// Kind configures one kind of item.
type Kind struct {
	Name string
	// DoneStatus is written when the handler returns nil.
	DoneStatus string
	Handler    Handler
}

// Config configures a Queue. Zero durations take the defaults noted.
type Config struct {
	Owner         string        // lease owner, unique per replica (hostname-pid-random)
	Workers       int           // worker slots: items that act at once (default 4)
	MaxHeld       int           // items held at once, waiting ones (Job.Waiting) included (default 4×Workers)
	Lease         time.Duration // default 30s; heartbeats every Lease/3
	PollInterval  time.Duration // fallback when a notification is lost (default 2s)
	RescueEvery   time.Duration // default 5s
	BackoffBase   time.Duration // retry delay base, doubled per attempt (default 2s)
	ShutdownGrace time.Duration // running items may finish within this (default 30s)
	Kinds         []Kind
}

// Queue claims and runs items.
type Queue struct {
	cfg     Config
	store   Store
	metrics *metrics.Metrics
	logger  *slog.Logger
	kinds   map[string]Kind

	wake  chan struct{} // buffered(1): "there may be work"
	freed chan struct{} // buffered(1): a worker slot came free

	mu        sync.Mutex
	running   map[string]*running // by itemKey
	woken     map[string]bool     // kinds Wake was called for, taken by dispatch
	listening chan struct{}       // closed when LISTEN is first established
	listenOK  sync.Once
}

type running struct {
	job     Job
	cancel  context.CancelCauseFunc
	waiting bool // Job.Waiting: holds no worker slot
}

// Causes of a job context's cancellation; the worker chooses what to write from them.
var (
	ErrCancelRequested = errors.New("cancelled on request")
	errLeaseLost       = errors.New("lease lost: another worker may have taken the item over")
	errShutdown        = errors.New("worker shutting down")
)

// New builds a Queue; Run starts it.
func New(cfg Config, st Store, m *metrics.Metrics, logger *slog.Logger) (*Queue, error) {
	cfg.Workers = cmp.Or(cfg.Workers, 4)
	cfg.MaxHeld = max(cmp.Or(cfg.MaxHeld, 4*cfg.Workers), cfg.Workers)
	cfg.Lease = cmp.Or(cfg.Lease, 30*time.Second)
	cfg.PollInterval = cmp.Or(cfg.PollInterval, 2*time.Second)
	cfg.RescueEvery = cmp.Or(cfg.RescueEvery, 5*time.Second)
	cfg.BackoffBase = cmp.Or(cfg.BackoffBase, 2*time.Second)
	cfg.ShutdownGrace = cmp.Or(cfg.ShutdownGrace, 30*time.Second)
	if cfg.Owner == "" {
		return nil, errors.New("queue: Owner is required")
	}
	if len(cfg.Kinds) == 0 {
		return nil, errors.New("queue: at least one Kind is required")
	}
	kinds := map[string]Kind{}
	for _, k := range cfg.Kinds {
		if k.Handler == nil || k.DoneStatus == "" {
			return nil, fmt.Errorf("queue: kind %q needs a Handler and a DoneStatus", k.Name)
		}
		kinds[k.Name] = k
		// Export every kind's series from the start, so dashboards see zeros rather than gaps.
		m.WorkersBusy.WithLabelValues(k.Name)
		m.LeasesLost.WithLabelValues(k.Name)
		m.ClaimLatency.WithLabelValues(k.Name)
		m.JobDuration.WithLabelValues(k.Name)
	}
	m.Workers.Set(float64(cfg.Workers))
	return &Queue{
		cfg: cfg, store: st, metrics: m, logger: logger, kinds: kinds,
		wake:      make(chan struct{}, 1),
		freed:     make(chan struct{}, 1),
		running:   map[string]*running{},
		woken:     map[string]bool{},
		listening: make(chan struct{}),
	}, nil
}

func itemKey(kind string, id int64) string { return fmt.Sprintf("%s:%d", kind, id) }

// Listening is closed once the queue's LISTEN connection is first established; tests wait on it.
func (q *Queue) Listening() <-chan struct{} { return q.listening }

// Wake tells the queue there may be work of kind ("" for any kind), as a notification would.
func (q *Queue) Wake(kind string) {
	q.mu.Lock()
	if kind == "" {
		for _, k := range q.cfg.Kinds {
			q.woken[k.Name] = true
		}
	} else if _, ok := q.kinds[kind]; ok {
		q.woken[kind] = true
	}
	q.mu.Unlock()
	signal(q.wake)
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Run claims and runs items until ctx is done, then shuts down gracefully: it stops claiming, lets
// running items finish within ShutdownGrace, cancels the rest and releases them to other replicas.
func (q *Queue) Run(ctx context.Context) error {
	bg, stopBg := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBg()
	var bgWG sync.WaitGroup
	bgWG.Add(2)
	go func() { defer bgWG.Done(); q.listen(bg) }()
	go func() { defer bgWG.Done(); q.rescueLoop(bg) }()

	var workers sync.WaitGroup
	q.dispatch(ctx, &workers)

	q.logger.InfoContext(ctx, "queue stopping: no new claims", "running", q.runningCount(), "grace", q.cfg.ShutdownGrace)
	done := make(chan struct{})
	go func() { workers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(q.cfg.ShutdownGrace):
		q.logger.WarnContext(ctx, "shutdown grace over: releasing running items", "running", q.runningCount())
		q.cancelAll(errShutdown)
		<-done
	}
	stopBg()
	bgWG.Wait()
	return nil
}

// dispatch fills free worker slots with claimed items until ctx is done. It asks the database
// only for kinds that may have work: all of them on the poll tick, the notified kind on a wake-up,
// and all again when a slot frees after the workers were full.
func (q *Queue) dispatch(ctx context.Context, workers *sync.WaitGroup) {
	poll := time.NewTicker(q.cfg.PollInterval)
	defer poll.Stop()
	want := q.allKinds()
	next := 0 // round-robin over kinds so one busy kind cannot starve another
	for {
		saturated := false
		for len(want) > 0 && ctx.Err() == nil {
			if active, held := q.counts(); active >= q.cfg.Workers || held >= q.cfg.MaxHeld {
				saturated = true
				break
			}
			job, ok := q.claimNext(ctx, want, &next)
			if !ok {
				break
			}
			q.start(ctx, job, workers)
		}
		select {
		case <-ctx.Done():
			return
		case <-q.wake:
			for k := range q.takeWoken() {
				want[k] = true
			}
		case <-q.freed:
			if saturated {
				want = q.allKinds()
			}
		case <-poll.C:
			want = q.allKinds()
		}
	}
}

func (q *Queue) allKinds() map[string]bool {
	all := make(map[string]bool, len(q.cfg.Kinds))
	for _, k := range q.cfg.Kinds {
		all[k.Name] = true
	}
	return all
}

// takeWoken returns the kinds Wake was called for since the last call.
func (q *Queue) takeWoken() map[string]bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	woken := q.woken
	q.woken = map[string]bool{}
	return woken
}

// claimNext claims one item of a kind in want, dropping from want each kind that has none.
func (q *Queue) claimNext(ctx context.Context, want map[string]bool, next *int) (Job, bool) {
	for range q.cfg.Kinds {
		k := q.cfg.Kinds[*next%len(q.cfg.Kinds)]
		*next++
		if !want[k.Name] {
			continue
		}
		sent := time.Now()
		c, ok, err := q.store.QueueClaim(ctx, k.Name, q.cfg.Owner, q.cfg.Lease)
		if err != nil {
			if ctx.Err() == nil {
				q.logger.ErrorContext(ctx, "claiming work", "kind", k.Name, "err", err)
			}
			continue
		}
		if !ok {
			delete(want, k.Name)
			continue
		}
		q.metrics.ClaimLatency.WithLabelValues(k.Name).Observe(c.Waited.Seconds())
		kind := k.Name
		return Job{Claim: c.Claim, lease: newLease(q.cfg.Lease, sent),
			stale: func(write string) { q.metrics.StaleWrites.WithLabelValues(kind, write).Inc() }}, true
	}
	return Job{}, false
}

func (q *Queue) runningCount() int {
	_, held := q.counts()
	return held
}

// counts returns how many items hold a worker slot (active) and how many this replica holds.
func (q *Queue) counts() (active, held int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, r := range q.running {
		if !r.waiting {
			active++
		}
	}
	return active, len(q.running)
}

// setWaiting marks the item key waiting or active again; a slot freed wakes the dispatcher.
func (q *Queue) setWaiting(key string, waiting bool) {
	q.mu.Lock()
	if r, ok := q.running[key]; ok {
		r.waiting = waiting
	}
	q.mu.Unlock()
	if waiting {
		signal(q.freed)
	}
}

func (q *Queue) cancelAll(cause error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, r := range q.running {
		r.cancel(cause)
	}
}

// cancelItem cancels a running item's context, if this replica runs it.
func (q *Queue) cancelItem(key string, cause error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if r, ok := q.running[key]; ok {
		r.cancel(cause)
	}
}
