package ecs

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/slipway-dev/slipway/internal/deploy"
)

// Restore makes the service run r.Previous again after an interrupted attempt: a no-op when its
// live task definition runs that image in the destination's container already, else an update to a
// revision of the live task definition with that image (registered, or the one registered before
// for it). An interrupted attempt leaves nothing else behind: a revision no service uses is
// harmless. With no live version recorded, the service is left as ECS has it: Slipway never
// created it and knows no other version to go back to.
func (t *Target) Restore(ctx context.Context, r deploy.Rollout, log deploy.LogFunc) error {
	if r.Previous == "" {
		say(log, "nothing recorded live on ECS service %s: left as it is", r.Destination.Name())
		return nil
	}
	r.Image = r.Previous
	u, err := t.prepare(ctx, r, log)
	if err != nil {
		return deploy.RolloutError(true, r.Image, false, err)
	}
	if deploy.SameImage(image(u.td, u.p.container), r.Previous) {
		say(log, "ECS service %s runs %s (%s) already: nothing to restore", u.p,
			short(aws.ToString(u.before.TaskDefinition)), deploy.ShortImage(r.Previous))
		return nil
	}
	restored, err := u.run(ctx)
	return deploy.RolloutError(true, r.Image, restored, err)
}
