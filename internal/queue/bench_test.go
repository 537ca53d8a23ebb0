package queue_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
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

// pickupStore is the real store, counting claims and telling the benchmark when an item is settled,
// so that each measured run starts on an idle queue.
type pickupStore struct {
	*store.Store
	claims, empty atomic.Int64
	finished      chan int64
}

func (s *pickupStore) QueueClaim(ctx context.Context, kind, owner string, lease time.Duration) (store.Claimed, bool, error) {
	c, ok, err := s.Store.QueueClaim(ctx, kind, owner, lease)
	s.claims.Add(1)
	if err == nil && !ok {
		s.empty.Add(1)
	}
	return c, ok, err
}

func (s *pickupStore) QueueFinish(ctx context.Context, c store.Claim, status, errMsg string) error {
	err := s.Store.QueueFinish(ctx, c, status, errMsg)
	s.finished <- c.ID
	return err
}

// startBenchQueue runs a queue with the production defaults (both kinds, 4 workers, every duration
// at its default) until the benchmark ends, and waits until it listens.
func startBenchQueue(b *testing.B, st queue.Store, owner string, h queue.Handler) {
	b.Helper()
	q, err := queue.New(queue.Config{
		Owner: owner,
		Kinds: []queue.Kind{
			{Name: store.KindRun, DoneStatus: "planned", Handler: h},
			{Name: store.KindDeployment, DoneStatus: "succeeded", Handler: h},
		},
	}, st, metrics.New(prometheus.NewRegistry()), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = q.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	select {
	case <-q.Listening():
	case <-time.After(10 * time.Second):
		b.Fatal("queue never started listening")
	}
}

// BenchmarkPickupLatency measures enqueue-commit → handler start: a run is created (RunCreate has
// returned, so its transaction and NOTIFY are committed), and the time until a worker's handler is
// called with it is recorded; the next run is created once that one is settled. With two replicas,
// both are woken by each NOTIFY and race for the claim. Targets: p50 ≤ 5 ms, p99 ≤ 25 ms.
//
// Run it with a fixed count, e.g. -benchtime 300x; ns/op is the whole round (enqueue, pickup, settle).
func BenchmarkPickupLatency(b *testing.B) {
	for _, replicas := range []int{1, 2} {
		b.Run(fmt.Sprintf("replicas=%d", replicas), func(b *testing.B) {
			st := &pickupStore{Store: testenv.Store(b), finished: make(chan int64, 1)}
			started := make(chan time.Time, 1)
			handler := func(context.Context, queue.Job) error {
				started <- time.Now()
				return nil
			}
			for i := range replicas {
				startBenchQueue(b, st, fmt.Sprintf("bench-replica-%d", i), handler)
			}
			ctx := context.Background()
			run := deploy.Run{Trigger: "bench", Repo: "o/r", Ref: "refs/heads/main", Branch: "main",
				AfterSHA: "6113728f27ae82c7b1a177c8d03f9e96e0adf246"}
			var lat []time.Duration
			claims0, empty0 := st.claims.Load(), st.empty.Load()
			for b.Loop() {
				if _, err := st.RunCreate(ctx, run); err != nil {
					b.Fatal(err)
				}
				committed := time.Now()
				select {
				case at := <-started:
					lat = append(lat, at.Sub(committed))
				case <-time.After(30 * time.Second):
					b.Fatal("a run was not picked up within 30s")
				}
				select {
				case <-st.finished:
				case <-time.After(30 * time.Second):
					b.Fatal("a run was not settled within 30s")
				}
			}
			slices.Sort(lat)
			b.ReportMetric(percentileMs(lat, 0.50), "p50-ms")
			b.ReportMetric(percentileMs(lat, 0.99), "p99-ms")
			b.ReportMetric(percentileMs(lat, 1), "max-ms")
			n := float64(len(lat))
			b.ReportMetric(float64(st.claims.Load()-claims0)/n, "claims/op")
			b.ReportMetric(float64(st.empty.Load()-empty0)/n, "empty-claims/op")
		})
	}
}

// percentileMs is the nearest-rank percentile of sorted durations, in milliseconds.
func percentileMs(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.999999) - 1
	return float64(sorted[min(max(i, 0), len(sorted)-1)].Microseconds()) / 1000
}
