package docker

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// container is the part of `docker container inspect` the target reads.
type container struct {
	ID     string `json:"Id"`
	Name   string // with docker's leading "/"
	Config struct {
		Image string // the reference it was started from: repository@sha256:… for Slipway's
	}
	State struct {
		Status     string // created, running, restarting, paused, removing, exited, dead
		ExitCode   int
		Error      string
		OOMKilled  bool
		StartedAt  time.Time
		FinishedAt time.Time
		Health     *health // nil without a HEALTHCHECK
	}
}

type health struct {
	Status string // starting, healthy, unhealthy
	Log    []struct {
		ExitCode int
		Output   string
	}
}

// inspect returns the container called (or with the id) ref, or nil when there is none.
func (t *Target) inspect(ctx context.Context, ref string) (*container, error) {
	var c container
	found, err := t.docker.Inspect(ctx, "container", ref, &c)
	if err != nil {
		return nil, fmt.Errorf("inspecting container %s: %w", ref, err)
	}
	if !found {
		return nil, nil
	}
	return &c, nil
}

// exitReason says how a container that stopped running ended, the way an operator would want to
// read it first: "container exited with code 3 after 0.4s".
func (c *container) exitReason() string {
	ran := max(c.State.FinishedAt.Sub(c.State.StartedAt), 0)
	msg := fmt.Sprintf("container exited with code %d after %.1fs", c.State.ExitCode, ran.Seconds())
	if c.State.OOMKilled {
		msg += " (killed: out of memory)"
	}
	if c.State.Error != "" {
		msg += ": " + c.State.Error
	}
	return msg
}

// lastHealthCheck describes the latest health check, for an error message.
func (c *container) lastHealthCheck() string {
	h := c.State.Health
	if h == nil || len(h.Log) == 0 {
		return "no health check has finished"
	}
	last := h.Log[len(h.Log)-1]
	out := strings.Join(strings.Fields(last.Output), " ")
	if len(out) > 200 {
		out = strings.ToValidUTF8(out[:200], "") + "…"
	}
	if out == "" {
		return fmt.Sprintf("last check exited with %d", last.ExitCode)
	}
	return fmt.Sprintf("last check exited with %d: %s", last.ExitCode, out)
}
