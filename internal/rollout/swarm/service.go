package swarm

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/swarm"

	"github.com/slipway-dev/slipway/internal/deploy"
)

// inspect returns the service with that name or ID; found is false when there is none.
func (t *Target) inspect(ctx context.Context, nameOrID string) (s swarm.Service, found bool, err error) {
	s, _, err = t.api.ServiceInspectWithRaw(ctx, nameOrID, swarm.ServiceInspectOptions{})
	switch {
	case cerrdefs.IsNotFound(err):
		return swarm.Service{}, false, nil
	case err != nil:
		return swarm.Service{}, false, fmt.Errorf("inspecting swarm service %s: %w", nameOrID, err)
	}
	return s, true, nil
}

// lookup returns the service called name. The engine also answers a name with a service whose ID
// starts with it; that one is not the service the pipeline names.
func (t *Target) lookup(ctx context.Context, name string) (s swarm.Service, found bool, err error) {
	s, found, err = t.inspect(ctx, name)
	if err != nil || !found || s.Spec.Name != name {
		return swarm.Service{}, false, err
	}
	return s, true, nil
}

func image(s swarm.Service) string {
	if cs := s.Spec.TaskTemplate.ContainerSpec; cs != nil {
		return cs.Image
	}
	return ""
}

// state is the state of the service's last update, "" when it has none: Swarm clears it on every
// change of the spec and sets it when it starts replacing tasks.
func state(s swarm.Service) swarm.UpdateState {
	if s.UpdateStatus == nil {
		return ""
	}
	return s.UpdateStatus.State
}

// message is what Swarm says of the service's last update.
func message(s swarm.Service) string {
	if s.UpdateStatus == nil {
		return "no update"
	}
	return s.UpdateStatus.Message
}

// final reports whether an update in state st is over, one way or another.
func final(st swarm.UpdateState) bool {
	switch st {
	case swarm.UpdateStateCompleted, swarm.UpdateStatePaused,
		swarm.UpdateStateRollbackCompleted, swarm.UpdateStateRollbackPaused:
		return true
	}
	return false
}

// replicas is the number of tasks a replicated service runs, 0 for other modes.
func replicas(s swarm.Service) uint64 {
	if r := s.Spec.Mode.Replicated; r != nil && r.Replicas != nil {
		return *r.Replicas
	}
	return 0
}

// scaledToZero says the service runs no tasks on purpose, so none can run the new image.
func scaledToZero(s swarm.Service) bool {
	r := s.Spec.Mode.Replicated
	return r != nil && r.Replicas != nil && *r.Replicas == 0
}

// updateSpec returns a copy of spec that runs image, with the update settings the docker CLI's
// flags used to set: roll back on failure, watch each task for monitor, stop the old task first;
// and the same monitor for the rollback (Swarm's default is 5s whatever the update's). The
// service's other update settings (Parallelism, Delay, MaxFailureRatio) stay, and so does
// ForceUpdate: the update replaces tasks only when the image changes. spec itself is not changed.
func updateSpec(spec swarm.ServiceSpec, image, repo string, monitor time.Duration) (swarm.ServiceSpec, error) {
	if spec.TaskTemplate.ContainerSpec == nil {
		return spec, errors.New("the service does not run containers")
	}
	// The service is repo's from now on (it may have been adopted): the label says so.
	spec.Labels = maps.Clone(spec.Labels)
	if spec.Labels == nil {
		spec.Labels = map[string]string{}
	}
	spec.Labels[deploy.LabelRepo] = strings.ToLower(repo)
	cs := *spec.TaskTemplate.ContainerSpec
	cs.Image = image
	spec.TaskTemplate.ContainerSpec = &cs

	update := defaultUpdate()
	if spec.UpdateConfig != nil {
		update = *spec.UpdateConfig
	}
	update.FailureAction = swarm.UpdateFailureActionRollback
	update.Monitor = monitor
	update.Order = swarm.UpdateOrderStopFirst
	spec.UpdateConfig = &update

	rollback := defaultUpdate()
	if spec.RollbackConfig != nil {
		rollback = *spec.RollbackConfig
	}
	rollback.Monitor = monitor
	spec.RollbackConfig = &rollback
	return spec, nil
}

// defaultUpdate is what Swarm does for a service that has no UpdateConfig or RollbackConfig. A
// zero UpdateConfig would not do: Parallelism 0 replaces every task at once.
func defaultUpdate() swarm.UpdateConfig {
	return swarm.UpdateConfig{
		Parallelism:   1,
		FailureAction: swarm.UpdateFailureActionPause,
		Monitor:       5 * time.Second,
		Order:         swarm.UpdateOrderStopFirst,
	}
}
