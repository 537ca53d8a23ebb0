// Package metrics defines every Prometheus collector Slipway exports. Collectors are built from a
// prometheus.Registerer passed in, never registered globally.
package metrics

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics holds the collectors the rest of the code updates.
type Metrics struct {
	WebhookDeliveries *prometheus.CounterVec   // event, outcome
	WebhookDuration   prometheus.Histogram     // handler latency
	ClaimLatency      *prometheus.HistogramVec // kind: claimable → claimed
	WorkersBusy       *prometheus.GaugeVec     // kind
	Workers           prometheus.Gauge
	JobsFinished      *prometheus.CounterVec   // kind, status
	JobDuration       *prometheus.HistogramVec // kind
	Rescued           *prometheus.CounterVec   // kind
	StaleWrites       *prometheus.CounterVec   // kind, write
	LeasesLost        *prometheus.CounterVec   // kind
}

// New builds the collectors and registers them, with the Go and process collectors, on reg.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		WebhookDeliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slipway_webhook_deliveries_total",
			Help: "GitHub webhook deliveries received, by event and outcome.",
		}, []string{"event", "outcome"}),
		WebhookDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "slipway_webhook_duration_seconds",
			Help:    "Time to answer a webhook delivery.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}),
		ClaimLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "slipway_queue_claim_latency_seconds",
			Help:    "Time from an item becoming claimable to a worker claiming it.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"kind"}),
		WorkersBusy: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "slipway_workers_busy",
			Help: "Items this replica holds, by kind: running, or waiting on a target (which lends the worker slot out).",
		}, []string{"kind"}),
		Workers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "slipway_workers",
			Help: "Worker slots of this replica.",
		}),
		JobsFinished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slipway_queue_items_finished_total",
			Help: "Queue items a worker of this replica finished, by kind and resulting status.",
		}, []string{"kind", "status"}),
		JobDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "slipway_queue_item_duration_seconds",
			Help:    "Time a worker spent on one queue item, by kind.",
			Buckets: prometheus.ExponentialBuckets(0.01, 3, 12),
		}, []string{"kind"}),
		Rescued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slipway_queue_rescued_total",
			Help: "Queue items taken back after their lease expired, by kind.",
		}, []string{"kind"}),
		StaleWrites: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slipway_stale_writes_refused_total",
			Help: "Writes the database refused because the worker making them no longer held its claim, by kind and write.",
		}, []string{"kind", "write"}),
		LeasesLost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slipway_queue_leases_lost_total",
			Help: "Items a worker of this replica stopped because it lost, or could not renew, its lease, by kind.",
		}, []string{"kind"}),
	}
	reg.MustRegister(m.WebhookDeliveries, m.WebhookDuration, m.ClaimLatency, m.WorkersBusy, m.Workers,
		m.JobsFinished, m.JobDuration, m.Rescued, m.StaleWrites, m.LeasesLost,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// DepthSource counts unfinished queue items of a kind by status.
type DepthSource interface {
	QueueDepth(ctx context.Context, kind string) (map[string]int64, error)
}

// depthCollector reads the queue depth from the database at scrape time, so every replica reports
// the same shared queue and nothing has to keep a counter in step.
type depthCollector struct {
	src    DepthSource
	kinds  []string
	desc   *prometheus.Desc
	logger *slog.Logger
}

// RegisterQueueDepth adds the slipway_queue_depth gauge, read from src on each scrape.
func RegisterQueueDepth(reg prometheus.Registerer, src DepthSource, kinds []string, logger *slog.Logger) {
	reg.MustRegister(&depthCollector{
		src:    src,
		kinds:  kinds,
		logger: logger,
		desc: prometheus.NewDesc("slipway_queue_depth",
			"Unfinished queue items in the database, by kind and status.", []string{"kind", "status"}, nil),
	})
}

func (c *depthCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *depthCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, kind := range c.kinds {
		depth, err := c.src.QueueDepth(ctx, kind)
		if err != nil {
			c.logger.WarnContext(ctx, "reading queue depth for metrics", "kind", kind, "err", err)
			ch <- prometheus.NewInvalidMetric(c.desc, err)
			continue
		}
		for status, n := range depth {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), kind, status)
		}
	}
}
