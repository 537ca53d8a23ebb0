package ecs_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/rollout/ecs"
	"github.com/slipway-dev/slipway/internal/rollout/ecs/ecstest"
)

// images is a registry that holds the images in have.
type images struct {
	mu    sync.Mutex
	have  map[string]bool
	err   error
	asked []string
}

func (i *images) Digest(_ context.Context, ref string) (string, bool, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.asked = append(i.asked, ref)
	if i.err != nil {
		return "", false, i.err
	}
	if !i.have[ref] {
		return "", false, nil
	}
	_, d, _ := strings.Cut(ref, "@")
	return d, true, nil
}

// results collects what a rollout records.
type results struct {
	mu  sync.Mutex
	got []deploy.Result
	err error
}

func (r *results) record(_ context.Context, res deploy.Result) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	r.got = append(r.got, res)
	return nil
}

func (r *results) last(t *testing.T) deploy.Result {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.got) != 1 {
		t.Fatalf("recorded %d results, want one: %v", len(r.got), r.got)
	}
	return r.got[0]
}

// rollbackFixture is newFixture with the service on api:6 (v2) after api:5 (v1), a registry
// holding both images, and a target that asks it.
func rollbackFixture(t *testing.T) (*fixture, *images) {
	t.Helper()
	f := newFixture(t)
	reg := &images{have: map[string]bool{img("v1"): true, img("v2"): true}}
	f.d.AddTaskDef(taskDef("api", 6, img("v2")), nil)
	f.d.Mu.Lock()
	f.d.Services["api"].TaskDef = tdARN("api", 6)
	f.d.Mu.Unlock()
	logger := slog.New(slog.NewTextHandler(t.Output(), nil))
	tgt, err := ecs.New(ecs.Config{PollMin: time.Millisecond, PollMax: 4 * time.Millisecond, Images: reg}, f.d.Client(), logger)
	if err != nil {
		t.Fatal(err)
	}
	f.tgt = tgt
	f.d.Take()
	return f, reg
}

// A deploy records the task definition it registers and the one the service named before, before
// the service is updated.
func TestDeployRecordsTaskDefinitions(t *testing.T) {
	f := newFixture(t)
	f.d.Script("api", []ecstest.Step{ecstest.Complete()})
	rec := &results{}
	r := f.rollout("api", img("v2"))
	r.Record = func(ctx context.Context, res deploy.Result) error {
		if calls := f.d.Take(); calls["UpdateService"] != 0 {
			t.Errorf("recorded after UpdateService: %v", calls)
		}
		return rec.record(ctx, res)
	}
	if err := f.tgt.Deploy(t.Context(), r, f.log.log); err != nil {
		t.Fatalf("Deploy: %v\n%s", err, f.log)
	}
	want := deploy.Result{TaskDefinitionARN: tdARN("api", 6), PreviousTaskDefinitionARN: tdARN("api", 5)}
	if got := rec.last(t); got != want {
		t.Errorf("recorded %+v, want %+v", got, want)
	}
}

// A record that fails (the claim was lost) stops the rollout before the service changes.
func TestRecordFailureChangesNothing(t *testing.T) {
	f := newFixture(t)
	r := f.rollout("api", img("v2"))
	r.Record = (&results{err: errors.New("deployment 42 is no longer held")}).record
	err := f.tgt.Deploy(t.Context(), r, f.log.log)
	if err == nil || !strings.Contains(err.Error(), "recording task definition api:6: deployment 42 is no longer held") {
		t.Fatalf("Deploy: %v, want the failed record", err)
	}
	if calls := f.d.Take(); calls["UpdateService"] != 0 || calls["TagResource"] != 0 {
		t.Errorf("the service was changed: %v", calls)
	}
	if s := f.d.Service("api"); s.TaskDef != f.prevTD {
		t.Errorf("service on %s, want %s", s.TaskDef, f.prevTD)
	}
}

// A rollback goes back to the task definition recorded for the deployment rolled back to: no
// revision is registered, and the image is checked in its registry first.
func TestRollbackToRecordedTaskDefinition(t *testing.T) {
	f, reg := rollbackFixture(t)
	f.d.Script("api", []ecstest.Step{ecstest.Progress(1, 1), ecstest.Complete()})
	rec := &results{}
	r := f.rollout("api", img("v1"))
	r.Destination.ECS.TaskDefinition = f.prevTD
	r.Record = rec.record
	if err := f.tgt.Rollback(t.Context(), r, f.log.log); err != nil {
		t.Fatalf("Rollback: %v\n%s", err, f.log)
	}
	if s := f.d.Service("api"); s.TaskDef != f.prevTD {
		t.Errorf("service on %s, want the recorded %s", s.TaskDef, f.prevTD)
	}
	calls := f.d.Take()
	if calls["RegisterTaskDefinition"] != 0 || calls["UpdateService"] != 1 {
		t.Errorf("ECS calls %v: want no registration and one update", calls)
	}
	if len(reg.asked) != 1 || reg.asked[0] != img("v1") {
		t.Errorf("registry asked for %v, want %s", reg.asked, img("v1"))
	}
	want := deploy.Result{TaskDefinitionARN: f.prevTD, PreviousTaskDefinitionARN: tdARN("api", 6)}
	if got := rec.last(t); got != want {
		t.Errorf("recorded %+v, want %+v", got, want)
	}
	wantLog(t, f.log, "updating ECS service prod/api from api:6", "to api:5", "ECS service prod/api runs api:5")
}

// An image its registry no longer holds is not rolled back to: the error says so and ECS is not
// changed, nor even read.
func TestRollbackImageDeleted(t *testing.T) {
	f, reg := rollbackFixture(t)
	delete(reg.have, img("v1"))
	r := f.rollout("api", img("v1"))
	r.Destination.ECS.TaskDefinition = f.prevTD
	err := f.tgt.Rollback(t.Context(), r, f.log.log)
	if err == nil || !strings.Contains(err.Error(), "image "+img("v1")+" no longer exists in its registry") {
		t.Fatalf("Rollback: %v, want the deleted image named", err)
	}
	wantCalls(t, f.d.Take(), map[string]int{})

	reg.err = errors.New("registry answered 403 Forbidden")
	err = f.tgt.Rollback(t.Context(), r, f.log.log)
	if err == nil || !strings.Contains(err.Error(), "still exists in its registry: registry answered 403 Forbidden") {
		t.Fatalf("Rollback: %v, want the registry's error", err)
	}
	wantCalls(t, f.d.Take(), map[string]int{})
}

// A recorded task definition that cannot run the image again (deregistered, or another image in
// the container) gives way to a new revision of the live one, and the log says why.
func TestRollbackRecordedUnusable(t *testing.T) {
	for _, c := range []struct {
		name, status, image, why string
	}{
		{"inactive", "INACTIVE", img("v1"), "is INACTIVE"},
		{"other image", "ACTIVE", img("v9"), `runs "` + img("v9") + `" in container api`},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, _ := rollbackFixture(t)
			td := taskDef("old", 2, c.image)
			td["status"] = c.status
			old := f.d.AddTaskDef(td, nil)
			f.d.Script("api", []ecstest.Step{ecstest.Complete()})
			r := f.rollout("api", img("v1"))
			r.Destination.ECS.TaskDefinition = old
			if err := f.tgt.Rollback(t.Context(), r, f.log.log); err != nil {
				t.Fatalf("Rollback: %v\n%s", err, f.log)
			}
			if s := f.d.Service("api"); s.TaskDef != tdARN("api", 7) {
				t.Errorf("service on %s, want a new revision api:7", s.TaskDef)
			}
			wantLog(t, f.log, "task definition old:2 recorded for that deployment "+c.why, "registering a revision of api:6 with")
		})
	}
}

// A permission the policy does not grant fails the deployment at once, naming the action, and
// leaves the service as it was.
func TestAccessDeniedNamesThePermission(t *testing.T) {
	for _, op := range []string{"DescribeServices", "RegisterTaskDefinition", "UpdateService"} {
		t.Run(op, func(t *testing.T) {
			f := newFixture(t)
			f.d.Denied[op] = true
			err := f.tgt.Deploy(t.Context(), f.rollout("api", img("v2")), f.log.log)
			if err == nil || !strings.Contains(err.Error(), "is not authorized to perform: ecs:"+op) {
				t.Fatalf("Deploy: %v, want the missing ecs:%s named", err, op)
			}
			if calls := f.d.Take(); calls[op] != 1 {
				t.Errorf("%s called %d times, want once (AccessDenied is not retried)", op, calls[op])
			}
			if s := f.d.Service("api"); s.TaskDef != f.prevTD {
				t.Errorf("service on %s, want %s", s.TaskDef, f.prevTD)
			}
		})
	}
}
