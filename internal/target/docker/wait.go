package docker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/slipway-dev/slipway/internal/deploy"
)

// waitReady waits until container id has been running without a restart for StableFor and, when
// checkHealth is set and it has a HEALTHCHECK, is healthy, all within timeout.
func (t *Target) waitReady(ctx context.Context, id string, timeout time.Duration, checkHealth bool, log deploy.LogFunc) error {
	start := time.Now()
	deadline := start.Add(max(timeout, t.cfg.StableFor))
	tick := time.NewTicker(t.cfg.PollInterval)
	defer tick.Stop()

	var (
		runningSince time.Time // when we first saw it running, by our clock
		startedAt    time.Time // its StartedAt then: a change means it restarted
		lastHealth   string
	)
	for {
		c, err := t.inspect(ctx, id)
		if err != nil {
			return err
		}
		if c == nil {
			return fmt.Errorf("container %.12s was removed", id)
		}
		now := time.Now()
		switch c.State.Status {
		case "running":
			if runningSince.IsZero() {
				runningSince, startedAt = now, c.State.StartedAt
			} else if !c.State.StartedAt.Equal(startedAt) {
				return fmt.Errorf("container restarted (%s)", c.exitReason())
			}
		case "created":
			// Not started yet; the deadline bounds how long that may last.
		case "exited", "dead", "restarting":
			return errors.New(c.exitReason())
		default:
			return fmt.Errorf("container is %s", c.State.Status)
		}

		stable := !runningSince.IsZero() && now.Sub(runningSince) >= t.cfg.StableFor
		healthy := true
		if h := c.State.Health; checkHealth && h != nil {
			healthy = h.Status == "healthy"
			if h.Status != lastHealth {
				say(log, "health: %s", h.Status)
				lastHealth = h.Status
			}
		}
		switch {
		case stable && healthy:
			return nil
		case now.After(deadline) && !healthy:
			return fmt.Errorf("container not healthy after %s (health %s; %s)",
				timeout.Round(100*time.Millisecond), c.State.Health.Status, c.lastHealthCheck())
		case now.After(deadline):
			return fmt.Errorf("container not running after %s (status %s)",
				timeout.Round(100*time.Millisecond), c.State.Status)
		}

		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-tick.C:
		}
	}
}
