package swarm

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// service is the part of `docker service inspect` the target reads.
type service struct {
	ID   string
	Spec struct {
		TaskTemplate struct {
			ContainerSpec struct {
				Image string
			}
		}
		Mode struct {
			Replicated *struct{ Replicas *uint64 }
		}
	}
	UpdateStatus *updateStatus // nil until the first update that changed tasks
}

type updateStatus struct {
	State     string // updating, paused, completed, rollback_started, rollback_paused, rollback_completed
	StartedAt time.Time
	Message   string
}

func (s *service) image() string { return s.Spec.TaskTemplate.ContainerSpec.Image }

// scaledToZero says the service runs no tasks on purpose, so none can run the new image.
func (s *service) scaledToZero() bool {
	r := s.Spec.Mode.Replicated
	return r != nil && r.Replicas != nil && *r.Replicas == 0
}

// status is UpdateStatus, or the zero value when there is none.
func (s *service) status() updateStatus {
	if s.UpdateStatus == nil {
		return updateStatus{}
	}
	return *s.UpdateStatus
}

// inspect returns the service called name, or nil when there is none.
func (t *Target) inspect(ctx context.Context, name string) (*service, error) {
	var s service
	found, err := t.docker.Inspect(ctx, "service", name, &s)
	if err != nil {
		return nil, fmt.Errorf("inspecting swarm service %s: %w", name, err)
	}
	if !found {
		return nil, nil
	}
	return &s, nil
}

// task is one line of `docker service ps --format '{{json .}}'`.
type task struct {
	ID           string
	Name         string
	Image        string
	DesiredState string
	CurrentState string // "Running 5 seconds ago", "Failed 4 seconds ago", ...
	Error        string // quoted by docker: "\"task: non-zero exit (3)\""
}

func (k task) running() bool { return strings.HasPrefix(k.CurrentState, "Running") }

func (k task) err() string { return strings.Trim(k.Error, `"`) }

// tasks lists the service's tasks, newest first within each slot, as docker prints them.
func (t *Target) tasks(ctx context.Context, name string) ([]task, error) {
	out, err := t.docker.Output(ctx, "service", "ps", "--no-trunc", "--format", "{{json .}}", name)
	if err != nil {
		return nil, fmt.Errorf("listing the tasks of swarm service %s: %w", name, err)
	}
	var tasks []task
	for line := range bytes.Lines(out) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var k task
		if err := json.Unmarshal(line, &k); err != nil {
			return nil, fmt.Errorf("listing the tasks of swarm service %s: reading docker's answer: %w", name, err)
		}
		tasks = append(tasks, k)
	}
	return tasks, nil
}

// sameImage reports whether two references name the same image. A spec can hold
// repository:tag@digest where Slipway asked for repository@digest; then the digest decides.
func sameImage(a, b string) bool {
	if a == b {
		return true
	}
	ra, da, okA := strings.Cut(a, "@")
	rb, db, okB := strings.Cut(b, "@")
	return okA && okB && da == db && stripTag(ra) == stripTag(rb)
}

// stripTag removes a :tag from a repository, leaving a registry's :port alone.
func stripTag(repo string) string {
	if i := strings.LastIndexByte(repo, ':'); i > strings.LastIndexByte(repo, '/') {
		return repo[:i]
	}
	return repo
}
