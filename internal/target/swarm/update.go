package swarm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/slipway-dev/slipway/internal/deploy"
)

// update points the service at image and waits for Swarm's verdict. On failure, rolledBack says
// whether the service is back on the image it had, by Swarm's rollback or by Slipway's own.
func (t *Target) update(ctx context.Context, r deploy.Rollout, log deploy.LogFunc) (rolledBack bool, err error) {
	name, err := checkRollout(r)
	if err != nil {
		return false, err
	}
	logger := t.logger.With("deployment_id", r.DeploymentID, "service", r.Service, "swarm_service", name)
	ctx, cancel := context.WithTimeoutCause(ctx, t.cfg.Timeout,
		fmt.Errorf("swarm service update did not finish within %s", t.cfg.Timeout))
	defer cancel()

	before, err := t.inspect(ctx, name)
	if err != nil {
		return false, err
	}
	if before == nil {
		return false, fmt.Errorf("swarm service %s does not exist: create it first", name)
	}
	say(log, "updating swarm service %s from %s to %s", name, before.image(), r.Image)
	start := time.Now()
	// --detach=false makes the CLI follow the update until the tasks converge (or Swarm rolls
	// back); its progress goes to the log. What happened is read afterwards from UpdateStatus.
	cliErr := t.docker.RunCollapsed(ctx, log, updateArgs(name, r.Image, t.cfg.UpdateMonitor)...)
	if ctx.Err() != nil {
		return t.abort(ctx, name, r.Image, before, log, logger)
	}
	if cliErr != nil {
		say(log, "docker service update failed: %v", cliErr)
	}
	// The CLI can return while Swarm still finishes a rollback; only a settled state is a verdict.
	after, err := t.settle(ctx, name, before.status().StartedAt)
	if ctx.Err() != nil {
		return t.abort(ctx, name, r.Image, before, log, logger)
	}
	if err != nil {
		return false, err
	}

	st := after.status()
	unchanged := noUpdate(after, before.status().StartedAt)
	switch {
	case unchanged && cliErr != nil:
		return false, fmt.Errorf("updating swarm service %s: %w", name, cliErr)
	case unchanged, st.State == "completed":
		// No update at all is what Swarm does when the tasks already run the image.
		if err := t.verify(ctx, name, r.Image, after, log); err != nil {
			return false, err
		}
		say(log, "swarm service %s runs %s (%.1fs)", name, r.Image, time.Since(start).Seconds())
		logger.InfoContext(ctx, "swarm service updated", "image", r.Image, "duration", time.Since(start).Round(time.Millisecond))
		return false, nil
	case st.State == "rollback_completed":
		reason := t.failure(ctx, name, r.Image, st, log)
		say(log, "Swarm rolled swarm service %s back to %s", name, after.image())
		logger.WarnContext(ctx, "swarm service rolled back", "image", r.Image, "reason", reason)
		return true, errors.New(reason)
	case st.State == "paused":
		// The service's own failure action won over ours (or the update was paused by hand):
		// Slipway does what --update-failure-action rollback would have done.
		reason := t.failure(ctx, name, r.Image, st, log)
		say(log, "the update paused; rolling back")
		rctx, cancel := t.rollbackContext(ctx)
		defer cancel()
		if err := t.rollback(rctx, name, before, log); err != nil {
			return false, fmt.Errorf("%s; rolling back: %w", reason, err)
		}
		return true, errors.New(reason)
	case st.State == "rollback_paused":
		reason := t.failure(ctx, name, r.Image, st, log)
		logger.ErrorContext(ctx, "swarm rollback paused", "image", r.Image, "reason", reason)
		return false, fmt.Errorf("%s; Swarm's rollback paused as well, the service needs attention", reason)
	default:
		return false, fmt.Errorf("swarm service %s: unexpected update state %q: %s", name, st.State, st.Message)
	}
}

// settled reports whether the service's update is over: UpdateStatus in a final state, or no
// update since the one that started at since. Swarm clears UpdateStatus when an update changed no
// task (the same image again), so a missing one means no update too.
func settled(s *service, since time.Time) bool {
	if s.UpdateStatus == nil {
		return true
	}
	switch s.UpdateStatus.State {
	case "completed", "paused", "rollback_completed", "rollback_paused":
		return true
	}
	return s.UpdateStatus.StartedAt.Equal(since)
}

// noUpdate reports whether no update started since the one that started at since.
func noUpdate(s *service, since time.Time) bool {
	return s.UpdateStatus == nil || s.UpdateStatus.StartedAt.Equal(since)
}

func updateArgs(name, image string, monitor time.Duration) []string {
	return []string{"service", "update",
		"--image", image,
		"--with-registry-auth",
		"--update-failure-action", "rollback",
		"--update-monitor", monitor.String(),
		// Swarm's default rollback monitor is 5s whatever the update's; a failed update should
		// come back as fast as it went out.
		"--rollback-monitor", monitor.String(),
		"--update-order", "stop-first",
		"--detach=false",
		name}
}

// settle reads the service until settled says its update is over.
func (t *Target) settle(ctx context.Context, name string, since time.Time) (*service, error) {
	tick := time.NewTicker(t.cfg.PollInterval)
	defer tick.Stop()
	for {
		s, err := t.inspect(ctx, name)
		if err != nil {
			return nil, err
		}
		if s == nil {
			return nil, fmt.Errorf("swarm service %s was removed during the update", name)
		}
		if settled(s, since) {
			return s, nil
		}
		select {
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		case <-tick.C:
		}
	}
}

// verify checks that the spec names image and that a task runs it. A task can be between
// restarts at the moment the update completes, so it looks for a while before it gives up.
func (t *Target) verify(ctx context.Context, name, image string, s *service, log deploy.LogFunc) error {
	if !sameImage(s.image(), image) {
		return fmt.Errorf("swarm service %s: the update finished, but the service's image is %s", name, s.image())
	}
	if s.scaledToZero() {
		say(log, "swarm service %s is scaled to 0: no task to check", name)
		return nil
	}
	deadline := time.Now().Add(max(t.cfg.UpdateMonitor, 5*time.Second))
	for {
		tasks, err := t.tasks(ctx, name)
		if err != nil {
			return err
		}
		var failed string
		for _, k := range tasks {
			if !sameImage(k.Image, image) {
				continue
			}
			if k.running() {
				return nil
			}
			if failed == "" && k.err() != "" {
				failed = fmt.Sprintf(" (task %s: %s)", k.Name, k.err())
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("swarm service %s: no task runs %s%s", name, image, failed)
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(t.cfg.PollInterval):
		}
	}
}

// failure explains why the update failed: Swarm's message and the error of the newest task of the
// new image that has one, whose last output it also logs.
func (t *Target) failure(ctx context.Context, name, image string, st updateStatus, log deploy.LogFunc) string {
	reason := fmt.Sprintf("swarm service %s: %s (%s)", name, st.Message, st.State)
	tasks, err := t.tasks(ctx, name)
	if err != nil {
		say(log, "could not list the tasks: %v", err)
		return reason
	}
	for _, k := range tasks {
		if !sameImage(k.Image, image) || k.err() == "" {
			continue
		}
		say(log, "last output of task %s:", k.ID)
		output := func(stream, line string) { log(stream, "| "+line) }
		if err := t.docker.Run(ctx, output, "service", "logs", "--raw", "--tail", "50", k.ID); err != nil {
			say(log, "could not read its output: %v", err)
		}
		return fmt.Sprintf("%s: task %s failed: %s", reason, k.Name, k.err())
	}
	return reason
}

// abort handles a deploy whose context ended (cancelled, or out of time): if the update reached
// the service, Slipway rolls it back, on a fresh context since the deploy's own is done.
func (t *Target) abort(ctx context.Context, name, image string, before *service, log deploy.LogFunc,
	logger *slog.Logger) (rolledBack bool, err error) {
	cause := context.Cause(ctx)
	say(log, "deployment stopped (%v)", cause)
	rctx, cancel := t.rollbackContext(ctx)
	defer cancel()

	s, err := t.inspect(rctx, name)
	if err != nil {
		return false, fmt.Errorf("%w; checking whether to roll back: %w", cause, err)
	}
	if s == nil {
		return false, cause
	}
	if st := s.status(); sameImage(s.image(), before.image()) {
		if st.State != "rollback_started" {
			say(log, "swarm service %s still has image %s: nothing to roll back", name, s.image())
			return false, cause
		}
		// Swarm is rolling back already; wait for it rather than start another.
		if s, err = t.settle(rctx, name, time.Time{}); err != nil {
			return false, fmt.Errorf("%w; waiting for Swarm's rollback: %w", cause, err)
		}
		if s.status().State != "rollback_completed" {
			return false, fmt.Errorf("%w; Swarm's rollback ended %s: %s", cause, s.status().State, s.status().Message)
		}
		return true, cause
	}
	if !sameImage(s.image(), image) {
		say(log, "swarm service %s now has image %s, set by someone else: not rolling back", name, s.image())
		return false, cause
	}
	if err := t.rollback(rctx, name, before, log); err != nil {
		logger.ErrorContext(rctx, "rolling back swarm service", "error", err)
		return false, fmt.Errorf("%w; rolling back: %w", cause, err)
	}
	logger.WarnContext(rctx, "swarm service rolled back after the deploy stopped", "cause", cause.Error())
	return true, cause
}

func (t *Target) rollbackContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), t.cfg.RollbackTimeout)
}

// rollback runs `docker service rollback`, which returns the service to the spec it had before the
// last update (ours), and waits for Swarm to finish it.
func (t *Target) rollback(ctx context.Context, name string, before *service, log deploy.LogFunc) error {
	say(log, "rolling back swarm service %s to %s", name, before.image())
	if err := t.docker.RunCollapsed(ctx, log, "service", "rollback", "--detach=false", name); err != nil {
		return fmt.Errorf("docker service rollback: %w", err)
	}
	s, err := t.settle(ctx, name, time.Time{})
	if err != nil {
		return err
	}
	if st := s.status(); st.State != "rollback_completed" {
		return fmt.Errorf("the rollback ended %s: %s", st.State, st.Message)
	}
	if !sameImage(s.image(), before.image()) {
		return fmt.Errorf("after the rollback the service's image is %s, not %s", s.image(), before.image())
	}
	say(log, "swarm service %s is back on %s", name, before.image())
	return nil
}
