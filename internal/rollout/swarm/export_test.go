package swarm

import (
	"context"
	"io"
	"maps"
	"sync"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/swarm"
)

// Calls counts the Engine API calls of a Target by method, for tests that check what a deployment
// costs.
type Calls struct {
	mu sync.Mutex
	n  map[string]int
}

// CountCalls makes t count its API calls from now on; call it before t is used.
func CountCalls(t *Target) *Calls {
	c := &Calls{n: map[string]int{}}
	t.api = &counting{api: t.api, calls: c}
	return c
}

// Take returns the counts since the last Take and starts again from zero.
func (c *Calls) Take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := maps.Clone(c.n)
	clear(c.n)
	return n
}

func (c *Calls) add(method string) {
	c.mu.Lock()
	c.n[method]++
	c.mu.Unlock()
}

type counting struct {
	api   engineAPI
	calls *Calls
}

var _ engineAPI = (*counting)(nil)

func (k *counting) ServiceInspectWithRaw(ctx context.Context, id string, opts swarm.ServiceInspectOptions) (swarm.Service, []byte, error) {
	k.calls.add("ServiceInspect")
	return k.api.ServiceInspectWithRaw(ctx, id, opts)
}

func (k *counting) ServiceUpdate(ctx context.Context, id string, v swarm.Version, spec swarm.ServiceSpec, opts swarm.ServiceUpdateOptions) (swarm.ServiceUpdateResponse, error) {
	k.calls.add("ServiceUpdate")
	return k.api.ServiceUpdate(ctx, id, v, spec, opts)
}

func (k *counting) TaskList(ctx context.Context, opts swarm.TaskListOptions) ([]swarm.Task, error) {
	k.calls.add("TaskList")
	return k.api.TaskList(ctx, opts)
}

func (k *counting) TaskLogs(ctx context.Context, id string, opts container.LogsOptions) (io.ReadCloser, error) {
	k.calls.add("TaskLogs")
	return k.api.TaskLogs(ctx, id, opts)
}

func (k *counting) Events(ctx context.Context, opts events.ListOptions) (<-chan events.Message, <-chan error) {
	k.calls.add("Events")
	return k.api.Events(ctx, opts)
}
