package swarm

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/swarm"

	"github.com/slipway-dev/slipway/internal/deploy"
)

// fakeSwarm is an engine with one service, whose updates end as its verdict says at once. It
// drives the verdicts the real engine is hard to bring about (a paused update, a paused rollback).
type fakeSwarm struct {
	mu      sync.Mutex
	svc     swarm.Service
	tasks   []swarm.Task
	verdict func(s *swarm.Service) // what Swarm makes of an update (not of a rollback)
	updates []swarm.ServiceUpdateOptions
}

var _ engineAPI = (*fakeSwarm)(nil)

func (f *fakeSwarm) ServiceInspectWithRaw(_ context.Context, id string, _ swarm.ServiceInspectOptions) (swarm.Service, []byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if id != f.svc.ID && id != f.svc.Spec.Name {
		return swarm.Service{}, nil, cerrdefs.ErrNotFound
	}
	return f.svc, nil, nil
}

func (f *fakeSwarm) ServiceUpdate(_ context.Context, _ string, v swarm.Version, spec swarm.ServiceSpec, opts swarm.ServiceUpdateOptions) (swarm.ServiceUpdateResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if v != f.svc.Version {
		return swarm.ServiceUpdateResponse{}, errors.New("update out of sequence")
	}
	f.updates = append(f.updates, opts)
	f.svc.Version.Index++
	f.svc.UpdatedAt = f.svc.UpdatedAt.Add(time.Second)
	if opts.Rollback == "previous" {
		f.svc.Spec, f.svc.PreviousSpec = *f.svc.PreviousSpec, &f.svc.Spec
		f.svc.UpdateStatus = &swarm.UpdateStatus{State: swarm.UpdateStateRollbackCompleted, Message: "rollback completed"}
		return swarm.ServiceUpdateResponse{}, nil
	}
	prev := f.svc.Spec
	f.svc.Spec, f.svc.PreviousSpec, f.svc.UpdateStatus = spec, &prev, nil
	f.verdict(&f.svc)
	return swarm.ServiceUpdateResponse{}, nil
}

func (f *fakeSwarm) TaskList(context.Context, swarm.TaskListOptions) ([]swarm.Task, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tasks, nil
}

func (f *fakeSwarm) TaskLogs(context.Context, string, container.LogsOptions) (io.ReadCloser, error) {
	return nil, errors.New("no logs here")
}

// Events fails: the target must then read the service at each poll.
func (f *fakeSwarm) Events(context.Context, events.ListOptions) (<-chan events.Message, <-chan error) {
	errs := make(chan error, 1)
	errs <- errors.New("no events here")
	return nil, errs
}

func TestUpdateVerdicts(t *testing.T) {
	const oldImg, newImg = "reg/api" + d1, "reg/api" + d2
	failed := swarm.Task{ID: "t1", Slot: 1, DesiredState: swarm.TaskStateShutdown,
		Spec:   swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: newImg}},
		Status: swarm.TaskStatus{State: swarm.TaskStateFailed, Err: "task: non-zero exit (3)"}}
	paused := func(s *swarm.Service) {
		s.UpdateStatus = &swarm.UpdateStatus{State: swarm.UpdateStatePaused, Message: "update paused due to failure"}
	}
	errLost := errors.New("claim lost")
	tests := []struct {
		name           string
		verdict        func(s *swarm.Service)
		held           []error // Held's answers, in turn
		wantRolledBack bool
		wantErr        []string
		wantImage      string
		wantUpdates    []string // the Rollback option of each ServiceUpdate
	}{
		{
			name:           "paused: Slipway rolls back",
			verdict:        paused,
			wantRolledBack: true,
			wantErr:        []string{"update paused due to failure (paused)", "task api.1 failed: task: non-zero exit (3)"},
			wantImage:      oldImg,
			wantUpdates:    []string{"", "previous"},
		},
		{
			name:        "paused, and the claim lost before the rollback",
			verdict:     paused,
			held:        []error{nil, errLost},
			wantErr:     []string{"rolling back: swarm service api left as it is: claim lost"},
			wantImage:   newImg,
			wantUpdates: []string{""},
		},
		{
			name: "rollback paused: needs attention",
			verdict: func(s *swarm.Service) {
				s.Spec, s.PreviousSpec = *s.PreviousSpec, &s.Spec
				s.UpdateStatus = &swarm.UpdateStatus{State: swarm.UpdateStateRollbackPaused, Message: "rollback paused"}
			},
			wantErr:     []string{"rollback paused (rollback_paused)", "the service needs attention"},
			wantImage:   oldImg,
			wantUpdates: []string{""},
		},
		{
			name: "rolled back by Swarm",
			verdict: func(s *swarm.Service) {
				s.Spec, s.PreviousSpec = *s.PreviousSpec, &s.Spec
				s.UpdateStatus = &swarm.UpdateStatus{State: swarm.UpdateStateRollbackCompleted, Message: "rollback completed"}
			},
			wantRolledBack: true,
			wantErr:        []string{"rollback completed (rollback_completed): task api.1 failed: task: non-zero exit (3)"},
			wantImage:      oldImg,
			wantUpdates:    []string{""},
		},
		{
			name:        "the claim lost before the update",
			verdict:     func(*swarm.Service) { t.Error("the service was updated") },
			held:        []error{errLost},
			wantErr:     []string{"not updating swarm service api: claim lost"},
			wantImage:   oldImg,
			wantUpdates: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeSwarm{
				svc: swarm.Service{ID: "svc1", Spec: swarm.ServiceSpec{Annotations: swarm.Annotations{Name: "api"},
					TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: oldImg}}}},
				tasks:   []swarm.Task{failed},
				verdict: tt.verdict,
			}
			tgt := &Target{cfg: Config{UpdateMonitor: time.Second, RollbackTimeout: time.Minute, PollInterval: 10 * time.Millisecond},
				api: f, logger: slog.New(slog.DiscardHandler)}
			r := deploy.Rollout{DeploymentID: 1, Image: newImg, Adopt: true,
				Destination: deploy.Destination{Platform: deploy.PlatformSwarm, Swarm: &deploy.SwarmService{Service: "api"}}}
			r.Held = func() error {
				if len(tt.held) == 0 {
					return nil
				}
				err := tt.held[0]
				tt.held = tt.held[1:]
				return err
			}
			var lines []string
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // bounds a hang only
			defer cancel()
			rolledBack, err := tgt.update(ctx, r, func(_, line string) { lines = append(lines, line) })
			t.Logf("log:\n%s", strings.Join(lines, "\n"))
			if err == nil {
				t.Fatal("no error")
			}
			if rolledBack != tt.wantRolledBack {
				t.Errorf("rolledBack = %v, want %v (error: %v)", rolledBack, tt.wantRolledBack, err)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			if len(tt.held) > 0 {
				t.Errorf("Held was asked %d times less than expected", len(tt.held))
			}
			if got := image(f.svc); got != tt.wantImage {
				t.Errorf("the service runs %s, want %s", got, tt.wantImage)
			}
			var got []string
			for _, u := range f.updates {
				got = append(got, u.Rollback)
			}
			if !slices.Equal(got, tt.wantUpdates) {
				t.Errorf("updates with Rollback %q, want %q", got, tt.wantUpdates)
			}
		})
	}
}
