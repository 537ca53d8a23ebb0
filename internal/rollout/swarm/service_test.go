package swarm

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/slipway-dev/slipway/internal/deploy"
)

const (
	d1 = "@sha256:1111111111111111111111111111111111111111111111111111111111111111"
	d2 = "@sha256:2222222222222222222222222222222222222222222222222222222222222222"
)

func TestSameImage(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"reg:5000/api" + d1, "reg:5000/api" + d1, true},
		{"reg:5000/api:v3" + d1, "reg:5000/api" + d1, true},
		{"reg:5000/api" + d1, "reg:5000/api" + d2, false},
		{"reg:5000/api" + d1, "reg:5000/web" + d1, false},
		{"reg:5000/api" + d1, "reg:5001/api" + d1, false},
		{"busybox:latest", "busybox:latest", true},
		{"busybox:latest", "busybox" + d1, false},
	}
	for _, tt := range tests {
		if got := deploy.SameImage(tt.a, tt.b); got != tt.want {
			t.Errorf("deploy.SameImage(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestShortImage(t *testing.T) {
	tests := []struct{ in, want string }{
		{"reg:5000/api" + d1, "reg:5000/api@sha256:111111111111"},
		{"busybox:latest", "busybox:latest"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := deploy.ShortImage(tt.in); got != tt.want {
			t.Errorf("deploy.ShortImage(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestUpdateSpec(t *testing.T) {
	monitor := 1500 * time.Millisecond
	// What the docker CLI's flags set: --update-failure-action rollback, --update-monitor,
	// --rollback-monitor, --update-order stop-first.
	tests := []struct {
		name           string
		update         *swarm.UpdateConfig
		rollback       *swarm.UpdateConfig
		wantUpdate     swarm.UpdateConfig
		wantRollback   swarm.UpdateConfig
		forceUpdateWas uint64
	}{
		{
			name:         "no update settings: Swarm's defaults, not Parallelism 0",
			wantUpdate:   swarm.UpdateConfig{Parallelism: 1, FailureAction: "rollback", Monitor: monitor, Order: "stop-first"},
			wantRollback: swarm.UpdateConfig{Parallelism: 1, FailureAction: "pause", Monitor: monitor, Order: "stop-first"},
		},
		{
			name:           "the service's own settings stay",
			update:         &swarm.UpdateConfig{Parallelism: 3, Delay: time.Second, FailureAction: "pause", Monitor: time.Minute, MaxFailureRatio: 0.5, Order: "start-first"},
			rollback:       &swarm.UpdateConfig{Parallelism: 2, FailureAction: "continue", Monitor: time.Minute, Order: "start-first"},
			wantUpdate:     swarm.UpdateConfig{Parallelism: 3, Delay: time.Second, FailureAction: "rollback", Monitor: monitor, MaxFailureRatio: 0.5, Order: "stop-first"},
			wantRollback:   swarm.UpdateConfig{Parallelism: 2, FailureAction: "continue", Monitor: monitor, Order: "start-first"},
			forceUpdateWas: 7,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := swarm.ServiceSpec{
				Annotations:    swarm.Annotations{Name: "api"},
				TaskTemplate:   swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "reg/api" + d1, Args: []string{"serve"}}, ForceUpdate: tt.forceUpdateWas},
				UpdateConfig:   tt.update,
				RollbackConfig: tt.rollback,
			}
			was := deepCopy(t, spec)
			got, err := updateSpec(spec, "reg/api"+d2, "acme/app", monitor)
			if err != nil {
				t.Fatal(err)
			}
			if img := got.TaskTemplate.ContainerSpec.Image; img != "reg/api"+d2 {
				t.Errorf("image = %s", img)
			}
			if !slices.Equal(got.TaskTemplate.ContainerSpec.Args, []string{"serve"}) || got.TaskTemplate.ForceUpdate != tt.forceUpdateWas {
				t.Errorf("the rest of the task template changed: %+v", got.TaskTemplate)
			}
			if *got.UpdateConfig != tt.wantUpdate {
				t.Errorf("UpdateConfig:\n got %+v\nwant %+v", *got.UpdateConfig, tt.wantUpdate)
			}
			if *got.RollbackConfig != tt.wantRollback {
				t.Errorf("RollbackConfig:\n got %+v\nwant %+v", *got.RollbackConfig, tt.wantRollback)
			}
			// The spec read before the update stays as it was: abort and the log compare with it.
			if !reflect.DeepEqual(spec, was) {
				t.Errorf("updateSpec changed its argument:\n got %+v\nwant %+v", spec, was)
			}
		})
	}
	if _, err := updateSpec(swarm.ServiceSpec{}, "reg/api"+d2, "acme/app", monitor); err == nil {
		t.Error("a service without a container spec: no error")
	}
}

func deepCopy(t *testing.T, spec swarm.ServiceSpec) swarm.ServiceSpec {
	t.Helper()
	c := spec
	cs := *spec.TaskTemplate.ContainerSpec
	c.TaskTemplate.ContainerSpec = &cs
	if spec.UpdateConfig != nil {
		u := *spec.UpdateConfig
		c.UpdateConfig = &u
	}
	if spec.RollbackConfig != nil {
		r := *spec.RollbackConfig
		c.RollbackConfig = &r
	}
	return c
}

func TestCheckRollout(t *testing.T) {
	good := "127.0.0.1:5000/api" + d1
	swarmTarget := func(service, image string) deploy.Rollout {
		return deploy.Rollout{Image: image, Destination: deploy.Destination{Platform: deploy.PlatformSwarm, Swarm: &deploy.SwarmService{Service: service}}}
	}
	tests := []struct {
		name    string
		r       deploy.Rollout
		wantErr string
	}{
		{name: "ok", r: swarmTarget("api", good)},
		{name: "not swarm", r: deploy.Rollout{Image: good, Destination: deploy.Destination{Platform: "docker", Docker: &deploy.Container{Container: "x"}}}, wantErr: "not a swarm target"},
		{name: "name like a flag", r: swarmTarget("--force", good), wantErr: "invalid swarm service name"},
		{name: "tag only", r: swarmTarget("api", "127.0.0.1:5000/api:latest"), wantErr: "not pinned by digest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := checkRollout(tt.r)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestFinal(t *testing.T) {
	tests := []struct {
		state swarm.UpdateState
		want  bool
	}{
		{"", false}, // no update yet: over decides from the tasks
		{swarm.UpdateStateUpdating, false},
		{swarm.UpdateStateRollbackStarted, false},
		{swarm.UpdateStateCompleted, true},
		{swarm.UpdateStatePaused, true},
		{swarm.UpdateStateRollbackCompleted, true},
		{swarm.UpdateStateRollbackPaused, true},
	}
	for _, tt := range tests {
		if got := final(tt.state); got != tt.want {
			t.Errorf("final(%q) = %v, want %v", tt.state, got, tt.want)
		}
	}
}

func TestTaskErr(t *testing.T) {
	tests := []struct {
		name   string
		status swarm.TaskStatus
		want   string
	}{
		{"running", swarm.TaskStatus{State: swarm.TaskStateRunning}, ""},
		{"stopped by an update", swarm.TaskStatus{State: swarm.TaskStateShutdown, ContainerStatus: &swarm.ContainerStatus{ExitCode: 137}}, ""},
		{"Swarm's error", swarm.TaskStatus{State: swarm.TaskStateFailed, Err: "task: non-zero exit (3)", ContainerStatus: &swarm.ContainerStatus{ExitCode: 3}}, "task: non-zero exit (3)"},
		{"exit code only", swarm.TaskStatus{State: swarm.TaskStateFailed, ContainerStatus: &swarm.ContainerStatus{ExitCode: 2}}, "exit code 2"},
		{"rejected", swarm.TaskStatus{State: swarm.TaskStateRejected, Message: "no suitable node"}, "no suitable node"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := taskErr(swarm.Task{Status: tt.status}); got != tt.want {
				t.Errorf("taskErr = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestProgress(t *testing.T) {
	var lines []string
	log := func(_, line string) { lines = append(lines, line) }
	two := uint64(2)
	svc := swarm.Service{Spec: swarm.ServiceSpec{Annotations: swarm.Annotations{Name: "api"},
		Mode: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &two}}}}
	task := func(id string, slot int, state swarm.TaskState, image, err string) swarm.Task {
		// Tasks are created in the order of their IDs.
		created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).Add(time.Duration(id[0]) * time.Second)
		return swarm.Task{ID: id, Meta: swarm.Meta{CreatedAt: created}, Slot: slot, Status: swarm.TaskStatus{State: state, Err: err},
			Spec: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: image}}}
	}
	oldImg, newImg := "reg/api"+d1, "reg/api"+d2
	p := newProgress(svc, log)
	p.seed([]swarm.Task{task("a", 1, swarm.TaskStateRunning, oldImg, ""), task("b", 2, swarm.TaskStateRunning, oldImg, "")})

	steps := []struct {
		tasks []swarm.Task
		want  []string
	}{
		{ // nothing changed since the seed
			tasks: []swarm.Task{task("b", 2, swarm.TaskStateRunning, oldImg, ""), task("a", 1, swarm.TaskStateRunning, oldImg, "")},
		},
		{
			tasks: []swarm.Task{task("c", 1, swarm.TaskStatePreparing, newImg, ""), task("a", 1, swarm.TaskStateShutdown, oldImg, "")},
			want:  []string{"task 1/2 shutdown reg/api@sha256:111111111111", "task 1/2 preparing reg/api@sha256:222222222222"},
		},
		{ // the same again: no line
			tasks: []swarm.Task{task("c", 1, swarm.TaskStatePreparing, newImg, ""), task("a", 1, swarm.TaskStateShutdown, oldImg, "")},
		},
		{
			tasks: []swarm.Task{task("c", 1, swarm.TaskStateFailed, newImg, "task: non-zero exit (3)")},
			want:  []string{"task 1/2 failed reg/api@sha256:222222222222: task: non-zero exit (3)"},
		},
	}
	for i, step := range steps {
		lines = nil
		p.report(step.tasks)
		if !slices.Equal(lines, step.want) {
			t.Errorf("step %d:\n got %q\nwant %q", i, lines, step.want)
		}
	}

	lines = nil
	updating := swarm.Service{Spec: svc.Spec, UpdateStatus: &swarm.UpdateStatus{State: swarm.UpdateStateUpdating, Message: "update in progress"}}
	p.status(updating)
	p.status(updating)
	p.status(svc) // none: a spec change cleared it
	want := []string{"swarm service api: update in progress (updating)"}
	if !slices.Equal(lines, want) {
		t.Errorf("status lines:\n got %q\nwant %q", lines, want)
	}
}

func TestLineWriter(t *testing.T) {
	var lines []string
	w := &lineWriter{line: func(l string) { lines = append(lines, l) }}
	for _, chunk := range []string{"cannot ", "read config\r\nsecond\n", "", "last, no newline"} {
		if _, err := w.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	w.flush()
	want := []string{"cannot read config", "second", "last, no newline"}
	if !slices.Equal(lines, want) {
		t.Errorf("lines = %q, want %q", lines, want)
	}
}

// TestNoDockerCLI keeps the target on the Engine API: a docker process costs a tenth of a CPU
// second where an API call costs next to nothing. Only the name and reference checks of dockercli
// may be used, and nothing that starts a process.
func TestNoDockerCLI(t *testing.T) {
	allowed := map[string]bool{"CheckPinned": true, "CheckName": true, "CheckDurations": true}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	parsed := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		parsed++
		cli := ""
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			switch {
			case path == "os/exec", path == "syscall":
				t.Errorf("%s imports %s", name, path)
			case strings.HasSuffix(path, "/internal/dockercli"):
				cli = "dockercli"
				if imp.Name != nil {
					cli = imp.Name.Name
				}
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			switch id, _ := sel.X.(*ast.Ident); {
			case id == nil:
			case cli != "" && id.Name == cli && !allowed[sel.Sel.Name]:
				t.Errorf("%s: uses dockercli.%s", fset.Position(n.Pos()), sel.Sel.Name)
			case id.Name == "os" && sel.Sel.Name == "StartProcess":
				t.Errorf("%s: starts a process", fset.Position(n.Pos()))
			}
			return true
		})
	}
	if parsed == 0 {
		t.Fatal("no source file to check")
	}
}
