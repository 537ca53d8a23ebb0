package ecs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/slipway-dev/slipway/internal/deploy"
)

// update is one Deploy, Rollback or Restore: one service moved to one image.
type update struct {
	t      *Target
	r      deploy.Rollout
	p      place
	image  string                   // what goes live
	before ecstypes.Service         // as it was before the update
	owner  string                   // its LabelRepo tag
	td     *ecstypes.TaskDefinition // its live task definition
	tags   []ecstypes.Tag           // td's tags
	reuse  string                   // a rollback's recorded task definition, "" to register one
	log    deploy.LogFunc
	logger *slog.Logger
}

// prepare reads what the update starts from and checks that r may change the service. It changes
// nothing.
func (t *Target) prepare(ctx context.Context, r deploy.Rollout, log deploy.LogFunc) (*update, error) {
	p, err := checkRollout(r, r.Image)
	if err != nil {
		return nil, err
	}
	s, err := t.describe(ctx, p)
	if err != nil {
		return nil, err
	}
	if err := checkController(p, s); err != nil {
		return nil, err
	}
	owner, err := t.owner(ctx, p, s)
	if err != nil {
		return nil, err
	}
	if err := r.CheckOwner("ECS service "+p.String(), owner); err != nil {
		return nil, err
	}
	td, tags, err := t.taskDefinition(ctx, aws.ToString(s.TaskDefinition))
	if err != nil {
		return nil, err
	}
	return &update{
		t: t, r: r, p: p, image: r.Image, before: s, owner: owner, td: td, tags: tags, log: log,
		logger: t.logger.With("deployment_id", r.DeploymentID, "service", r.Service,
			"ecs_cluster", p.cluster, "ecs_service", p.service),
	}, nil
}

// run registers the revision, updates the service to it and follows the deployment ECS starts. On
// failure, restored says whether the service is back on the task definition it had, by ECS's
// rollback or by Slipway's own.
func (u *update) run(ctx context.Context) (restored bool, err error) {
	if _, err := registration(u.td, u.tags, u.p.container, u.image); err != nil {
		return false, err
	}
	live := aws.ToString(u.before.TaskDefinition)
	arn := live
	switch {
	case u.reuse != "":
		arn = u.reuse
	case !deploy.SameImage(image(u.td, u.p.container), u.image):
		if arn, err = u.register(ctx, u.image); err != nil {
			return false, err
		}
	}
	if err := u.r.RecordResult(ctx, deploy.Result{TaskDefinitionARN: arn, PreviousTaskDefinitionARN: live}); err != nil {
		return false, fmt.Errorf("recording task definition %s: %w", short(arn), err)
	}
	if u.owner == "" {
		// Adopted (CheckOwner let it through): from now on the service says whose it is.
		if err := u.r.CheckHeld(); err != nil {
			return false, fmt.Errorf("not tagging ECS service %s: %w", u.p, err)
		}
		if err := u.t.adopt(ctx, u.p, u.before, u.r.Repo); err != nil {
			return false, err
		}
		say(u.log, "ECS service %s adopted: tagged %s", u.p, deploy.LabelRepo)
	}
	if err := u.r.CheckHeld(); err != nil {
		return false, fmt.Errorf("not updating ECS service %s: %w", u.p, err)
	}
	if arn == live {
		say(u.log, "ECS service %s names %s (%s) already: following its deployment", u.p, short(live), deploy.ShortImage(u.image))
	} else {
		say(u.log, "updating ECS service %s from %s (%s) to %s (%s)", u.p,
			short(live), deploy.ShortImage(image(u.td, u.p.container)), short(arn), deploy.ShortImage(u.image))
	}
	start := time.Now()
	out, err := u.t.api.UpdateService(ctx, &awsecs.UpdateServiceInput{
		Cluster: aws.String(u.p.cluster), Service: aws.String(u.p.service), TaskDefinition: aws.String(arn),
	})
	if ctx.Err() != nil {
		// The update may have reached ECS before the request was cut short: revert looks.
		return u.revert(ctx, nil, live, arn, context.Cause(ctx))
	}
	if err != nil {
		return false, fmt.Errorf("updating ECS service %s: %w", u.p, err)
	}
	w := u.watch(u.before, *out.Service, arn)
	v, err := w.follow(ctx)
	if err == nil {
		switch v.end {
		case succeeded:
			say(u.log, "ECS service %s runs %s (%s)", u.p, short(arn), seconds(time.Since(start)))
			u.logger.InfoContext(ctx, "ECS service updated", "task_definition", arn, "image", u.image,
				"duration", time.Since(start).Round(time.Millisecond))
			return false, nil
		case rolledBack:
			say(u.log, "ECS rolled the service back to %s", short(live))
			u.logger.WarnContext(ctx, "ECS rolled the service back", "task_definition", arn, "reason", v.reason)
			return true, errors.New(v.reason)
		case stuck:
			u.logger.ErrorContext(ctx, "ECS could not roll the service back", "task_definition", arn, "reason", v.reason)
			return false, errors.New(v.reason)
		}
		err = errors.New(v.reason)
	}
	return u.revert(ctx, w, live, arn, err)
}

// reusable says why the task definition arn recorded for a deployment cannot run u.image again,
// "" when it can: it must still be active and run that image in the destination's container.
func (u *update) reusable(ctx context.Context, arn string) string {
	td, _, err := u.t.taskDefinition(ctx, arn)
	switch {
	case err != nil:
		return fmt.Sprintf("cannot be read (%v)", err)
	case td.Status != ecstypes.TaskDefinitionStatusActive:
		return "is " + string(td.Status)
	case !deploy.SameImage(image(td, u.p.container), u.image):
		return fmt.Sprintf("runs %q in container %s", image(td, u.p.container), u.p.container)
	}
	return ""
}

// register returns the revision of the live task definition that runs ref, registering it
// unless another deployment of this push did already.
func (u *update) register(ctx context.Context, ref string) (string, error) {
	in, err := registration(u.td, u.tags, u.p.container, ref)
	if err != nil {
		return "", err
	}
	base := aws.ToString(u.td.TaskDefinitionArn)
	key := revisionKey{family: aws.ToString(u.td.Family), revision: u.td.Revision, container: u.p.container, image: ref}
	arn, shared, err := u.t.revisions.get(ctx, key, func() (string, error) {
		if err := u.r.CheckHeld(); err != nil {
			return "", fmt.Errorf("not registering a revision of task definition %s: %w", short(base), err)
		}
		out, err := u.t.api.RegisterTaskDefinition(ctx, in)
		if err != nil {
			return "", fmt.Errorf("registering a revision of task definition %s: %w", short(base), err)
		}
		if out.TaskDefinition == nil || out.TaskDefinition.TaskDefinitionArn == nil {
			return "", fmt.Errorf("registering a revision of task definition %s: ECS returned no ARN", short(base))
		}
		return aws.ToString(out.TaskDefinition.TaskDefinitionArn), nil
	})
	if err != nil {
		return "", err
	}
	if shared {
		say(u.log, "task definition %s: %s with %s in container %s, registered for another service of this push",
			short(arn), short(base), deploy.ShortImage(ref), u.p.container)
	} else {
		say(u.log, "registered task definition %s: %s with %s in container %s",
			short(arn), short(base), deploy.ShortImage(ref), u.p.container)
	}
	return arn, nil
}

// revert handles an update that did not end well by ECS's hand: the context ended, ECS stopped or
// failed the deployment without rolling it back, or the service could not be read. It puts the
// previous task definition back, on a fresh context since the deploy's own may be done, unless ECS
// is doing so already (then it waits for ECS) or another update replaced Slipway's (then it leaves
// the service alone). w follows Slipway's deployment, nil when UpdateService did not answer.
func (u *update) revert(ctx context.Context, w *watch, previous, ours string, cause error) (restored bool, err error) {
	say(u.log, "deployment stopped: %v", cause)
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), u.t.cfg.RestoreTimeout)
	defer cancel()
	if previous == ours {
		// The service ran the new image before this attempt (an earlier one, interrupted, got that
		// far): what goes back is the image recorded live, in a revision of its own.
		if u.r.Previous == "" || deploy.SameImage(u.r.Previous, u.image) {
			say(u.log, "ECS service %s ran %s before: nothing to roll back", u.p, short(ours))
			return false, cause
		}
		if previous, err = u.register(rctx, u.r.Previous); err != nil {
			return false, fmt.Errorf("%w; rolling back: %w", cause, err)
		}
	}
	s, err := u.t.describe(rctx, u.p)
	if err != nil {
		return false, fmt.Errorf("%w; checking whether to roll back: %w", cause, err)
	}
	now := aws.ToString(s.TaskDefinition)
	switch {
	case w != nil && (now == previous || w.rollingBack()):
		// ECS is putting the previous revision back itself: follow it, do not fight it.
		say(u.log, "ECS is rolling the service back to %s: waiting for it", short(previous))
		v, err := w.follow(rctx)
		if err == nil && v.end == rolledBack {
			say(u.log, "ECS service %s is back on %s", u.p, short(previous))
			return true, cause
		}
		if err == nil {
			err = errors.New(v.reason)
		}
		return false, fmt.Errorf("%w; ECS's rollback: %w", cause, err)
	case now == previous:
		say(u.log, "ECS service %s still names %s: nothing to roll back", u.p, short(previous))
		return false, cause
	case now != ours:
		say(u.log, "ECS service %s now runs %s, set by another update: not rolling back", u.p, short(now))
		return false, cause
	}
	if err := u.r.CheckHeld(); err != nil {
		return false, fmt.Errorf("%w; ECS service %s left as it is: %w", cause, u.p, err)
	}
	say(u.log, "rolling ECS service %s back to %s", u.p, short(previous))
	out, err := u.t.api.UpdateService(rctx, &awsecs.UpdateServiceInput{
		Cluster: aws.String(u.p.cluster), Service: aws.String(u.p.service), TaskDefinition: aws.String(previous),
	})
	if err != nil {
		u.logger.ErrorContext(rctx, "rolling back ECS service", "err", err)
		return false, fmt.Errorf("%w; rolling back to %s: %w", cause, short(previous), err)
	}
	back := u.watch(s, *out.Service, previous)
	v, err := back.follow(rctx)
	if err == nil && v.end == succeeded {
		say(u.log, "ECS service %s is back on %s", u.p, short(previous))
		u.logger.WarnContext(rctx, "ECS service rolled back by Slipway", "cause", cause.Error())
		if errors.Is(cause, context.DeadlineExceeded) {
			// Slipway's own deadline, not ECS's verdict: the deployment failed, and the
			// reason says the previous revision runs again.
			return false, fmt.Errorf("%w; Slipway rolled ECS service %s back to %s", cause, u.p, short(previous))
		}
		return true, cause
	}
	if err == nil {
		err = errors.New(v.reason)
	}
	u.logger.ErrorContext(rctx, "rolling back ECS service", "err", err)
	return false, fmt.Errorf("%w; rolling back to %s: %w", cause, short(previous), err)
}
