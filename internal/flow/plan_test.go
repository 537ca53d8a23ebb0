package flow_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/flow"
	"github.com/slipway-dev/slipway/internal/pipeline"
	"github.com/slipway-dev/slipway/internal/queue"
	"github.com/slipway-dev/slipway/internal/source"
	"github.com/slipway-dev/slipway/internal/store"
	"github.com/slipway-dev/slipway/internal/testenv"
)

const zero = "0000000000000000000000000000000000000000"

const twoServices = `services:
  api:
    paths: [api/**]
    image: registry.example.com/acme/api
    environments:
      production: {branch: main, swarm: {service: api}}
      staging: {branch: main, docker: {container: api-staging}}
  web:
    paths: [web/**]
    image: registry.example.com/acme/web
    environments:
      production: {branch: main, ecs: {cluster: prod, service: web, container: web}}
`

type planFixture struct {
	st      *store.Store
	planner *flow.Planner
	repo    *testenv.GitRepo
}

func newPlanFixture(t *testing.T, policy pipeline.Policy) *planFixture {
	t.Helper()
	st := testenv.Store(t)
	src, err := source.New(source.Config{Dir: t.TempDir(), WorkDir: t.TempDir()}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return &planFixture{st: st, repo: testenv.NewGitRepo(t),
		planner: flow.NewPlanner(flow.PlannerConfig{Policy: policy}, st, src, slog.New(slog.DiscardHandler))}
}

// plan queues a run for before..after and runs the planner on it as a worker would.
func (f *planFixture) plan(t *testing.T, before, after string) (int64, error) {
	t.Helper()
	id, err := f.st.RunCreate(context.Background(), deploy.Run{Trigger: "test", Repo: "acme/app", Ref: "refs/heads/main",
		Branch: "main", BeforeSHA: before, AfterSHA: after, CloneURL: f.repo.Dir})
	if err != nil {
		t.Fatal(err)
	}
	return id, f.planner.Handle(context.Background(), f.claim(t, id))
}

// claim claims run id as a worker would; the planner writes under the claim.
func (f *planFixture) claim(t *testing.T, id int64) queue.Job {
	t.Helper()
	c, ok, err := f.st.QueueClaim(context.Background(), store.KindRun, "test", time.Minute)
	if err != nil || !ok || c.ID != id {
		t.Fatalf("claiming run %d: %+v %v %v", id, c, ok, err)
	}
	return queue.Job{Claim: c.Claim}
}

func (f *planFixture) deployments(t *testing.T, runID int64) map[string]deploy.Deployment {
	t.Helper()
	ds, err := f.st.DeploymentsByRun(context.Background(), runID)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]deploy.Deployment{}
	for _, d := range ds {
		m[d.Service+"/"+d.Environment] = d
	}
	return m
}

func finishStatus(err error) string {
	var fe *queue.FinishError
	if err == nil {
		return ""
	}
	if errors.As(err, &fe) {
		return fe.Status
	}
	return "retry"
}

func TestPlanner(t *testing.T) {
	allow := pipeline.Policy{Rules: []pipeline.Rule{{Repo: "acme/*", Targets: []string{"swarm:*", "docker:*"}}},
		Registries: []string{"registry.example.com"}}
	f := newPlanFixture(t, allow)
	first := f.repo.CommitFiles("change", map[string]string{".slipway.yml": twoServices, "api/main.go": "1", "web/index.html": "1"})

	// A new branch deploys everything; the ECS target is outside the policy and recorded as failed.
	runID, err := f.plan(t, zero, first)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	ds := f.deployments(t, runID)
	if len(ds) != 3 {
		t.Fatalf("deployments %v", ds)
	}
	for _, key := range []string{"api/production", "api/staging"} {
		if ds[key].Status != deploy.StatusQueued {
			t.Errorf("%s: %s", key, ds[key].Status)
		}
	}
	refused := ds["web/production"]
	if refused.Status != deploy.StatusFailed || !strings.Contains(refused.Error, "ecs:prod/web") || !strings.Contains(refused.Error, "acme/app") {
		t.Errorf("refused deployment: %s %q", refused.Status, refused.Error)
	}

	// Planning the same run again (a retry after a crash) queues nothing twice.
	// (The run is put back in the queue first, as the rescuer would.)
	if _, err := f.st.Pool().Exec(context.Background(), `UPDATE runs SET status = 'queued', lease_owner = NULL WHERE id = $1`, runID); err != nil {
		t.Fatal(err)
	}
	if err := f.planner.Handle(context.Background(), f.claim(t, runID)); err != nil {
		t.Fatal(err)
	}
	if n := len(f.deployments(t, runID)); n != 3 {
		t.Errorf("replanning made %d deployments", n)
	}

	// A push touching only web/ deploys only web (refused again by policy: the run fails with why).
	second := f.repo.CommitFiles("change", map[string]string{"web/index.html": "2"})
	runID, err = f.plan(t, first, second)
	if finishStatus(err) != "failed" || !strings.Contains(err.Error(), "outside the policy") {
		t.Errorf("web-only push: %v", err)
	}
	if ds := f.deployments(t, runID); len(ds) != 1 || ds["web/production"].Status != deploy.StatusFailed {
		t.Errorf("web-only push deployments: %v", ds)
	}
	// The run says which services it left alone, and why.
	run, err := f.st.RunGet(context.Background(), runID)
	if err != nil {
		t.Fatal(err)
	}
	if len(run.Skipped) != 1 || run.Skipped[0].Service != "api" || !strings.Contains(run.Skipped[0].Reason, "no changed file matches its paths") {
		t.Errorf("web-only push skipped %+v, want api with its paths", run.Skipped)
	}

	// A push touching neither service is skipped with a reason.
	third := f.repo.CommitFiles("change", map[string]string{"README.md": "docs"})
	runID, err = f.plan(t, second, third)
	if finishStatus(err) != "skipped" {
		t.Errorf("docs-only push: %v", err)
	}
	if run, err = f.st.RunGet(context.Background(), runID); err != nil || len(run.Skipped) != 2 {
		t.Errorf("docs-only push skipped %+v (%v), want both services", run.Skipped, err)
	}
}

func TestPlannerBadPipelineFiles(t *testing.T) {
	f := newPlanFixture(t, pipeline.Policy{AllowAll: true})
	cases := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"missing", map[string]string{"README.md": "x"}, "no .slipway.yml"},
		{"invalid yaml", map[string]string{".slipway.yml": "services:\n  api: [\n"}, ".slipway.yml:2"},
		{"escaping dockerfile", map[string]string{".slipway.yml": strings.Replace(twoServices, "    paths: [api/**]", "    paths: [api/**]\n    dockerfile: ../../etc/passwd", 1)}, "services.api.dockerfile"},
		{"unknown key", map[string]string{".slipway.yml": "services:\n  api:\n    imagee: x\n"}, "imagee"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, ok := c.files[".slipway.yml"]; !ok {
				f.repo.Git("rm", "-q", "--ignore-unmatch", ".slipway.yml")
			}
			sha := f.repo.CommitFiles("change", c.files)
			_, err := f.plan(t, zero, sha)
			if finishStatus(err) != "failed" || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want a permanent failure naming %q", err, c.want)
			}
		})
	}
}
