package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"

	"github.com/slipway-dev/slipway/internal/deploy"
)

// startAndWait starts b and waits until it is up, within timeout: healthy when checkHealth is set
// and it has a HEALTHCHECK (a check that passed after the container ran for an interval says more
// than any wait, and the window would only delay the deployment), else still running after
// StableFor. It listens to the engine's events for the container (subscribed before the start, so
// a container that dies at once is seen), so the wait costs no CPU; one inspect at the end
// confirms what the events said.
func (t *Target) startAndWait(ctx context.Context, r deploy.Rollout, b *box, timeout time.Duration, checkHealth bool, log deploy.LogFunc) error {
	ectx, stop := context.WithCancel(ctx)
	defer stop()
	msgs, errs := t.eng.API.Events(ectx, events.ListOptions{Filters: filters.NewArgs(
		filters.Arg("type", string(events.ContainerEventType)), filters.Arg("container", b.ID))})
	if err := t.start(ctx, r, b); err != nil {
		return err
	}
	c, err := t.eng.API.ContainerInspect(ctx, b.ID)
	if err != nil {
		return fmt.Errorf("inspecting container %s: %w", b.Name, err)
	}
	if c.State == nil || !c.State.Running {
		return errors.New(exitReason(c))
	}
	startedAt := c.State.StartedAt
	hasHealth := checkHealth && c.State.Health != nil
	if hasHealth {
		say(log, "waiting for %s to be healthy (at most %s)", b.Name, timeout)
	} else {
		say(log, "waiting for %s to stay up for %s", b.Name, t.cfg.StableFor)
	}
	stable := time.NewTimer(t.cfg.StableFor)
	defer stable.Stop()
	if !hasHealth {
		timeout = max(timeout, t.cfg.StableFor)
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	var poll <-chan time.Time // set when the events stream fails: fall back to reading the state
	isStable, healthy, health := false, !hasHealth, ""
	// The wait takes no worker slot: another deployment may build meanwhile.
	defer r.Wait()()
	for !(healthy && (isStable || hasHealth)) {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-deadline.C:
			return t.notReady(ctx, b, timeout, hasHealth)
		case <-stable.C:
			isStable = true
		case err := <-errs:
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			say(log, "engine events unavailable (%v): reading the container's state instead", err)
			errs, msgs = nil, nil
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			poll = tick.C
		case m := <-msgs:
			switch action := string(m.Action); {
			case action == "die":
				return t.exited(ctx, b)
			case strings.HasPrefix(action, "health_status"):
				st := strings.TrimSpace(strings.TrimPrefix(action, "health_status:"))
				if st == "health_status" || st == "" {
					st = m.Actor.Attributes["health_status"]
				}
				if st != health {
					say(log, "health: %s", st)
					health = st
				}
				switch st {
				case "healthy":
					healthy = true
				case "unhealthy":
					if hasHealth {
						c, _ := t.eng.API.ContainerInspect(ctx, b.ID)
						return fmt.Errorf("container unhealthy (%s)", lastHealthCheck(c))
					}
				}
			}
		case <-poll:
			c, err := t.eng.API.ContainerInspect(ctx, b.ID)
			if err != nil {
				return fmt.Errorf("inspecting container %s: %w", b.Name, err)
			}
			if c.State == nil || !c.State.Running {
				return errors.New(exitReason(c))
			}
			if c.State.Health != nil && c.State.Health.Status == "healthy" {
				healthy = true
			}
		}
	}
	// The verdict: still running, never restarted since the start.
	c, err = t.eng.API.ContainerInspect(ctx, b.ID)
	if err != nil {
		return fmt.Errorf("inspecting container %s: %w", b.Name, err)
	}
	if c.State == nil || !c.State.Running {
		return errors.New(exitReason(c))
	}
	if c.State.StartedAt != startedAt {
		return fmt.Errorf("container restarted (%s)", exitReason(c))
	}
	return nil
}

func (t *Target) exited(ctx context.Context, b *box) error {
	c, err := t.eng.API.ContainerInspect(ctx, b.ID)
	if err != nil {
		return fmt.Errorf("container %s stopped; inspecting it: %w", b.Name, err)
	}
	return errors.New(exitReason(c))
}

func (t *Target) notReady(ctx context.Context, b *box, timeout time.Duration, hasHealth bool) error {
	c, err := t.eng.API.ContainerInspect(ctx, b.ID)
	if err != nil {
		return fmt.Errorf("container %s not ready after %s; inspecting it: %w", b.Name, timeout, err)
	}
	if hasHealth && c.State != nil && c.State.Health != nil {
		return fmt.Errorf("container not healthy after %s (health %s; %s)",
			timeout.Round(100*time.Millisecond), c.State.Health.Status, lastHealthCheck(c))
	}
	status := "unknown"
	if c.State != nil {
		status = c.State.Status
	}
	return fmt.Errorf("container not running after %s (status %s)", timeout.Round(100*time.Millisecond), status)
}

// decodeStream reads a progress stream of JSON messages (a pull's) to its end and returns the
// error the engine reported in it, if any.
func decodeStream(rc io.Reader) error {
	dec := json.NewDecoder(rc)
	for {
		var m struct {
			Error       string `json:"error"`
			ErrorDetail *struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&m); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("reading the engine's progress: %w", err)
		}
		if m.ErrorDetail != nil && m.ErrorDetail.Message != "" {
			return errors.New(m.ErrorDetail.Message)
		}
		if m.Error != "" {
			return errors.New(m.Error)
		}
	}
}
