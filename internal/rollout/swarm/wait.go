package swarm

import (
	"context"
	"fmt"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"

	"github.com/slipway-dev/slipway/internal/deploy"
)

const (
	// firstPoll is the first gap between two reads of the tasks; it doubles up to PollInterval.
	firstPoll = 100 * time.Millisecond
	// recheck is how many PollIntervals may pass without a read of the service while the events
	// say nothing: a missed event costs that much time, not the deploy.
	recheck = 5
)

// settle waits until Swarm's update of the service is over (see over) and returns the service as
// it read it last. since is the service's UpdatedAt when last read, from which on the engine
// replays the service's events: a change between that read and the subscription is not missed.
//
// Swarm's verdict comes from the events stream: each event about the service (its update state
// changed: updatestate.new) makes settle read it. The tasks are read at each poll for the progress
// lines, 100ms apart at first, then up to PollInterval; without the stream, the service too.
func (u *update) settle(ctx context.Context, since time.Time) (swarm.Service, error) {
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	// Waiting for Swarm takes no worker slot: another deployment may build meanwhile.
	defer u.r.Wait()()
	changed, broken := u.t.watch(wctx, u.id, since)

	delay := min(firstPoll, u.t.cfg.PollInterval)
	timer := time.NewTimer(delay)
	defer timer.Stop()
	read, lastRead := true, time.Now()
	var last swarm.UpdateState
	for {
		if read {
			s, over, err := u.over(ctx)
			if err != nil || over {
				return s, err
			}
			if st := state(s); st != last {
				// Swarm moved on (started, or started rolling back): tasks change again soon.
				last, delay = st, min(firstPoll, u.t.cfg.PollInterval)
				timer.Reset(delay)
			}
			read, lastRead = false, time.Now()
		}
		select {
		case <-ctx.Done():
			return swarm.Service{}, context.Cause(ctx)
		case <-changed:
			read = true
		case err := <-broken:
			if ctx.Err() != nil {
				return swarm.Service{}, context.Cause(ctx)
			}
			u.logger.DebugContext(ctx, "swarm service events stopped; reading the service at each poll", "err", err)
			changed, broken = nil, nil
			read = true
		case <-timer.C:
			tasks, err := u.t.taskList(ctx, u.id)
			if err != nil {
				return swarm.Service{}, err
			}
			u.progress.report(tasks)
			read = changed == nil || time.Since(lastRead) >= recheck*u.t.cfg.PollInterval
			delay = min(2*delay, u.t.cfg.PollInterval)
			timer.Reset(delay)
		}
	}
}

// watch subscribes to the engine's events about service id since the given time (Swarm's clock,
// which stamps them). The engine answers before it subscribes, hence the replay.
func (t *Target) watch(ctx context.Context, id string, since time.Time) (<-chan events.Message, <-chan error) {
	opts := events.ListOptions{Filters: filters.NewArgs(
		filters.Arg("type", string(events.ServiceEventType)),
		filters.Arg("service", id),
	)}
	if !since.IsZero() {
		opts.Since = since.UTC().Format(time.RFC3339Nano)
	}
	return t.api.Events(ctx, opts)
}

// over reads the service and reports whether its update is over: UpdateStatus in a final state,
// or no update at all. ServiceUpdate clears UpdateStatus, and Swarm sets it again only when it
// starts replacing tasks; so a service without one whose tasks all match its spec will not be
// updated. The tasks are listed before the service is read again: an update that started and
// ended between the first read and the listing still shows in the second read.
func (u *update) over(ctx context.Context) (s swarm.Service, over bool, err error) {
	if s, err = u.read(ctx); err != nil {
		return s, false, err
	}
	if s.UpdateStatus == nil {
		current, err := u.t.upToDate(ctx, u.id)
		if err != nil || !current {
			return s, false, err
		}
		if s, err = u.read(ctx); err != nil || s.UpdateStatus == nil {
			return s, err == nil, err
		}
	}
	u.progress.status(s)
	return s, final(s.UpdateStatus.State), nil
}

// read returns the service, which must still exist.
func (u *update) read(ctx context.Context) (swarm.Service, error) {
	s, found, err := u.t.inspect(ctx, u.id)
	if err != nil {
		return s, err
	}
	if !found {
		return s, fmt.Errorf("swarm service %s was removed during the update", u.name)
	}
	return s, nil
}

// verify checks that the spec names the image and that a task runs it. A task can be between
// restarts at the moment the update completes, so it looks for a while before it gives up.
func (u *update) verify(ctx context.Context, s swarm.Service) error {
	if !deploy.SameImage(image(s), u.r.Image) {
		return fmt.Errorf("swarm service %s: the update finished, but the service's image is %s", u.name, image(s))
	}
	if scaledToZero(s) {
		say(u.log, "swarm service %s is scaled to 0: no task to check", u.name)
		return nil
	}
	deadline := time.Now().Add(max(u.t.cfg.UpdateMonitor, 5*time.Second))
	delay := min(firstPoll, u.t.cfg.PollInterval)
	for {
		tasks, err := u.t.taskList(ctx, u.id)
		if err != nil {
			return err
		}
		u.progress.report(tasks)
		var failed string
		for _, k := range tasks {
			if !deploy.SameImage(taskImage(k), u.r.Image) {
				continue
			}
			if k.Status.State == swarm.TaskStateRunning && k.DesiredState == swarm.TaskStateRunning {
				return nil
			}
			if e := taskErr(k); failed == "" && e != "" {
				failed = fmt.Sprintf(" (task %s: %s)", taskName(u.name, k), e)
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("swarm service %s: no task runs %s%s", u.name, u.r.Image, failed)
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(delay):
		}
		delay = min(2*delay, u.t.cfg.PollInterval)
	}
}
