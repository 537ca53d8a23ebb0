package ecs_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/rollout/ecs"
	"github.com/slipway-dev/slipway/internal/rollout/ecs/ecstest"
)

// benchServices makes n services (api0, api1, …) on task definitions of their own, and a target.
func benchServices(tb testing.TB, n int, cfg ecs.Config) (*ecstest.Double, *ecs.Target) {
	tb.Helper()
	d := ecstest.New(tb)
	for i := range n {
		name := fmt.Sprintf("api%d", i)
		td := taskDef(name, 1, img("v1"))
		d.AddTaskDef(td, nil)
		d.AddService(name, tdARN(name, 1), 2, "acme/api", true)
	}
	tgt, err := ecs.New(cfg, d.Client(), slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatal(err)
	}
	return d, tgt
}

func benchRollout(service string) deploy.Rollout {
	return deploy.Rollout{DeploymentID: 42, Repo: "acme/api", Service: service, Environment: "production",
		Image: img("v2"), Previous: img("v1"),
		Destination: deploy.Destination{Service: service, Environment: "production", Platform: deploy.PlatformECS,
			ECS: &deploy.ECSService{Cluster: ecstest.Cluster, Service: service, Container: "api"}}}
}

func discard(string, string) {}

// ECS API calls one deployment makes: a constant handful, then a few per poll. The rollout takes
// three polls (two of progress, then completion).
func BenchmarkDeployCalls(b *testing.B) {
	var calls, polls, setup int
	for b.Loop() {
		b.StopTimer()
		d, tgt := benchServices(b, 1, ecs.Config{PollMin: time.Millisecond, PollMax: time.Millisecond})
		d.Script("api0", []ecstest.Step{ecstest.Progress(1, 1), ecstest.Progress(2, 0), ecstest.Complete()})
		b.StartTimer()
		if err := tgt.Deploy(b.Context(), benchRollout("api0"), discard); err != nil {
			b.Fatal(err)
		}
		c := d.Take()
		n := c["DescribeServices"] - 1
		total := 0
		for _, v := range c {
			total += v
		}
		calls, polls = calls+total, polls+n
		setup += total - n - c["DescribeServiceDeployments"] - c["ListTasks"] - c["DescribeTasks"]
	}
	b.ReportMetric(float64(calls)/float64(b.N), "calls/op")
	b.ReportMetric(float64(setup)/float64(b.N), "setup-calls/op")
	b.ReportMetric(float64(polls)/float64(b.N), "polls/op")
	b.ReportMetric(float64(calls-setup)/float64(polls), "calls/poll")
}

// From the moment ECS completes a deployment (a time of its own, between Slipway's polls) to
// Deploy returning success: at most the poll interval then in force, PollMax once the backoff
// reached it. Poll intervals are a hundredth of the defaults (10ms to 150ms).
func BenchmarkCompletionToSucceeded(b *testing.B) {
	cfg := ecs.Config{PollMin: 10 * time.Millisecond, PollMax: 150 * time.Millisecond}
	var total, worst time.Duration
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		d, tgt := benchServices(b, 1, cfg)
		// Completion at a time unrelated to the poll schedule, after the backoff reached PollMax.
		at := time.Now().Add(time.Second + time.Duration(i%7)*23*time.Millisecond)
		steps := slices.Repeat([]ecstest.Step{ecstest.When(func() bool { return !time.Now().Before(at) }, ecstest.Complete())}, 1000)
		d.Script("api0", steps)
		b.StartTimer()
		if err := tgt.Deploy(b.Context(), benchRollout("api0"), discard); err != nil {
			b.Fatal(err)
		}
		lag := time.Since(at)
		total, worst = total+lag, max(worst, lag)
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms-mean-lag")
	b.ReportMetric(float64(worst.Milliseconds()), "ms-worst-lag")
	b.ReportMetric(float64(cfg.PollMax.Milliseconds()), "ms-poll-max")
}

// Polls (DescribeServices of a running deployment) per minute and per rollout while rollouts
// never finish, with 1 and with 20 at once, for the first minute of each. The clock runs a
// hundred times fast: polls every 10ms doubling to 150ms, for 600ms.
func BenchmarkPollsPerMinute(b *testing.B) {
	for _, n := range []int{1, 20} {
		b.Run(fmt.Sprintf("rollouts=%d", n), func(b *testing.B) {
			cfg := ecs.Config{PollMin: 10 * time.Millisecond, PollMax: 150 * time.Millisecond, RestoreTimeout: time.Second}
			const minute = 600 * time.Millisecond
			var polls int64
			for b.Loop() {
				d, tgt := benchServices(b, n, cfg)
				for i := range n {
					d.Script(fmt.Sprintf("api%d", i), []ecstest.Step{ecstest.Progress(0, 2)})
				}
				var inMinute atomic.Int64
				start := time.Now()
				d.OnPoll = func(int) {
					if time.Since(start) < minute {
						inMinute.Add(1)
					}
				}
				ctx, cancel := context.WithTimeout(b.Context(), minute)
				var wg sync.WaitGroup
				for i := range n {
					wg.Go(func() { _ = tgt.Deploy(ctx, benchRollout(fmt.Sprintf("api%d", i)), discard) })
				}
				wg.Wait()
				cancel()
				polls += inMinute.Load()
			}
			b.ReportMetric(float64(polls)/float64(b.N), "polls/min")
			b.ReportMetric(float64(polls)/float64(b.N)/float64(n), "polls/min/rollout")
		})
	}
}
