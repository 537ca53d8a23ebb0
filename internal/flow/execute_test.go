package flow_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/deploy/deploytest"
	"github.com/slipway-dev/slipway/internal/flow"
	"github.com/slipway-dev/slipway/internal/queue"
	"github.com/slipway-dev/slipway/internal/source"
	"github.com/slipway-dev/slipway/internal/store"
)

const (
	execImage   = "registry.example.com/acme/api"
	execSHA     = "1111111111111111111111111111111111111111"
	liveSHA     = "2222222222222222222222222222222222222222"
	liveDigest  = "sha256:11fe000000000000000000000000000000000000000000000000000000000000"
	inputsHash  = "0123456789abcdef01234567"
	contentRef  = execImage + ":in-" + inputsHash
	commitRef   = execImage + ":" + execSHA
	contentPush = "sha256:c0ffee0000000000000000000000000000000000000000000000000000000000"
)

// execFixture is one deployment (42, of run 7) about to be handled by an Executor whose every
// dependency is a fake; live (40, of run 5) is what succeeded last at the same place.
type execFixture struct {
	st       *fakeStore
	src      *fakeSource
	builder  *deploytest.Builder
	registry *deploytest.Registry
	target   *deploytest.Target
	targets  map[string]deploy.Target
	hashErr  error
	policy   flow.PolicyFunc

	run     deploy.Run
	d       deploy.Deployment
	live    deploy.Deployment
	hasLive bool
	others  []deploy.Deployment // more deployments in the store
	attempt int

	ctx    context.Context
	cancel context.CancelFunc
}

func newExecFixture(t *testing.T) *execFixture {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	f := &execFixture{
		st: newFakeStore(), src: newFakeSource(t),
		builder: &deploytest.Builder{}, registry: &deploytest.Registry{}, target: &deploytest.Target{},
		run: deploy.Run{ID: 7, Repo: "acme/app", CloneURL: "https://github.com/acme/app.git", AfterSHA: execSHA},
		d: deploy.Deployment{ID: 42, RunID: 7, Repo: "acme/app", Service: "api", Environment: "production",
			Platform: deploy.PlatformDocker, CommitSHA: execSHA, Status: deploy.StatusBuilding, Attempt: 1, MaxAttempts: 3,
			Spec: deploy.Spec{
				Build: deploy.Build{Image: execImage, Dockerfile: "Dockerfile", Context: ".", BuildArgs: map[string]string{"GO": "1.26"}},
				Destination: deploy.Destination{Service: "api", Environment: "production", Platform: deploy.PlatformDocker,
					Docker: &deploy.Container{Container: "api", Ports: []string{"8080:8080"}}},
			}},
		live: deploy.Deployment{ID: 40, RunID: 5, Repo: "acme/app", Service: "api", Environment: "production",
			Platform: deploy.PlatformDocker, CommitSHA: liveSHA, Status: deploy.StatusSucceeded,
			ImageRef: execImage + ":" + liveSHA, ImageDigest: liveDigest,
			Spec: deploy.Spec{
				Build: deploy.Build{Image: execImage, Dockerfile: "Dockerfile", Context: "."},
				// Another container name: the previous version must run again as it ran.
				Destination: deploy.Destination{Service: "api", Environment: "production", Platform: deploy.PlatformDocker,
					Docker: &deploy.Container{Container: "api-old"}},
			}},
		hasLive: true,
		attempt: 1,
		ctx:     ctx, cancel: cancel,
	}
	f.registry.PushFunc = func(_ context.Context, ref string, _ deploy.LogFunc) (string, error) {
		if ref == contentRef {
			return contentPush, nil
		}
		return deploytest.DigestOf(ref), nil
	}
	f.targets = map[string]deploy.Target{deploy.PlatformDocker: f.target}
	return f
}

func (f *execFixture) job() queue.Job {
	return queue.Job{Claim: store.Claim{Kind: store.KindDeployment, ID: f.d.ID, Owner: "w", Attempt: f.attempt}}
}

// handle seeds the store and runs the Executor on the deployment as a worker would.
func (f *execFixture) handle() error {
	f.st.putRun(f.run)
	f.st.putDeployment(f.d)
	if f.hasLive {
		f.st.putDeployment(f.live)
	}
	for _, d := range f.others {
		f.st.putDeployment(d)
	}
	e := flow.NewExecutor(flow.ExecutorConfig{
		Policy: f.policy,
		Tokens: func(repo string) string { return "token-for-" + repo },
		InputsHash: func(deploy.BuildRequest) (string, error) {
			if f.hashErr != nil {
				return "", f.hashErr
			}
			return inputsHash, nil
		},
	}, f.st, f.src, f.builder, f.registry, f.targets, slog.New(slog.DiscardHandler))
	return e.Handle(f.ctx, f.job())
}

// calls returns the rollouts the target got for method.
func (f *execFixture) calls(method string) []deploy.Rollout {
	var rs []deploy.Rollout
	for _, c := range f.target.Calls() {
		if c.Method == method {
			rs = append(rs, c.Rollout)
		}
	}
	return rs
}

// wantRollout checks that the target got exactly one call, of method, asking for want; the fence
// it got must be the job's (set, and held).
func (f *execFixture) wantRollout(t *testing.T, method string, want deploy.Rollout) {
	t.Helper()
	calls := f.target.Calls()
	if len(calls) != 1 || calls[0].Method != method {
		t.Fatalf("target calls %v, want one %s", methods(calls), method)
	}
	got := calls[0].Rollout
	if got.Held == nil {
		t.Errorf("%s got no Held fence", method)
	} else if err := got.Held(); err != nil {
		t.Errorf("Held() = %v for a job without a lease", err)
	}
	got.Held = nil
	if (got.Record != nil) != (method != "Restore") {
		t.Errorf("%s got Record set: %v, want it set for a deploy or a rollback only", method, got.Record != nil)
	}
	got.Record = nil
	// A job's Waiting lends its worker slot out while the target waits.
	if got.Waiting == nil {
		t.Errorf("%s got no Waiting", method)
	}
	got.Waiting = nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s got\n %+v\nwant\n %+v", method, got, want)
	}
}

// previous is the rollout's view of the live deployment.
func (f *execFixture) previous(r deploy.Rollout) deploy.Rollout {
	r.Previous, r.PreviousID, r.PreviousDestination = execImage+"@"+liveDigest, f.live.ID, f.live.Spec.Destination
	return r
}

func (f *execFixture) rollout(image string) deploy.Rollout {
	return f.previous(deploy.Rollout{DeploymentID: f.d.ID, Repo: f.d.Repo, Service: f.d.Service,
		Environment: f.d.Environment, Image: image, Destination: f.d.Spec.Destination})
}

func methods(calls []deploytest.Call) []string {
	var ms []string
	for _, c := range calls {
		ms = append(ms, c.Method)
	}
	return ms
}

// finished returns the status err ends the deployment with: "" for success, "retry" for an error
// the queue retries.
func finished(err error) (status string, fe *queue.FinishError) {
	switch {
	case err == nil:
		return "", nil
	case errors.As(err, &fe):
		return fe.Status, fe
	}
	return "retry", nil
}

func wantFinish(t *testing.T, err error, status string, contains ...string) {
	t.Helper()
	got, fe := finished(err)
	if got != status {
		t.Fatalf("result %q (%v), want %q", got, err, status)
	}
	if fe == nil || fe.Err == nil {
		t.Fatalf("finished %q without a reason", status)
	}
	for _, s := range contains {
		if !strings.Contains(fe.Err.Error(), s) {
			t.Errorf("reason %q does not contain %q", fe.Err, s)
		}
	}
}

func wantStages(t *testing.T, st *fakeStore, want ...deploy.Status) {
	t.Helper()
	if got := st.stages(); !slices.Equal(got, want) {
		t.Errorf("stages %v, want %v", got, want)
	}
}

func wantNoTarget(t *testing.T, f *execFixture) {
	t.Helper()
	if calls := f.target.Calls(); len(calls) != 0 {
		t.Errorf("target called: %v", methods(calls))
	}
}

func wantNoBuild(t *testing.T, f *execFixture) {
	t.Helper()
	if n := len(f.builder.Requests()); n != 0 {
		t.Errorf("%d builds, want none", n)
	}
	if p := f.registry.Pushes(); len(p) != 0 {
		t.Errorf("pushed %v, want nothing", p)
	}
}

// executorCase is a deployment set up for the Executor, and what its handling must have done.
type executorCase struct {
	name  string
	setup func(f *execFixture) // changes to the fixture's deployment and fakes
	check func(t *testing.T, f *execFixture, err error)
}

func runExecutorCases(t *testing.T, cases []executorCase) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := newExecFixture(t)
			if c.setup != nil {
				c.setup(f)
			}
			c.check(t, f, f.handle())
		})
	}
}

func TestExecutor(t *testing.T) {
	buildErr := errors.New("step 3/7: RUN go build: exit status 1")
	cases := []executorCase{
		{"build, push, tag, deploy", nil, func(t *testing.T, f *execFixture, err error) {
			if err != nil {
				t.Fatalf("result %v, want success", err)
			}
			co := f.src.calls()
			wantRepo := source.Repo{FullName: "acme/app", CloneURL: "https://github.com/acme/app.git", Token: "token-for-acme/app"}
			if len(co) != 1 || co[0].SHA != execSHA || co[0].Repo != wantRepo {
				t.Fatalf("checkouts %+v, want one of %s from %+v", co, execSHA, wantRepo)
			}
			wantReq := deploy.BuildRequest{Dir: co[0].Dir, Context: ".", Dockerfile: "Dockerfile",
				BuildArgs: map[string]string{"GO": "1.26"}, Tags: []string{contentRef, commitRef},
				Labels: map[string]string{"org.opencontainers.image.revision": execSHA,
					"org.opencontainers.image.source": "acme/app", "dev.slipway.service": "api"}}
			if reqs := f.builder.Requests(); len(reqs) != 1 || !reflect.DeepEqual(reqs[0], wantReq) {
				t.Errorf("builds %+v, want one %+v", reqs, wantReq)
			}
			if got := f.registry.Lookups(); !slices.Equal(got, []string{contentRef}) {
				t.Errorf("registry asked for %v, want %s", got, contentRef)
			}
			if got := f.registry.Pushes(); !slices.Equal(got, []string{contentRef}) {
				t.Errorf("pushed %v, want %s only", got, contentRef)
			}
			if got := f.registry.Tags(); !slices.Equal(got, []string{commitRef + "@" + contentPush}) {
				t.Errorf("tagged %v, want %s at the pushed digest %s", got, commitRef, contentPush)
			}
			wantStages(t, f.st, deploy.StatusBuilding, deploy.StatusPushing, deploy.StatusDeploying)
			if !slices.Equal(f.st.writes, []string{"stage building", "stage pushing", "image", "stage deploying"}) {
				t.Errorf("writes %v: the image must be recorded before the deploying stage", f.st.writes)
			}
			for _, c := range f.st.claims {
				if c != f.job().Claim {
					t.Errorf("write under claim %+v, want the job's %+v", c, f.job().Claim)
				}
			}
			if len(f.st.images) != 1 || f.st.images[0].Ref != commitRef || f.st.images[0].Digest != contentPush ||
				f.st.images[0].Replaced == nil || *f.st.images[0].Replaced != f.live.ID {
				t.Errorf("images recorded %+v, want %s, %s replacing %d", f.st.images, commitRef, contentPush, f.live.ID)
			}
			f.wantRollout(t, deploytest.MethodDeploy, f.rollout(execImage+"@"+contentPush))
			if d := f.st.deployment(f.d.ID); !d.TargetTouched {
				t.Error("deployment not marked target touched")
			}
			if log := f.st.log(); !strings.Contains(log, "live: "+execImage+"@"+contentPush) {
				t.Errorf("log does not say what went live:\n%s", log)
			}
		}},
		{"registry holds an image of identical inputs: no build, no push", func(f *execFixture) {
			f.registry.DigestFunc = func(_ context.Context, ref string) (string, bool, error) {
				return "sha256:cached", ref == contentRef, nil
			}
		}, func(t *testing.T, f *execFixture, err error) {
			if err != nil {
				t.Fatalf("result %v, want success", err)
			}
			wantNoBuild(t, f)
			wantStages(t, f.st, deploy.StatusBuilding, deploy.StatusDeploying)
			if len(f.st.images) != 1 || f.st.images[0].Digest != "sha256:cached" || f.st.images[0].Ref != commitRef {
				t.Errorf("images recorded %+v, want %s at sha256:cached", f.st.images, commitRef)
			}
			if got := f.registry.Tags(); !slices.Equal(got, []string{commitRef + "@sha256:cached"}) {
				t.Errorf("tagged %v, want the commit's tag on the image found", got)
			}
			f.wantRollout(t, deploytest.MethodDeploy, f.rollout(execImage+"@sha256:cached"))
			if log := f.st.log(); !strings.Contains(log, "build skipped") {
				t.Errorf("log does not say the build was skipped:\n%s", log)
			}
		}},
		{"registry cannot be asked: builds anyway", func(f *execFixture) {
			f.registry.DigestFunc = func(context.Context, string) (string, bool, error) {
				return "", false, errors.New("registry unreachable")
			}
		}, func(t *testing.T, f *execFixture, err error) {
			if err != nil {
				t.Fatalf("result %v, want success", err)
			}
			if n := len(f.builder.Requests()); n != 1 {
				t.Errorf("%d builds, want 1", n)
			}
			f.wantRollout(t, deploytest.MethodDeploy, f.rollout(execImage+"@"+contentPush))
		}},
		{"image pushed by an earlier attempt: no checkout, no build", func(f *execFixture) {
			f.d.Attempt, f.attempt = 2, 2
			f.d.ImageRef, f.d.ImageDigest = commitRef, "sha256:earlier"
		}, func(t *testing.T, f *execFixture, err error) {
			if err != nil {
				t.Fatalf("result %v, want success", err)
			}
			if co := f.src.calls(); len(co) != 0 {
				t.Errorf("checked out %+v", co)
			}
			wantNoBuild(t, f)
			wantStages(t, f.st, deploy.StatusDeploying)
			if len(f.st.images) != 1 || f.st.images[0].Ref != commitRef || f.st.images[0].Digest != "sha256:earlier" {
				t.Errorf("images recorded %+v", f.st.images)
			}
			f.wantRollout(t, deploytest.MethodDeploy, f.rollout(execImage+"@sha256:earlier"))
		}},
		{"rollback: Target.Rollback, no build", func(f *execFixture) {
			f.d.Spec.RollbackOf = 31
			f.d.ImageRef, f.d.ImageDigest = "", "sha256:old"
		}, func(t *testing.T, f *execFixture, err error) {
			if err != nil {
				t.Fatalf("result %v, want success", err)
			}
			if co := f.src.calls(); len(co) != 0 {
				t.Errorf("checked out %+v", co)
			}
			wantNoBuild(t, f)
			wantStages(t, f.st, deploy.StatusDeploying)
			if len(f.st.images) != 1 || f.st.images[0].Ref != execImage+"@sha256:old" {
				t.Errorf("images recorded %+v, want ref %s@sha256:old", f.st.images, execImage)
			}
			f.wantRollout(t, deploytest.MethodRollback, f.rollout(execImage+"@sha256:old"))
		}},
		{"rollback fails: failed, not rolled_back", func(f *execFixture) {
			f.d.Spec.RollbackOf = 31
			f.d.ImageDigest = "sha256:old"
			f.target.RollbackFunc = func(_ context.Context, r deploy.Rollout, _ deploy.LogFunc) error {
				return deploy.RolloutError(true, r.Image, true, errors.New("unhealthy"))
			}
		}, func(t *testing.T, f *execFixture, err error) {
			wantFinish(t, err, "failed", "rollout failed", "unhealthy")
		}},
		{"first deployment there: nothing previous", func(f *execFixture) {
			f.hasLive = false
		}, func(t *testing.T, f *execFixture, err error) {
			if err != nil {
				t.Fatalf("result %v, want success", err)
			}
			if len(f.st.images) != 1 || f.st.images[0].Replaced != nil {
				t.Errorf("images recorded %+v, want one replacing nothing", f.st.images)
			}
			f.wantRollout(t, deploytest.MethodDeploy, deploy.Rollout{DeploymentID: f.d.ID, Repo: f.d.Repo,
				Service: f.d.Service, Environment: f.d.Environment, Image: execImage + "@" + contentPush,
				Destination: f.d.Spec.Destination})
		}},
		{"build fails: permanent", func(f *execFixture) {
			f.builder.BuildFunc = func(context.Context, deploy.BuildRequest, deploy.LogFunc) error { return buildErr }
		}, func(t *testing.T, f *execFixture, err error) {
			wantFinish(t, err, "failed", "build failed")
			if !errors.Is(err, buildErr) {
				t.Errorf("%v does not wrap the build error", err)
			}
			if p := f.registry.Pushes(); len(p) != 0 {
				t.Errorf("pushed %v", p)
			}
			wantStages(t, f.st, deploy.StatusBuilding)
			wantNoTarget(t, f)
		}},
		{"no Dockerfile at the commit: permanent, no build", func(f *execFixture) {
			f.src.files = map[string]string{"README.md": "hi\n"}
		}, func(t *testing.T, f *execFixture, err error) {
			wantFinish(t, err, "failed", `"Dockerfile" does not exist`)
			wantNoBuild(t, f)
			wantNoTarget(t, f)
		}},
		{"build inputs cannot be hashed: permanent", func(f *execFixture) {
			f.hashErr = errors.New(".dockerignore: bad pattern")
		}, func(t *testing.T, f *execFixture, err error) {
			wantFinish(t, err, "failed", "hashing build inputs", "bad pattern")
			wantNoBuild(t, f)
			wantNoTarget(t, f)
		}},
		{"checkout fails: retried", func(f *execFixture) {
			f.src.CheckoutFunc = func(context.Context, source.Repo, string) (*source.Checkout, error) {
				return nil, errors.New("github unreachable")
			}
		}, func(t *testing.T, f *execFixture, err error) {
			if got, _ := finished(err); got != "retry" || !strings.Contains(err.Error(), "github unreachable") {
				t.Fatalf("result %q (%v), want a retry", got, err)
			}
			wantNoBuild(t, f)
			wantNoTarget(t, f)
		}},
		{"push fails: retried", func(f *execFixture) {
			f.registry.PushFunc = func(context.Context, string, deploy.LogFunc) (string, error) {
				return "", errors.New("503 from registry")
			}
		}, func(t *testing.T, f *execFixture, err error) {
			if got, _ := finished(err); got != "retry" || !strings.Contains(err.Error(), "pushing "+contentRef) {
				t.Fatalf("result %q (%v), want a retry naming %s", got, err, contentRef)
			}
			if len(f.st.images) != 0 {
				t.Errorf("images recorded %+v", f.st.images)
			}
			wantNoTarget(t, f)
		}},
		{"registry refuses the tag: the commit ref is pushed instead", func(f *execFixture) {
			f.registry.TagFunc = func(context.Context, string, string) error {
				return errors.New("registry answered 405 Method Not Allowed")
			}
		}, func(t *testing.T, f *execFixture, err error) {
			if err != nil {
				t.Fatalf("result %v, want success", err)
			}
			if got := f.registry.Pushes(); !slices.Equal(got, []string{contentRef, commitRef}) {
				t.Errorf("pushed %v, want %s then %s", got, contentRef, commitRef)
			}
			if log := f.st.log(); !strings.Contains(log, "405 Method Not Allowed") {
				t.Errorf("log does not say why the tag was pushed:\n%s", log)
			}
			f.wantRollout(t, deploytest.MethodDeploy, f.rollout(execImage+"@"+contentPush))
		}},
		{"target restored the previous version: rolled_back", func(f *execFixture) {
			f.target.DeployFunc = func(_ context.Context, r deploy.Rollout, _ deploy.LogFunc) error {
				return deploy.RolloutError(false, r.Image, true, errors.New("health check failed"))
			}
		}, func(t *testing.T, f *execFixture, err error) {
			wantFinish(t, err, "rolled_back", "rollout failed", "health check failed")
			if !errors.Is(err, deploy.ErrRolledBack) {
				t.Errorf("%v does not wrap deploy.ErrRolledBack", err)
			}
		}},
		{"target fails: permanent", func(f *execFixture) {
			f.target.DeployFunc = func(_ context.Context, r deploy.Rollout, _ deploy.LogFunc) error {
				return deploy.RolloutError(false, r.Image, false, errors.New("image pull denied"))
			}
		}, func(t *testing.T, f *execFixture, err error) {
			wantFinish(t, err, "failed", "rollout failed", "image pull denied")
		}},
		{"cancelled while deploying: the context's error", func(f *execFixture) {
			f.target.DeployFunc = func(ctx context.Context, _ deploy.Rollout, _ deploy.LogFunc) error {
				f.cancel()
				<-ctx.Done()
				return fmt.Errorf("waiting for the container: %w", context.Cause(ctx))
			}
		}, func(t *testing.T, f *execFixture, err error) {
			if got, _ := finished(err); got != "retry" || !errors.Is(err, context.Canceled) {
				t.Fatalf("result %q (%v), want context.Canceled for the queue to settle", got, err)
			}
		}},
		{"cancelled while building: the context's error", func(f *execFixture) {
			f.builder.BuildFunc = func(ctx context.Context, _ deploy.BuildRequest, _ deploy.LogFunc) error {
				f.cancel()
				<-ctx.Done()
				return errors.New("docker build: signal: killed")
			}
		}, func(t *testing.T, f *execFixture, err error) {
			if got, _ := finished(err); got != "retry" || !errors.Is(err, context.Canceled) {
				t.Fatalf("result %q (%v), want context.Canceled", got, err)
			}
			if p := f.registry.Pushes(); len(p) != 0 {
				t.Errorf("pushed %v", p)
			}
			wantNoTarget(t, f)
		}},
		{"platform without a target: permanent, naming it", func(f *execFixture) {
			f.d.Platform, f.d.Spec.Destination = deploy.PlatformECS, deploy.Destination{Service: "api",
				Environment: "production", Platform: deploy.PlatformECS,
				ECS: &deploy.ECSService{Cluster: "prod", Service: "api", Container: "api"}}
		}, func(t *testing.T, f *execFixture, err error) {
			wantFinish(t, err, "failed", `no "ecs" target`)
			if co := f.src.calls(); len(co) != 0 {
				t.Errorf("checked out %+v", co)
			}
			wantStages(t, f.st)
			wantNoTarget(t, f)
		}},
	}
	// The claim is lost (another worker took the deployment over) at each write before the target.
	for _, at := range []string{"stage building", "stage pushing", "image", "stage deploying"} {
		cases = append(cases, executorCase{"claim lost at " + at, func(f *execFixture) { f.st.loseAt = at }, func(t *testing.T, f *execFixture, err error) {
			if !errors.Is(err, store.ErrNotHeld) {
				t.Fatalf("result %v, want store.ErrNotHeld", err)
			}
			if w := f.st.writes; len(w) == 0 || w[len(w)-1] != at {
				t.Errorf("writes %v: the Executor went on after %s was refused", w, at)
			}
			wantNoTarget(t, f)
		}})
	}
	cases = append(cases, executorCase{"claim lost, image pushed by an earlier attempt", func(f *execFixture) {
		f.d.ImageDigest = "sha256:earlier"
		f.st.loseClaim()
	}, func(t *testing.T, f *execFixture, err error) {
		if !errors.Is(err, store.ErrNotHeld) {
			t.Fatalf("result %v, want store.ErrNotHeld", err)
		}
		wantNoTarget(t, f)
	}})

	runExecutorCases(t, cases)
}
