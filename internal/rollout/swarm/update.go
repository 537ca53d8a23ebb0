package swarm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/slipway-dev/slipway/internal/deploy"
)

// update is one Deploy or Rollback: one service moved to one image.
type update struct {
	t        *Target
	r        deploy.Rollout
	name, id string        // the service's name, as the pipeline gives it, and its ID
	before   swarm.Service // as it was before the update
	log      deploy.LogFunc
	logger   *slog.Logger
	progress *progress
}

// update points the service at image and waits for Swarm's verdict. On failure, rolledBack says
// whether the service is back on the image it had, by Swarm's rollback or by Slipway's own.
func (t *Target) update(ctx context.Context, r deploy.Rollout, log deploy.LogFunc) (rolledBack bool, err error) {
	name, err := checkRollout(r)
	if err != nil {
		return false, err
	}
	before, found, err := t.lookup(ctx, name)
	if err != nil {
		return false, err
	}
	if !found {
		return false, fmt.Errorf("swarm service %s does not exist: create it first", name)
	}
	if err := r.CheckOwner("swarm service "+name, before.Spec.Labels[deploy.LabelRepo]); err != nil {
		return false, err
	}
	u := &update{
		t: t, r: r, name: name, id: before.ID, before: before, log: log,
		logger:   t.logger.With("deployment_id", r.DeploymentID, "service", r.Service, "swarm_service", name),
		progress: newProgress(before, log),
	}
	return u.run(ctx)
}

func (u *update) run(ctx context.Context) (rolledBack bool, err error) {
	spec, err := updateSpec(u.before.Spec, u.r.Image, u.r.Repo, u.t.cfg.UpdateMonitor)
	if err != nil {
		return false, fmt.Errorf("updating swarm service %s: %w", u.name, err)
	}
	tasks, err := u.t.taskList(ctx, u.id)
	if err != nil {
		return false, err
	}
	u.progress.seed(tasks)
	if err := u.r.CheckHeld(); err != nil {
		return false, fmt.Errorf("not updating swarm service %s: %w", u.name, err)
	}
	say(u.log, "updating swarm service %s from %s to %s", u.name, image(u.before), u.r.Image)
	start := time.Now()
	resp, err := u.t.api.ServiceUpdate(ctx, u.id, u.before.Version, spec, u.options(ctx))
	if ctx.Err() != nil {
		// The update may have reached Swarm before the request was cut short; abort looks.
		return u.abort(ctx)
	}
	if err != nil {
		return false, fmt.Errorf("updating swarm service %s: %w", u.name, err)
	}
	u.warn(resp.Warnings)

	after, err := u.settle(ctx, u.before.UpdatedAt)
	if ctx.Err() != nil {
		return u.abort(ctx)
	}
	if err != nil {
		return false, err
	}

	switch st := after.UpdateStatus; {
	case st == nil, st.State == swarm.UpdateStateCompleted:
		// No update at all is what Swarm does when the tasks already run the image.
		if err := u.verify(ctx, after); err != nil {
			if ctx.Err() != nil {
				return u.abort(ctx)
			}
			return false, err
		}
		say(u.log, "swarm service %s runs %s (%.1fs)", u.name, u.r.Image, time.Since(start).Seconds())
		u.logger.InfoContext(ctx, "swarm service updated", "image", u.r.Image, "duration", time.Since(start).Round(time.Millisecond))
		return false, nil
	case st.State == swarm.UpdateStateRollbackCompleted:
		reason := u.failure(ctx, st)
		say(u.log, "Swarm rolled swarm service %s back to %s", u.name, image(after))
		u.logger.WarnContext(ctx, "swarm service rolled back", "image", u.r.Image, "reason", reason)
		return true, errors.New(reason)
	case st.State == swarm.UpdateStatePaused:
		// The update was paused by hand, or its failure action changed since we set it: Slipway
		// does what failure action rollback would have done.
		reason := u.failure(ctx, st)
		say(u.log, "the update paused; rolling back")
		rctx, cancel := u.t.rollbackContext(ctx)
		defer cancel()
		if err := u.rollback(rctx, after); err != nil {
			return false, fmt.Errorf("%s; rolling back: %w", reason, err)
		}
		return true, errors.New(reason)
	case st.State == swarm.UpdateStateRollbackPaused:
		reason := u.failure(ctx, st)
		u.logger.ErrorContext(ctx, "swarm rollback paused", "image", u.r.Image, "reason", reason)
		return false, fmt.Errorf("%s; Swarm's rollback paused as well, the service needs attention", reason)
	default:
		return false, fmt.Errorf("swarm service %s: unexpected update state %q: %s", u.name, st.State, st.Message)
	}
}

// abort handles a deploy whose context ended (cancelled, or past its deadline): if the update
// reached the service, Slipway rolls it back, on a fresh context since the deploy's own is done.
func (u *update) abort(ctx context.Context) (rolledBack bool, err error) {
	cause := context.Cause(ctx)
	say(u.log, "deployment stopped (%v)", cause)
	rctx, cancel := u.t.rollbackContext(ctx)
	defer cancel()

	s, found, err := u.t.inspect(rctx, u.id)
	if err != nil {
		return false, fmt.Errorf("%w; checking whether to roll back: %w", cause, err)
	}
	if !found {
		return false, cause
	}
	if deploy.SameImage(image(s), image(u.before)) {
		if state(s) != swarm.UpdateStateRollbackStarted {
			say(u.log, "swarm service %s still has image %s: nothing to roll back", u.name, image(s))
			return false, cause
		}
		// Swarm is rolling back already; wait for it rather than start another.
		if s, err = u.settle(rctx, s.UpdatedAt); err != nil {
			return false, fmt.Errorf("%w; waiting for Swarm's rollback: %w", cause, err)
		}
		if st := state(s); st != swarm.UpdateStateRollbackCompleted {
			return false, fmt.Errorf("%w; Swarm's rollback ended %s: %s", cause, st, message(s))
		}
		return true, cause
	}
	if !deploy.SameImage(image(s), u.r.Image) {
		say(u.log, "swarm service %s now has image %s, set by someone else: not rolling back", u.name, image(s))
		return false, cause
	}
	if err := u.rollback(rctx, s); err != nil {
		u.logger.ErrorContext(rctx, "rolling back swarm service", "err", err)
		return false, fmt.Errorf("%w; rolling back: %w", cause, err)
	}
	u.logger.WarnContext(rctx, "swarm service rolled back after the deploy stopped", "cause", cause.Error())
	return true, cause
}

func (t *Target) rollbackContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), t.cfg.RollbackTimeout)
}

// options are the update's options: the registry login for pulling the new image, which Swarm
// keeps in the service's spec for the nodes that start its tasks. Without one (no PullAuth, no
// login for the host, or the lookup failed, which the log says) the service keeps the login it
// was last given, which may still serve.
func (u *update) options(ctx context.Context) swarm.ServiceUpdateOptions {
	if u.t.cfg.PullAuth == nil {
		return swarm.ServiceUpdateOptions{}
	}
	auth, err := u.t.cfg.PullAuth(ctx, u.r.Image)
	if err != nil {
		say(u.log, "no registry login for %s (the service keeps the one it has): %v", u.r.Image, err)
		return swarm.ServiceUpdateOptions{}
	}
	return swarm.ServiceUpdateOptions{EncodedRegistryAuth: auth}
}

// rollback asks Swarm to return the service, s as last read, to the spec it had before the last
// update (ours), as `docker service rollback` does, and waits for Swarm to finish.
func (u *update) rollback(ctx context.Context, s swarm.Service) error {
	if err := u.r.CheckHeld(); err != nil {
		return fmt.Errorf("swarm service %s left as it is: %w", u.name, err)
	}
	say(u.log, "rolling back swarm service %s to %s", u.name, image(u.before))
	// Swarm ignores the spec sent with a rollback, and so a login (the previous spec keeps the
	// one it had); the version still guards against a change made since s was read.
	resp, err := u.t.api.ServiceUpdate(ctx, u.id, s.Version, s.Spec, swarm.ServiceUpdateOptions{Rollback: "previous"})
	if err != nil {
		return fmt.Errorf("rolling back swarm service %s: %w", u.name, err)
	}
	u.warn(resp.Warnings)
	if s, err = u.settle(ctx, s.UpdatedAt); err != nil {
		return err
	}
	if st := state(s); st != swarm.UpdateStateRollbackCompleted {
		return fmt.Errorf("the rollback ended %s: %s", st, message(s))
	}
	if !deploy.SameImage(image(s), image(u.before)) {
		return fmt.Errorf("after the rollback the service's image is %s, not %s", image(s), image(u.before))
	}
	say(u.log, "swarm service %s is back on %s", u.name, image(u.before))
	return nil
}

func (u *update) warn(warnings []string) {
	for _, w := range warnings {
		say(u.log, "docker engine: %s", w)
	}
}
