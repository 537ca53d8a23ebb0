package ecs_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/deploy/deploytest"
	"github.com/slipway-dev/slipway/internal/rollout/ecs"
	"github.com/slipway-dev/slipway/internal/rollout/ecs/ecstest"
)

const repo = "123456789012.dkr.ecr.us-east-1.amazonaws.com/api"

// img is a pinned reference whose digest depends on tag.
func img(tag string) string {
	sum := sha256.Sum256([]byte(tag))
	return repo + "@sha256:" + hex.EncodeToString(sum[:])
}

func tdARN(family string, rev int) string { return ecstest.TaskDefARN(family, rev) }

// taskDef is a task definition as DescribeTaskDefinition returns it: an app container and a sidecar.
func taskDef(family string, rev int, image string) map[string]any {
	return map[string]any{
		"taskDefinitionArn": tdARN(family, rev), "family": family, "revision": float64(rev), "status": "ACTIVE",
		"networkMode": "awsvpc", "cpu": "256", "memory": "512",
		"requiresCompatibilities": []any{"FARGATE"}, "compatibilities": []any{"EC2", "FARGATE"},
		"containerDefinitions": []any{
			map[string]any{"name": "api", "image": image, "essential": true, "cpu": 0,
				"portMappings": []any{map[string]any{"containerPort": 8080, "protocol": "tcp"}}},
			map[string]any{"name": "envoy", "image": "public.ecr.aws/appmesh/aws-appmesh-envoy:v1.29.4.0-prod", "essential": true, "cpu": 0},
		},
		"registeredAt": 1.7e9, "registeredBy": "arn:aws:iam::123456789012:role/admin",
	}
}

type fixture struct {
	d      *ecstest.Double
	tgt    *ecs.Target
	log    *logLines
	prev   string // the image the service runs, api:5's
	prevTD string
}

// newFixture makes the double with service api on task definition api:5, owned by acme/api, with
// the circuit breaker's rollback on, and a target calling it with millisecond polls.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	d := ecstest.New(t)
	f := &fixture{d: d, log: &logLines{}, prev: img("v1"), prevTD: tdARN("api", 5)}
	d.AddTaskDef(taskDef("api", 5, f.prev), []any{map[string]any{"key": "team", "value": "core"}})
	d.AddService("api", f.prevTD, 2, "acme/api", true)
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	tgt, err := ecs.New(ecs.Config{PollMin: time.Millisecond, PollMax: 4 * time.Millisecond}, d.Client(), logger)
	if err != nil {
		t.Fatal(err)
	}
	f.tgt = tgt
	t.Cleanup(func() {
		if testing.Verbose() {
			t.Logf("deploy log:\n%s", f.log)
		}
	})
	return f
}

func (f *fixture) rollout(service, image string) deploy.Rollout {
	return deploy.Rollout{
		DeploymentID: 42, Repo: "acme/api", Service: "api", Environment: "production", Image: image,
		Previous: f.prev, PreviousID: 41,
		Destination: deploy.Destination{Service: "api", Environment: "production", Platform: deploy.PlatformECS,
			ECS: &deploy.ECSService{Cluster: ecstest.Cluster, Service: service, Container: "api"}},
	}
}

// logLines collects what the target writes to the deployment's log.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) log(stream, line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if stream != "deploy" {
		panic("stream " + stream)
	}
	l.lines = append(l.lines, line)
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func (l *logLines) count(sub string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range l.lines {
		if strings.Contains(line, sub) {
			n++
		}
	}
	return n
}

func wantLog(t *testing.T, l *logLines, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if l.count(s) == 0 {
			t.Errorf("the log has no line with %q:\n%s", s, l)
		}
	}
}

func wantCalls(t *testing.T, got, want map[string]int) {
	t.Helper()
	if !maps.Equal(got, want) {
		t.Errorf("API calls:\n got %v\nwant %v", got, want)
	}
}

func TestDeployCompletes(t *testing.T) {
	f := newFixture(t)
	f.d.Script("api", []ecstest.Step{
		ecstest.Progress(1, 1), ecstest.Say("(service api) has started 1 tasks: (task 1a2b)."), ecstest.Progress(2, 0), ecstest.Idle(), ecstest.Complete(),
	})
	image := img("v2")
	r := f.rollout("api", image)
	var waits deploytest.Waits
	r.Waiting = waits.Waiting
	if err := f.tgt.Deploy(t.Context(), r, f.log.log); err != nil {
		t.Fatalf("Deploy: %v\n%s", err, f.log)
	}
	if waited, resumed := waits.Counts(); waited != 1 || resumed != 1 {
		t.Errorf("following ECS: said it waits %d times and resumed %d times, want 1 and 1", waited, resumed)
	}
	s := f.d.Service("api")
	if s.TaskDef != tdARN("api", 6) {
		t.Errorf("service runs %s, want api:6", s.TaskDef)
	}
	if got := f.d.Registered[0]["containerDefinitions"].([]any)[0].(map[string]any)["image"]; got != image {
		t.Errorf("registered image %v, want %s", got, image)
	}
	wantLog(t, f.log,
		"registered task definition api:6: api:5 with "+repo+"@sha256:",
		"updating ECS service prod/api from api:5",
		"(primary): 1 running, 1 pending, 2 desired, IN_PROGRESS",
		"(primary): 2 running, 0 pending, 2 desired, IN_PROGRESS",
		"ECS: (service api) has started 1 tasks",
		"service deployment SUCCESSFUL",
		"ECS service prod/api runs api:6")
	if n := f.log.count("2 running, 0 pending, 2 desired, IN_PROGRESS"); n != 1 {
		t.Errorf("an unchanged state was logged %d times:\n%s", n, f.log)
	}
	// The handful: read the service, its tags and task definition, register, update. Then per
	// poll the service and its service deployment, and the stopped tasks when something changed
	// (the idle poll changed nothing).
	wantCalls(t, f.d.Take(), map[string]int{
		"DescribeServices": 1 + 5, "ListTagsForResource": 1, "DescribeTaskDefinition": 1,
		"RegisterTaskDefinition": 1, "UpdateService": 1, "DescribeServiceDeployments": 5, "ListTasks": 4,
	})
}

func TestCircuitBreakerRollsBack(t *testing.T) {
	const reason = "ECS deployment circuit breaker: tasks failed to start."
	for _, noSD := range []bool{false, true} {
		t.Run(fmt.Sprintf("service_deployments=%v", !noSD), func(t *testing.T) {
			f := newFixture(t)
			f.d.NoSD = noSD
			f.d.Script("api", []ecstest.Step{
				ecstest.Progress(0, 2),
				ecstest.StopTask("Essential container in task exited", 1, ""),
				ecstest.StopTask("Essential container in task exited", 137, "OutOfMemoryError: Container killed due to memory usage"),
				ecstest.CircuitBreaker(reason), ecstest.Idle(), ecstest.RolledBack(reason),
			})
			err := f.tgt.Deploy(t.Context(), f.rollout("api", img("v2")), f.log.log)
			if !errors.Is(err, deploy.ErrRolledBack) {
				t.Fatalf("Deploy: %v, want ErrRolledBack\n%s", err, f.log)
			}
			for _, want := range []string{"deploying " + img("v2"), reason, "exit code 137", "OutOfMemoryError"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if s := f.d.Service("api"); s.TaskDef != f.prevTD {
				t.Errorf("service runs %s, want %s", s.TaskDef, f.prevTD)
			}
			wantLog(t, f.log,
				"stopped: Essential container in task exited (EssentialContainerExited); container api: exit code 1",
				"container api: exit code 137, OutOfMemoryError",
				"ECS rolled the service back to api:5")
			if n := f.log.count("of api:6 stopped"); n != 2 {
				t.Errorf("%d stopped tasks logged, want 2:\n%s", n, f.log)
			}
			calls := f.d.Take()
			// ECS rolled back: Slipway did not update the service a second time.
			if calls["UpdateService"] != 1 || calls["DescribeTasks"] != 2 {
				t.Errorf("API calls %v: want 1 UpdateService and 2 DescribeTasks", calls)
			}
			if noSD {
				// Refused once, then the rollout state decides.
				if calls["DescribeServiceDeployments"] != 1 || calls["ListServiceDeployments"] != 0 {
					t.Errorf("API calls %v: want 1 DescribeServiceDeployments", calls)
				}
				wantLog(t, f.log, "following the deployment's rollout state", "ECS is rolling the service back to api:5")
			} else {
				wantLog(t, f.log, "service deployment ROLLBACK_IN_PROGRESS", "service deployment ROLLBACK_SUCCESSFUL")
			}
		})
	}
}

// Slipway's own deadline: Slipway puts the previous revision back, and the deployment fails
// (not rolled_back, which is ECS's verdict) with the reason.
func TestDeadlineRollsBack(t *testing.T) {
	f := newFixture(t)
	// The rollout never finishes; the deadline passes at the third read.
	f.d.Script("api", []ecstest.Step{ecstest.Progress(1, 1)})
	stage := fmt.Errorf("the deploy stage did not finish within 15m0s (stages.deploy_timeout): %w", context.DeadlineExceeded)
	ctx, cancel := context.WithCancelCause(t.Context())
	defer cancel(nil)
	f.d.OnPoll = func(n int) {
		if n == 3 {
			cancel(stage)
		}
	}
	err := f.tgt.Deploy(ctx, f.rollout("api", img("v2")), f.log.log)
	if errors.Is(err, deploy.ErrRolledBack) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Deploy: %v, want the deadline and not ErrRolledBack\n%s", err, f.log)
	}
	for _, want := range []string{"stages.deploy_timeout", "of api:6 was IN_PROGRESS: 1 running, 1 pending, 2 desired",
		"Slipway rolled ECS service prod/api back to api:5"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if s := f.d.Service("api"); s.TaskDef != f.prevTD {
		t.Errorf("service runs %s, want %s", s.TaskDef, f.prevTD)
	}
	wantLog(t, f.log, "rolling ECS service prod/api back to api:5", "ECS service prod/api is back on api:5")
	calls := f.d.Take()
	if calls["UpdateService"] != 2 || calls["RegisterTaskDefinition"] != 1 {
		t.Errorf("API calls %v: want 2 UpdateService (the deploy, Slipway's rollback), 1 RegisterTaskDefinition", calls)
	}
}

func TestLostClaimDuringRollbackLeavesService(t *testing.T) {
	f := newFixture(t)
	f.d.Script("api", []ecstest.Step{ecstest.Progress(1, 1)})
	ctx, cancel := context.WithCancelCause(t.Context())
	defer cancel(nil)
	lost := errors.New("lease lost")
	var held sync.Mutex
	var heldErr error
	f.d.OnPoll = func(n int) {
		if n == 2 {
			held.Lock()
			heldErr = lost
			held.Unlock()
			cancel(lost)
		}
	}
	r := f.rollout("api", img("v2"))
	r.Held = func() error { held.Lock(); defer held.Unlock(); return heldErr }
	err := f.tgt.Deploy(ctx, r, f.log.log)
	if !errors.Is(err, lost) || errors.Is(err, deploy.ErrRolledBack) || !strings.Contains(err.Error(), "left as it is") {
		t.Fatalf("Deploy: %v, want the lost lease, the service left as it is\n%s", err, f.log)
	}
	if calls := f.d.Take(); calls["UpdateService"] != 1 {
		t.Errorf("API calls %v: a worker without its claim updated the service", calls)
	}
}

func TestThrottlingIsAbsorbed(t *testing.T) {
	f := newFixture(t)
	f.d.Throttle = map[string]int{
		"DescribeServices": 2, "ListTagsForResource": 1, "DescribeTaskDefinition": 1, "RegisterTaskDefinition": 1,
		"UpdateService": 1, "DescribeServiceDeployments": 2, "ListTasks": 1,
	}
	f.d.Script("api", []ecstest.Step{ecstest.Progress(2, 0), ecstest.Complete()})
	if err := f.tgt.Deploy(t.Context(), f.rollout("api", img("v2")), f.log.log); err != nil {
		t.Fatalf("Deploy: %v\n%s", err, f.log)
	}
	if f.d.Throttled != 9 {
		t.Errorf("%d requests throttled, want 9", f.d.Throttled)
	}
	// Every throttled request was sent again by the SDK's retryer: its retries are the extra calls.
	wantCalls(t, f.d.Take(), map[string]int{
		"DescribeServices": 1 + 2 + 2, "ListTagsForResource": 1 + 1, "DescribeTaskDefinition": 1 + 1,
		"RegisterTaskDefinition": 1 + 1, "UpdateService": 1 + 1, "DescribeServiceDeployments": 2 + 2, "ListTasks": 2 + 1,
	})
	if f.log.count("trying again") != 0 {
		t.Errorf("throttling reached the target:\n%s", f.log)
	}
}

func TestUnknownContainer(t *testing.T) {
	f := newFixture(t)
	r := f.rollout("api", img("v2"))
	r.Destination.ECS.Container = "web"
	err := f.tgt.Deploy(t.Context(), r, f.log.log)
	if err == nil || !strings.Contains(err.Error(), `task definition api:5 has no container "web" (its containers: api, envoy)`) {
		t.Fatalf("Deploy: %v, want a clear error naming the containers", err)
	}
	if errors.Is(err, deploy.ErrRolledBack) {
		t.Errorf("nothing was changed, yet the error says rolled back: %v", err)
	}
	wantCalls(t, f.d.Take(), map[string]int{"DescribeServices": 1, "ListTagsForResource": 1, "DescribeTaskDefinition": 1})
}

func TestMissingService(t *testing.T) {
	f := newFixture(t)
	err := f.tgt.Deploy(t.Context(), f.rollout("nope", img("v2")), f.log.log)
	if err == nil || !strings.Contains(err.Error(), "ECS service prod/nope does not exist") {
		t.Fatalf("Deploy: %v, want the service named as missing", err)
	}
}

func TestFailedWithoutECSRollback(t *testing.T) {
	// The circuit breaker fails the deployment but does not roll back: Slipway does.
	const reason = "ECS deployment circuit breaker: tasks failed to start."
	f := newFixture(t)
	f.d.Services["api"].CBRollback = false
	f.d.NoSD = true
	f.d.Script("api", []ecstest.Step{ecstest.Progress(0, 2), ecstest.Failed(reason)})
	err := f.tgt.Deploy(t.Context(), f.rollout("api", img("v2")), f.log.log)
	if !errors.Is(err, deploy.ErrRolledBack) || !strings.Contains(err.Error(), "ECS failed the deployment: "+reason) {
		t.Fatalf("Deploy: %v, want ErrRolledBack with ECS's reason\n%s", err, f.log)
	}
	if s := f.d.Service("api"); s.TaskDef != f.prevTD {
		t.Errorf("service runs %s, want %s", s.TaskDef, f.prevTD)
	}
	wantLog(t, f.log, "rolling ECS service prod/api back to api:5", "is back on api:5")
}

func TestFindsServiceDeployment(t *testing.T) {
	// UpdateService's answer does not name the service deployment: ListServiceDeployments does.
	f := newFixture(t)
	f.d.QuietUpdate = true
	f.d.Script("api", []ecstest.Step{ecstest.Progress(1, 1), ecstest.Complete()})
	if err := f.tgt.Deploy(t.Context(), f.rollout("api", img("v2")), f.log.log); err != nil {
		t.Fatalf("Deploy: %v\n%s", err, f.log)
	}
	calls := f.d.Take()
	if calls["ListServiceDeployments"] != 1 || calls["DescribeServiceDeployments"] != 2 {
		t.Errorf("API calls %v: want the service deployment found once and described at each poll", calls)
	}
	wantLog(t, f.log, "service deployment SUCCESSFUL")
}

func TestSharedRevision(t *testing.T) {
	// Two services of one push on the same task definition and container get one revision.
	f := newFixture(t)
	f.d.AddService("api-worker", f.prevTD, 1, "acme/api", true)
	image := img("v2")
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, name := range []string{"api", "api-worker"} {
		wg.Go(func() { errs[i] = f.tgt.Deploy(t.Context(), f.rollout(name, image), (&logLines{}).log) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := len(f.d.Registered); n != 1 {
		t.Errorf("%d revisions registered, want 1", n)
	}
	for _, name := range []string{"api", "api-worker"} {
		if s := f.d.Service(name); s.TaskDef != tdARN("api", 6) {
			t.Errorf("%s runs %s, want api:6", name, s.TaskDef)
		}
	}
	// Another image is another revision.
	if err := f.tgt.Deploy(t.Context(), f.rollout("api", img("v3")), f.log.log); err != nil {
		t.Fatal(err)
	}
	if n := len(f.d.Registered); n != 2 {
		t.Errorf("%d revisions registered, want 2", n)
	}
}

func TestOwnership(t *testing.T) {
	t.Run("another repository's", func(t *testing.T) {
		f := newFixture(t)
		f.d.Services["api"].Tags = []any{map[string]any{"key": "dev.slipway.repo", "value": "acme/other"}}
		r := f.rollout("api", img("v2"))
		r.Adopt = true
		err := f.tgt.Deploy(t.Context(), r, f.log.log)
		if err == nil || !strings.Contains(err.Error(), "belongs to repository acme/other") {
			t.Fatalf("Deploy: %v, want refused", err)
		}
		wantCalls(t, f.d.Take(), map[string]int{"DescribeServices": 1, "ListTagsForResource": 1})
	})
	t.Run("not Slipway's", func(t *testing.T) {
		f := newFixture(t)
		f.d.Services["api"].Tags = nil
		err := f.tgt.Deploy(t.Context(), f.rollout("api", img("v2")), f.log.log)
		if err == nil || !strings.Contains(err.Error(), "policy.adopt") {
			t.Fatalf("Deploy: %v, want refused", err)
		}
	})
	t.Run("adopted", func(t *testing.T) {
		f := newFixture(t)
		f.d.Services["api"].Tags = nil
		r := f.rollout("api", img("v2"))
		r.Repo, r.Adopt = "Acme/API", true
		if err := f.tgt.Deploy(t.Context(), r, f.log.log); err != nil {
			t.Fatal(err)
		}
		tags := f.d.Service("api").Tags
		if len(tags) != 1 || tags[0].(map[string]any)["value"] != "acme/api" {
			t.Errorf("tags %v, want dev.slipway.repo=acme/api", tags)
		}
		if calls := f.d.Take(); calls["TagResource"] != 1 {
			t.Errorf("API calls %v: want one TagResource", calls)
		}
	})
}

func TestLostClaimChangesNothing(t *testing.T) {
	f := newFixture(t)
	r := f.rollout("api", img("v2"))
	r.Held = func() error { return errors.New("lease lost") }
	err := f.tgt.Deploy(t.Context(), r, f.log.log)
	if err == nil || !strings.Contains(err.Error(), "lease lost") {
		t.Fatalf("Deploy: %v, want the lost lease", err)
	}
	wantCalls(t, f.d.Take(), map[string]int{"DescribeServices": 1, "ListTagsForResource": 1, "DescribeTaskDefinition": 1})
}

func TestRollback(t *testing.T) {
	f := newFixture(t)
	f.d.Script("api", []ecstest.Step{ecstest.Progress(0, 2), ecstest.CircuitBreaker("tasks failed to start"), ecstest.RolledBack("tasks failed to start")})
	err := f.tgt.Rollback(t.Context(), f.rollout("api", img("v0")), f.log.log)
	if err == nil || errors.Is(err, deploy.ErrRolledBack) || !strings.HasPrefix(err.Error(), "rolling back to "+img("v0")) ||
		!strings.Contains(err.Error(), "what ran before is running again") {
		t.Fatalf("Rollback: %v, want a rollback error saying what runs", err)
	}
	if err := f.tgt.Rollback(t.Context(), f.rollout("api", img("v0")), f.log.log); err != nil {
		t.Fatalf("Rollback: %v", err)
	}
	if s := f.d.Service("api"); s.TaskDef != tdARN("api", 6) {
		t.Errorf("service runs %s, want api:6 (registered for v0 once)", s.TaskDef)
	}
}

func TestRestore(t *testing.T) {
	t.Run("live version runs", func(t *testing.T) {
		f := newFixture(t)
		if err := f.tgt.Restore(t.Context(), f.rollout("api", ""), f.log.log); err != nil {
			t.Fatal(err)
		}
		wantLog(t, f.log, "runs api:5 ("+repo+"@sha256:")
		wantCalls(t, f.d.Take(), map[string]int{"DescribeServices": 1, "ListTagsForResource": 1, "DescribeTaskDefinition": 1})
	})
	t.Run("interrupted attempt left its revision", func(t *testing.T) {
		f := newFixture(t)
		// An earlier attempt registered api:6 with v2, updated the service and died.
		f.d.AddTaskDef(taskDef("api", 6, img("v2")), nil)
		f.d.Mu.Lock()
		f.d.Deploy(f.d.Services["api"], tdARN("api", 6))
		f.d.Services["api"].Run.Steps = []ecstest.Step{ecstest.Progress(1, 0)}
		f.d.Mu.Unlock()
		f.d.Script("api", []ecstest.Step{ecstest.Complete()})
		if err := f.tgt.Restore(t.Context(), f.rollout("api", ""), f.log.log); err != nil {
			t.Fatalf("Restore: %v\n%s", err, f.log)
		}
		s := f.d.Service("api")
		if s.TaskDef != tdARN("api", 7) {
			t.Fatalf("service runs %s, want api:7", s.TaskDef)
		}
		if got := f.d.Registered[0]["containerDefinitions"].([]any)[0].(map[string]any)["image"]; got != f.prev {
			t.Errorf("restored image %v, want %s", got, f.prev)
		}
	})
	t.Run("nothing live", func(t *testing.T) {
		f := newFixture(t)
		r := f.rollout("api", "")
		r.Previous = ""
		if err := f.tgt.Restore(t.Context(), r, f.log.log); err != nil {
			t.Fatal(err)
		}
		wantCalls(t, f.d.Take(), map[string]int{})
	})
}

func TestNewChecksConfig(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	d := ecstest.New(t)
	if _, err := ecs.New(ecs.Config{PollMin: time.Minute, PollMax: time.Second}, d.Client(), logger); err == nil {
		t.Error("New accepted PollMax < PollMin")
	}
	if _, err := ecs.New(ecs.Config{RestoreTimeout: -time.Second}, d.Client(), logger); err == nil {
		t.Error("New accepted a negative RestoreTimeout")
	}
	if _, err := ecs.New(ecs.Config{}, nil, logger); err == nil {
		t.Error("New accepted no API")
	}
}

func TestDeadlineWhileECSRollsBack(t *testing.T) {
	// The deadline passes while ECS's circuit breaker rolls back: Slipway waits for ECS's
	// rollback instead of starting its own.
	const reason = "ECS deployment circuit breaker: tasks failed to start."
	f := newFixture(t)
	f.d.Script("api", []ecstest.Step{ecstest.Progress(0, 2), ecstest.CircuitBreaker(reason), ecstest.Idle(), ecstest.Idle(), ecstest.RolledBack(reason)})
	ctx, cancel := context.WithCancelCause(t.Context())
	defer cancel(nil)
	f.d.OnPoll = func(n int) {
		if n == 2 {
			cancel(context.DeadlineExceeded)
		}
	}
	err := f.tgt.Deploy(ctx, f.rollout("api", img("v2")), f.log.log)
	if !errors.Is(err, deploy.ErrRolledBack) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Deploy: %v, want ErrRolledBack and the deadline\n%s", err, f.log)
	}
	if s := f.d.Service("api"); s.TaskDef != f.prevTD {
		t.Errorf("service runs %s, want %s", s.TaskDef, f.prevTD)
	}
	wantLog(t, f.log, "ECS is rolling the service back to api:5: waiting for it", "is back on api:5")
	if calls := f.d.Take(); calls["UpdateService"] != 1 {
		t.Errorf("API calls %v: Slipway updated the service while ECS rolled it back", calls)
	}
}

func TestECSRollbackFails(t *testing.T) {
	f := newFixture(t)
	f.d.Script("api", []ecstest.Step{ecstest.CircuitBreaker("tasks failed to start"), ecstest.RollbackFailed("tasks failed to start")})
	err := f.tgt.Deploy(t.Context(), f.rollout("api", img("v2")), f.log.log)
	if err == nil || errors.Is(err, deploy.ErrRolledBack) || !strings.Contains(err.Error(), "ECS's rollback of the deployment failed as well") ||
		!strings.Contains(err.Error(), "needs attention") {
		t.Fatalf("Deploy: %v, want ECS's failed rollback, not rolled back", err)
	}
	if calls := f.d.Take(); calls["UpdateService"] != 1 {
		t.Errorf("API calls %v: Slipway updated the service after ECS's rollback failed", calls)
	}
}

func TestReadFailures(t *testing.T) {
	t.Run("one poll fails", func(t *testing.T) {
		// Three throttled attempts in a row exhaust the SDK's retries for one poll: the next
		// poll reads again.
		f := newFixture(t)
		f.d.Script("api", []ecstest.Step{ecstest.ThrottleNext("DescribeServices", 3), ecstest.Progress(2, 0), ecstest.Complete()})
		if err := f.tgt.Deploy(t.Context(), f.rollout("api", img("v2")), f.log.log); err != nil {
			t.Fatalf("Deploy: %v\n%s", err, f.log)
		}
		wantLog(t, f.log, "ThrottlingException", "trying again")
	})
	t.Run("reads keep failing", func(t *testing.T) {
		f := newFixture(t)
		f.d.Script("api", []ecstest.Step{ecstest.ThrottleNext("DescribeServices", 9)})
		err := f.tgt.Deploy(t.Context(), f.rollout("api", img("v2")), f.log.log)
		if !errors.Is(err, deploy.ErrRolledBack) || !strings.Contains(err.Error(), "following ECS service prod/api") {
			t.Fatalf("Deploy: %v, want the read failure and Slipway's rollback\n%s", err, f.log)
		}
		if s := f.d.Service("api"); s.TaskDef != f.prevTD {
			t.Errorf("service runs %s, want %s", s.TaskDef, f.prevTD)
		}
	})
}

func TestRetryAfterInterruptedAttempt(t *testing.T) {
	// An earlier attempt registered api:6 with v2 and updated the service; its rollout never
	// finishes. The retry follows it, and on the deadline puts back v1, the image recorded live.
	f := newFixture(t)
	f.d.AddTaskDef(taskDef("api", 6, img("v2")), nil)
	f.d.Mu.Lock()
	f.d.Deploy(f.d.Services["api"], tdARN("api", 6))
	f.d.Services["api"].Run.Steps = []ecstest.Step{ecstest.Progress(1, 1)}
	f.d.Mu.Unlock()
	ctx, cancel := context.WithCancelCause(t.Context())
	defer cancel(nil)
	f.d.OnPoll = func(n int) {
		if n == 3 {
			cancel(context.DeadlineExceeded)
		}
	}
	err := f.tgt.Deploy(ctx, f.rollout("api", img("v2")), f.log.log)
	if errors.Is(err, deploy.ErrRolledBack) || !strings.Contains(err.Error(), "Slipway rolled ECS service prod/api back to api:7") {
		t.Fatalf("Deploy: %v, want a failure (Slipway's deadline) saying v1 runs again\n%s", err, f.log)
	}
	s := f.d.Service("api")
	if s.TaskDef != tdARN("api", 7) {
		t.Fatalf("service runs %s, want api:7", s.TaskDef)
	}
	if got := f.d.Registered[0]["containerDefinitions"].([]any)[0].(map[string]any)["image"]; got != f.prev {
		t.Errorf("rolled back to image %v, want %s", got, f.prev)
	}
	if calls := f.d.Take(); calls["RegisterTaskDefinition"] != 1 || calls["UpdateService"] != 2 {
		t.Errorf("API calls %v: want 1 RegisterTaskDefinition (v1's), 2 UpdateService", calls)
	}
}
