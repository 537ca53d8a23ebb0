package docker

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/image"

	"github.com/slipway-dev/slipway/internal/deploy"
)

// rollout runs r.Image as the container r.Destination.Docker.Container. On failure, restored says
// whether the live version runs again under the name.
//
// The order keeps the service's downtime to the gap between stopping the old container and
// starting the new one (the host network lets only one of them hold the port): the image is
// pulled and the new container created while the old one still serves.
func (t *Target) rollout(ctx context.Context, r deploy.Rollout, log deploy.LogFunc) (restored bool, err error) {
	spec, err := checkRollout(r)
	if err != nil {
		return false, err
	}
	name := spec.Container
	logger := t.logger.With("deployment_id", r.DeploymentID, "service", r.Service, "container", name)

	if err := t.ensureImage(ctx, r.Image, log); err != nil {
		return false, err
	}
	s, err := t.survey(ctx, name, r.PreviousID)
	if err != nil {
		return false, err
	}
	if err := s.checkOwner(r); err != nil {
		return false, err
	}
	// What earlier attempts left and is not running goes first: it may hold the names needed.
	var running []*box
	for _, b := range s.others {
		if b.Running {
			running = append(running, b)
			continue
		}
		say(log, "removing container %s (deployment %s), left from an earlier attempt", b.Name, deploymentName(b))
		if err := t.remove(ctx, r, b); err != nil {
			return false, err
		}
	}
	next, err := t.create(ctx, r, r.DeploymentID, r.Image, spec, name+"-slipway-"+strconv.FormatInt(r.DeploymentID, 10))
	if err != nil {
		return false, err
	}
	prev := s.live
	fail := func(cause error) (bool, error) {
		return t.recover(ctx, r, name, next, prev, cause, log, logger)
	}

	// The swap: stop what runs, move the live container aside, start the new one under the name.
	for _, b := range running {
		say(log, "stopping container %s (deployment %s, %s): not the live version", b.Name, deploymentName(b), b.Image)
		if err := t.stop(ctx, r, b); err != nil {
			return fail(err)
		}
		if err := t.remove(ctx, r, b); err != nil {
			return fail(err)
		}
	}
	if prev != nil {
		if prev.Running {
			say(log, "stopping container %s (deployment %s, %s)", prev.Name, deploymentName(prev), prev.Image)
			if err := t.stop(ctx, r, prev); err != nil {
				return fail(err)
			}
		}
		if err := t.rename(ctx, r, prev, name+"-slipway-previous"); err != nil {
			return fail(err)
		}
	}
	if err := t.rename(ctx, r, next, name); err != nil {
		return fail(err)
	}
	say(log, "starting container %s from %s", name, r.Image)
	start := time.Now()
	if err := t.startAndWait(ctx, r, next, t.healthTimeout(spec), true, log); err != nil {
		return fail(err)
	}
	if err := t.keep(ctx, r, next); err != nil {
		return fail(err)
	}
	say(log, "container %s is up with %s (%.1fs)", name, r.Image, time.Since(start).Seconds())
	logger.InfoContext(ctx, "container deployed", "image", r.Image, "duration", time.Since(start).Round(time.Millisecond))
	if prev != nil {
		if err := t.remove(ctx, r, prev); err != nil {
			// The deployment succeeded; the next one removes what is left.
			say(log, "could not remove the previous container: %v", err)
			logger.WarnContext(ctx, "removing previous container", "err", err)
		} else {
			say(log, "removed the previous container; its image %s stays in the engine for rollback", prev.Image)
		}
	}
	return false, nil
}

func deploymentName(b *box) string {
	if b.Deployment == 0 {
		return "none"
	}
	return strconv.FormatInt(b.Deployment, 10)
}

func (t *Target) healthTimeout(spec *deploy.Container) time.Duration {
	return cmp.Or(spec.HealthTimeout, t.cfg.HealthTimeout)
}

// ensureImage pulls image unless the engine has it already (it usually does: it built it).
func (t *Target) ensureImage(ctx context.Context, ref string, log deploy.LogFunc) error {
	_, err := t.eng.API.ImageInspect(ctx, ref)
	if err == nil {
		return nil
	}
	if !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("looking up image %s: %w", ref, err)
	}
	var opts image.PullOptions
	if t.cfg.PullAuth != nil {
		if opts.RegistryAuth, err = t.cfg.PullAuth(ctx, ref); err != nil {
			return fmt.Errorf("pulling %s: %w", ref, err)
		}
	}
	say(log, "pulling %s", ref)
	rc, err := t.eng.API.ImagePull(ctx, ref, opts)
	if err != nil {
		return fmt.Errorf("pulling %s: %w", ref, err)
	}
	defer rc.Close()
	if err := pullResult(rc); err != nil {
		return fmt.Errorf("pulling %s: %w", ref, err)
	}
	return nil
}

// recover cleans up after a failed or cancelled rollout: it shows the new container's last output,
// removes it, and puts the live version back under name. It runs on a fresh context, since the
// deployment's own may be the reason it is needed; the claim's fence still applies.
func (t *Target) recover(ctx context.Context, r deploy.Rollout, name string, next, prev *box, cause error,
	log deploy.LogFunc, logger *slog.Logger) (restored bool, err error) {
	if ctx.Err() != nil {
		say(log, "deployment stopped (%v): cleaning up", context.Cause(ctx))
	}
	say(log, "new container failed: %v", cause)
	if err := r.CheckHeld(); err != nil {
		// The claim is lost: the target is the new owner's now.
		return false, fmt.Errorf("%w; left the target to the new owner: %w", cause, err)
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), t.cfg.RestoreTimeout)
	defer cancel()
	if err := t.discard(rctx, r, next, log); err != nil {
		logger.WarnContext(ctx, "removing failed container", "err", err)
		say(log, "could not remove the new container: %v", err)
	}
	if prev == nil && r.Previous != "" {
		say(log, "the container of the live deployment %d is gone: creating it again from %s", r.PreviousID, r.Previous)
		if prev, err = t.recreate(rctx, r, log); err != nil {
			return false, fmt.Errorf("%w; putting the live version back: %w", cause, err)
		}
	}
	if prev == nil {
		return false, cause
	}
	if err := t.restart(rctx, r, name, prev, log); err != nil {
		logger.ErrorContext(ctx, "restoring previous container", "err", err)
		say(log, "could not put the previous container back: %v", err)
		return false, fmt.Errorf("%w; putting the previous container back: %w", cause, err)
	}
	logger.WarnContext(ctx, "container rolled back", "cause", cause.Error(), "image", prev.Image)
	return true, cause
}

// discard logs the last output and the exit of the new container, then removes it.
func (t *Target) discard(ctx context.Context, r deploy.Rollout, next *box, log deploy.LogFunc) error {
	c, err := t.eng.API.ContainerInspect(ctx, next.ID)
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("inspecting the new container: %w", err)
	}
	if c.State != nil && c.State.StartedAt != "" && c.State.StartedAt != "0001-01-01T00:00:00Z" {
		t.tail(ctx, next, log)
		if c.State.Running {
			say(log, "the new container was still running; removing it")
		} else {
			say(log, "new %s", exitReason(c))
		}
	}
	return t.remove(ctx, r, next)
}

// recreate creates the live version's container again from its image and target block, for
// when it is gone (removed by hand, or by an older Slipway).
func (t *Target) recreate(ctx context.Context, r deploy.Rollout, log deploy.LogFunc) (*box, error) {
	spec := r.PreviousDestination.Docker
	if spec == nil {
		spec = r.Destination.Docker
	}
	if err := t.ensureImage(ctx, r.Previous, log); err != nil {
		return nil, err
	}
	return t.create(ctx, r, r.PreviousID, r.Previous, spec, spec.Container+"-slipway-"+strconv.FormatInt(r.PreviousID, 10))
}

// restart puts prev back under name and starts it, unless it runs there already.
func (t *Target) restart(ctx context.Context, r deploy.Rollout, name string, prev *box, log deploy.LogFunc) error {
	if prev.Running && prev.Name == name {
		say(log, "the live container %s (%s) is running", name, prev.Image)
		return nil
	}
	if err := t.rename(ctx, r, prev, name); err != nil {
		return err
	}
	say(log, "starting the previous container %s (image %s)", name, prev.Image)
	if err := t.startAndWait(ctx, r, prev, t.cfg.HealthTimeout, false, log); err != nil {
		return fmt.Errorf("starting it again: %w", err)
	}
	if err := t.keep(ctx, r, prev); err != nil {
		return err
	}
	say(log, "the previous container %s is running again", name)
	return nil
}

// clear stops and removes containers of the target other than the live one.
func (t *Target) clear(ctx context.Context, r deploy.Rollout, others []*box, log deploy.LogFunc) error {
	for _, b := range others {
		say(log, "removing container %s (deployment %s, %s): not the live version", b.Name, deploymentName(b), b.Image)
		if b.Running {
			if err := t.stop(ctx, r, b); err != nil {
				return err
			}
		}
		if err := t.remove(ctx, r, b); err != nil {
			return err
		}
	}
	return nil
}

// pullResult drains a pull's progress stream and returns the error it ends with, if any.
func pullResult(rc io.Reader) error {
	return decodeStream(rc)
}
