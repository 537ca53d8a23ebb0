package swarm

import (
	"context"

	"github.com/slipway-dev/slipway/internal/deploy"
)

// Restore puts the live version (r.Previous) back after an interrupted attempt: Swarm keeps the
// rest of the service's definition itself, so this is a rollback to that image, which Swarm
// completes at once when the service runs it already. With no live version recorded, the service
// is left as Swarm has it: Slipway never created it and knows no other version to go back to.
func (t *Target) Restore(ctx context.Context, r deploy.Rollout, log deploy.LogFunc) error {
	if r.Previous == "" {
		say(log, "nothing recorded live on swarm service %s: left as it is", r.Destination.Name())
		return nil
	}
	r.Image = r.Previous
	return t.Rollback(ctx, r, log)
}
