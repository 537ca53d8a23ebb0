package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/testenv"
)

// dockerEnv is what a deployment test needs from the harness.
type dockerEnv struct {
	t        testing.TB
	cli      string
	registry string
	base     string
	id       string // unique per test, for image, container and service names
}

func needDocker(t testing.TB) *dockerEnv {
	t.Helper()
	testenv.Require(t, "DOCKER_HOST")
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return &dockerEnv{
		t:        t,
		cli:      testenv.Require(t, "SLIPWAY_TEST_DOCKER_CLI"),
		registry: testenv.Require(t, "SLIPWAY_TEST_REGISTRY"),
		base:     testenv.Require(t, "SLIPWAY_TEST_BASE_IMAGE"),
		id:       hex.EncodeToString(b),
	}
}

func (e *dockerEnv) docker(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, e.cli, args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func (e *dockerEnv) mustDocker(args ...string) string {
	e.t.Helper()
	out, err := e.docker(args...)
	if err != nil {
		e.t.Fatalf("docker %v: %v\n%s", args, err, out)
	}
	return out
}

// serverEnv is the configuration a deploying server gets: the harness's engine and registry.
func (e *dockerEnv) serverEnv(cloneURL string) []string {
	return []string{
		repoConfig(e.t, cloneURL, "registries:\n  - host: "+e.registry+"\n    insecure: true"),
		"SLIPWAY_DOCKER_BINARY=" + e.cli,
		"SLIPWAY_DOCKER_BUILD_NETWORK=host",
	}
}

func (e *dockerEnv) container(name string) string { return "e2e-" + name + "-" + e.id }
func (e *dockerEnv) image(name string) string     { return e.registry + "/e2e-" + e.id + "/" + name }

// removeContainer cleans up after a docker-target test: the container and every other one
// Slipway made for that target.
func (e *dockerEnv) removeContainer(name string) {
	e.t.Cleanup(func() {
		ids, _ := e.docker("ps", "--all", "--quiet", "--filter", "label=dev.slipway.target="+name)
		for _, id := range append(strings.Fields(ids), name) {
			_, _ = e.docker("rm", "-f", id)
		}
	})
}

// runningImage is the image id a container runs, "" when it does not run.
func (e *dockerEnv) runningImage(name string) string {
	out, err := e.docker("inspect", "--format", "{{.State.Running}} {{.Image}}", name)
	if err != nil {
		return ""
	}
	running, img, _ := strings.Cut(out, " ")
	if running != "true" {
		return ""
	}
	return img
}

// imageID resolves a reference (repo@digest) to the engine's image id.
func (e *dockerEnv) imageID(ref string) string {
	e.t.Helper()
	return e.mustDocker("image", "inspect", "--format", "{{.Id}}", ref)
}

func (e *dockerEnv) httpdDockerfile(port int) string {
	return fmt.Sprintf("FROM %s\nCOPY index.html /www/index.html\nCMD [\"httpd\", \"-f\", \"-p\", \"127.0.0.1:%d\", \"-h\", \"/www\"]\n", e.base, port)
}

func (e *dockerEnv) workerDockerfile() string {
	// busybox sleep ignores SIGTERM; the trap lets Swarm stop the task at once.
	return fmt.Sprintf("FROM %s\nCOPY version /version\nCMD [\"sh\", \"-c\", \"trap 'exit 0' TERM; while true; do sleep 1; done\"]\n", e.base)
}

func checkDeployment(t *testing.T, d deploy.Deployment, want deploy.Status) {
	t.Helper()
	if d.Status != want {
		t.Errorf("deployment %d (%s/%s): %s, want %s: %s", d.ID, d.Service, d.Environment, d.Status, want, d.Error)
	}
	if want == deploy.StatusSucceeded {
		if !strings.HasPrefix(d.ImageDigest, "sha256:") || d.ImageRef == "" {
			t.Errorf("deployment %d: image %q digest %q", d.ID, d.ImageRef, d.ImageDigest)
		}
		if d.ClaimedAt == nil || d.DeployingAt == nil || d.FinishedAt == nil {
			t.Errorf("deployment %d: stage timestamps missing: %+v", d.ID, d)
		}
	}
}

func byService(r deploy.Run) map[string]deploy.Deployment {
	m := map[string]deploy.Deployment{}
	for _, d := range r.Deployments {
		m[d.Service] = d
	}
	return m
}

// Push → build → push → deploy for two services, one to a container and one to a Swarm service;
// then a push that touches one service deploys only that one.
func TestDeployTwoServices(t *testing.T) {
	e := needDocker(t)
	d := newDB(t)
	port := freePort(t)
	api, svc := e.container("api"), "e2e-worker-"+e.id
	e.removeContainer(api)
	e.mustDocker("service", "create", "--detach", "--name", svc, "--network", "host", "--stop-grace-period", "1s",
		e.base, "sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done")
	t.Cleanup(func() { _, _ = e.docker("service", "rm", svc) })

	repo := newGitRepo(t)
	repo.write(".slipway.yml", fmt.Sprintf(`services:
  api:
    paths: [services/api/**]
    context: services/api
    image: %s
    environments:
      production: {branch: main, docker: {container: %s}}
  worker:
    paths: [services/worker/**]
    context: services/worker
    image: %s
    environments:
      production: {branch: main, swarm: {service: %s}}
`, e.image("api"), api, e.image("worker"), svc))
	repo.write("services/api/Dockerfile", e.httpdDockerfile(port))
	repo.write("services/api/index.html", "version one\n")
	repo.write("services/worker/Dockerfile", e.workerDockerfile())
	repo.write("services/worker/version", "1\n")
	first := repo.commit("two services")
	srv := startServer(t, d.url, e.serverEnv(repo.dir)...)

	r1 := d.waitRun(srv.push("acme/app", "main", zeroSHA, first, "two services"), 5*time.Minute)
	if r1.Status != deploy.StatusPlanned || len(r1.Deployments) != 2 {
		t.Fatalf("first run: %s %q, %d deployments", r1.Status, r1.Error, len(r1.Deployments))
	}
	deps := byService(r1)
	checkDeployment(t, deps["api"], deploy.StatusSucceeded)
	checkDeployment(t, deps["worker"], deploy.StatusSucceeded)
	if got, want := e.runningImage(api), e.imageID(e.image("api")+"@"+deps["api"].ImageDigest); got != want {
		t.Errorf("container runs %q, want %q", got, want)
	}
	if code, body := get(t, fmt.Sprintf("http://127.0.0.1:%d/", port)); code != 200 || body != "version one\n" {
		t.Errorf("api answered %d %q", code, body)
	}
	spec := e.mustDocker("service", "inspect", "--format", "{{.Spec.TaskTemplate.ContainerSpec.Image}}", svc)
	if !strings.HasSuffix(spec, deps["worker"].ImageDigest) {
		t.Errorf("swarm service image %q, want digest %s", spec, deps["worker"].ImageDigest)
	}
	logs := d.logs(deps["api"].ID)
	for _, want := range []string{"building", "pushed", "live:"} {
		if !strings.Contains(logs, want) {
			t.Errorf("api logs lack %q:\n%s", want, logs)
		}
	}

	repo.write("services/api/index.html", "version two\n")
	second := repo.commit("api only")
	r2 := d.waitRun(srv.push("acme/app", "main", first, second, "api only"), 5*time.Minute)
	if len(r2.Deployments) != 1 || r2.Deployments[0].Service != "api" {
		t.Fatalf("second run deployed %+v, want api only", r2.Deployments)
	}
	checkDeployment(t, r2.Deployments[0], deploy.StatusSucceeded)
	if rep := r2.Deployments[0].ReplacedID; rep == nil || *rep != deps["api"].ID {
		t.Errorf("replaced_id = %v, want %d", rep, deps["api"].ID)
	}
	if code, body := get(t, fmt.Sprintf("http://127.0.0.1:%d/", port)); code != 200 || body != "version two\n" {
		t.Errorf("api answered %d %q after the second push", code, body)
	}

	// A force push (unknown before) redeploys both; neither's build inputs changed, so neither builds.
	repo.write("README.md", "docs only\n")
	third := repo.commit("docs")
	r3 := d.waitRun(srv.push("acme/app", "main", zeroSHA, third, "force push"), 5*time.Minute)
	if len(r3.Deployments) != 2 {
		t.Fatalf("force push deployed %d services", len(r3.Deployments))
	}
	for _, dep := range r3.Deployments {
		checkDeployment(t, dep, deploy.StatusSucceeded)
		if logs := d.logs(dep.ID); !strings.Contains(logs, "build skipped") {
			t.Errorf("%s was rebuilt from unchanged inputs:\n%s", dep.Service, logs)
		}
	}
	if got := byService(r3)["api"].ImageDigest; got != r2.Deployments[0].ImageDigest {
		t.Errorf("api digest %s, want the second push's %s", got, r2.Deployments[0].ImageDigest)
	}

	// One click back: roll api back to the first push's deployment. No build; version one is served.
	var rb struct {
		RunID        int64 `json:"run_id"`
		DeploymentID int64 `json:"deployment_id"`
	}
	path := fmt.Sprintf("/deployments/%d/rollback", deps["api"].ID)
	if code := srv.api(http.MethodPost, path, apiToken, &rb); code != http.StatusAccepted || rb.DeploymentID == 0 {
		t.Fatalf("rollback: %d %+v", code, rb)
	}
	r4 := d.waitRun(rb.RunID, 3*time.Minute)
	back := r4.Deployments[0]
	checkDeployment(t, back, deploy.StatusSucceeded)
	if r4.Trigger != "rollback" || back.ImageDigest != deps["api"].ImageDigest {
		t.Errorf("rollback run %s deployed %s, want %s", r4.Trigger, back.ImageDigest, deps["api"].ImageDigest)
	}
	if rep := back.ReplacedID; rep == nil || *rep != byService(r3)["api"].ID {
		t.Errorf("rollback replaced %v, want %d", rep, byService(r3)["api"].ID)
	}
	if logs := d.logs(back.ID); strings.Contains(logs, "building ") {
		t.Errorf("a rollback built an image:\n%s", logs)
	}
	if back.BuildingAt != nil || back.PushingAt != nil {
		t.Errorf("a rollback shows a build or push stage: building %v, pushing %v", back.BuildingAt, back.PushingAt)
	}
	if code, body := get(t, fmt.Sprintf("http://127.0.0.1:%d/", port)); code != 200 || body != "version one\n" {
		t.Errorf("api answered %d %q after the rollback", code, body)
	}
	// What is live, and who put it there: the rollback (asked for through the API) for api, the
	// force push for worker.
	var live struct {
		Live []struct {
			ID      int64  `json:"id"`
			Service string `json:"service"`
			Trigger string `json:"trigger"`
			Pusher  string `json:"pusher"`
		} `json:"live"`
	}
	if code := srv.api(http.MethodGet, "/live?repo=acme/app", apiToken, &live); code != 200 || len(live.Live) != 2 {
		t.Fatalf("live: %d %+v", code, live)
	}
	for _, l := range live.Live {
		want := map[string]int64{"api": back.ID, "worker": byService(r3)["worker"].ID}[l.Service]
		if l.ID != want || (l.Service == "api") != (l.Trigger == "rollback") {
			t.Errorf("live %s: deployment %d (%s by %s), want %d", l.Service, l.ID, l.Trigger, l.Pusher, want)
		}
	}
	var history struct {
		Deployments []deploy.Deployment `json:"deployments"`
		NextCursor  int64               `json:"next_cursor"`
	}
	if code := srv.api(http.MethodGet, "/deployments?service=api&limit=2", apiToken, &history); code != 200 ||
		len(history.Deployments) != 2 || history.Deployments[0].ID != back.ID || history.NextCursor != history.Deployments[1].ID {
		t.Errorf("history: %d %+v", code, history)
	}

	// Only a version that went live can be rolled back to.
	failed := d.run(r1.ID).Deployments[0].ID + 1000
	if code := srv.api(http.MethodPost, fmt.Sprintf("/deployments/%d/rollback", failed), apiToken, nil); code != http.StatusNotFound {
		t.Errorf("rollback to a missing deployment: %d", code)
	}
}

// oneService writes a repository with one docker-target service and returns it.
func (e *dockerEnv) oneService(t *testing.T, name, dockerfile string, extraFiles map[string]string) *gitRepo {
	t.Helper()
	repo := newGitRepo(t)
	repo.write(".slipway.yml", fmt.Sprintf(`services:
  %s:
    image: %s
    environments:
      production: {branch: main, docker: {container: %s}}
`, name, e.image(name), e.container(name)))
	repo.write("Dockerfile", dockerfile)
	for p, c := range extraFiles {
		repo.write(p, c)
	}
	e.removeContainer(e.container(name))
	return repo
}

// A broken Dockerfile fails the deployment with the builder's error in its logs; nothing deploys.
func TestBuildFailure(t *testing.T) {
	e := needDocker(t)
	d := newDB(t)
	repo := e.oneService(t, "broken", fmt.Sprintf("FROM %s\nRUN echo about to fail && exit 7\n", e.base), nil)
	sha := repo.commit("broken")
	srv := startServer(t, d.url, e.serverEnv(repo.dir)...)
	r := d.waitRun(srv.push("acme/app", "main", zeroSHA, sha, "broken"), 3*time.Minute)
	if len(r.Deployments) != 1 {
		t.Fatalf("%d deployments", len(r.Deployments))
	}
	dep := r.Deployments[0]
	checkDeployment(t, dep, deploy.StatusFailed)
	if !strings.Contains(dep.Error, "build failed") {
		t.Errorf("error %q", dep.Error)
	}
	if logs := d.logs(dep.ID); !strings.Contains(logs, "about to fail") {
		t.Errorf("logs lack the build output:\n%s", logs)
	}
	if _, err := e.docker("inspect", e.container("broken")); err == nil {
		t.Error("a container was created for a failed build")
	}
	if code := srv.api(http.MethodPost, fmt.Sprintf("/deployments/%d/rollback", dep.ID), apiToken, nil); code != http.StatusConflict {
		t.Errorf("rollback to a failed deployment: %d, want 409", code)
	}
}

// A new version whose container exits at once is rolled back to the previous image.
func TestRolloutFailureRollsBack(t *testing.T) {
	e := needDocker(t)
	d := newDB(t)
	port := freePort(t)
	repo := e.oneService(t, "web", e.httpdDockerfile(port), map[string]string{"index.html": "good\n"})
	good := repo.commit("good")
	srv := startServer(t, d.url, e.serverEnv(repo.dir)...)
	r1 := d.waitRun(srv.push("acme/app", "main", zeroSHA, good, "good"), 3*time.Minute)
	checkDeployment(t, r1.Deployments[0], deploy.StatusSucceeded)
	goodImage := e.runningImage(e.container("web"))

	repo.write("Dockerfile", fmt.Sprintf("FROM %s\nCMD [\"sh\", \"-c\", \"echo cannot start; exit 3\"]\n", e.base))
	bad := repo.commit("bad")
	r2 := d.waitRun(srv.push("acme/app", "main", good, bad, "bad"), 3*time.Minute)
	dep := r2.Deployments[0]
	checkDeployment(t, dep, deploy.StatusRolledBack)
	if !strings.Contains(dep.Error, "rolled back") {
		t.Errorf("error %q", dep.Error)
	}
	if got := e.runningImage(e.container("web")); got == "" || got != goodImage {
		t.Errorf("after rollback the container runs %q, want %q", got, goodImage)
	}
	if code, body := get(t, fmt.Sprintf("http://127.0.0.1:%d/", port)); code != 200 || body != "good\n" {
		t.Errorf("service answered %d %q after rollback", code, body)
	}
	if logs := d.logs(dep.ID); !strings.Contains(logs, "cannot start") {
		t.Errorf("logs lack the failed container's output:\n%s", logs)
	}
}

// Cancelling a deployment mid-build kills the docker build: its sleep ends long before its 313 s.
func TestCancelDuringBuild(t *testing.T) {
	e := needDocker(t)
	d := newDB(t)
	marker := "slipway-e2e-cancel-" + e.id
	repo := e.oneService(t, "slow", fmt.Sprintf("FROM %s\nRUN echo %s && sleep 313\n", e.base, marker), nil)
	sha := repo.commit("slow")
	srv := startServer(t, d.url, e.serverEnv(repo.dir)...)
	runID := srv.push("acme/app", "main", zeroSHA, sha, "slow")
	dep := waitDeployment(t, d, runID, func(dep deploy.Deployment) bool {
		return dep.Status == deploy.StatusBuilding && strings.Contains(d.logs(dep.ID), marker)
	})
	path := fmt.Sprintf("/deployments/%d/cancel", dep.ID)
	if code := srv.api(http.MethodPost, path, "", nil); code != http.StatusUnauthorized {
		t.Errorf("cancel without a token: %d", code)
	}
	if code := srv.api(http.MethodPost, path, "wrong-token-0123456789", nil); code != http.StatusUnauthorized {
		t.Errorf("cancel with a wrong token: %d", code)
	}
	var answer struct{ Status string }
	if code := srv.api(http.MethodPost, path, apiToken, &answer); code != http.StatusAccepted || answer.Status != "building" {
		t.Fatalf("cancel: %d %+v", code, answer)
	}
	start := time.Now()
	final := waitDeployment(t, d, runID, func(dep deploy.Deployment) bool { return dep.Status.Final() })
	if final.Status != deploy.StatusCancelled {
		t.Errorf("status %s, want cancelled", final.Status)
	}
	// Wait for the build's process to go; the deadline only stops a hung test (the sleep runs 313 s,
	// so one still there at the deadline was not killed).
	for deadline := start.Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		out, _ := exec.Command("pgrep", "-f", "sleep 313").Output()
		if len(strings.TrimSpace(string(out))) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the build's sleep is still running after cancel: pids %s", out)
		}
	}
	t.Logf("cancelled and build process gone in %s", time.Since(start).Round(time.Millisecond))
	if code := srv.api(http.MethodPost, path, apiToken, nil); code != http.StatusConflict {
		t.Errorf("cancelling a cancelled deployment: %d, want 409", code)
	}
	var got deploy.Deployment
	if code := srv.api(http.MethodGet, fmt.Sprintf("/deployments/%d", dep.ID), apiToken, &got); code != 200 || got.Status != deploy.StatusCancelled {
		t.Errorf("GET deployment: %d %s", code, got.Status)
	}
}

// Three pushes while the first is building: the middle one is superseded, the last deploys after
// the first finishes.
func TestSupersede(t *testing.T) {
	e := needDocker(t)
	d := newDB(t)
	// The first build waits on the gate until the test has queued the other two, so that they
	// find it still building however slow the machine. The waiting step comes before the changing
	// file, so later builds reuse its cached layer (and would pass the gate if they did not).
	release, testOver := make(chan struct{}), make(chan struct{})
	gate := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
			fmt.Fprintln(w, "go on")
		case <-r.Context().Done():
		case <-testOver: // Close waits for handlers
		}
	}))
	defer gate.Close()
	defer close(testOver)
	df := fmt.Sprintf("FROM %s\nRUN echo %s && wget -q -O- %s/\nCOPY version /version\nCMD [\"sh\", \"-c\", \"trap 'exit 0' TERM; while true; do sleep 1; done\"]\n",
		e.base, e.id, gate.URL)
	repo := e.oneService(t, "busy", df, map[string]string{"version": "1\n"})
	shas := []string{repo.commit("v1")}
	for _, v := range []string{"2", "3"} {
		repo.write("version", v+"\n")
		shas = append(shas, repo.commit("v"+v))
	}
	srv := startServer(t, d.url, e.serverEnv(repo.dir)...)
	r1 := srv.push("acme/app", "main", zeroSHA, shas[0], "v1")
	waitDeployment(t, d, r1, func(dep deploy.Deployment) bool { return dep.Status == deploy.StatusBuilding })
	r2 := srv.push("acme/app", "main", shas[0], shas[1], "v2")
	d.waitRunStatus(r2, time.Minute)
	r3 := srv.push("acme/app", "main", shas[1], shas[2], "v3")
	d.waitRunStatus(r3, time.Minute)
	close(release)
	final1, final2, final3 := d.waitRun(r1, 3*time.Minute), d.waitRun(r2, 3*time.Minute), d.waitRun(r3, 3*time.Minute)
	checkDeployment(t, final1.Deployments[0], deploy.StatusSucceeded)
	checkDeployment(t, final2.Deployments[0], deploy.StatusSuperseded)
	checkDeployment(t, final3.Deployments[0], deploy.StatusSucceeded)
	if by := final2.Deployments[0].SupersededBy; by == nil || *by != final3.Deployments[0].ID {
		t.Errorf("superseded_by = %v, want %d", by, final3.Deployments[0].ID)
	}
	if !final3.Deployments[0].BuildingAt.After(*final1.Deployments[0].FinishedAt) {
		t.Error("the last deployment started before the first finished")
	}
	if got := e.mustDocker("exec", e.container("busy"), "cat", "/version"); got != "3" {
		t.Errorf("live version %q, want 3", got)
	}
}

func waitDeployment(t *testing.T, d *db, runID int64, cond func(deploy.Deployment) bool) deploy.Deployment {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		r := d.run(runID)
		if len(r.Deployments) > 0 && cond(r.Deployments[0]) {
			return r.Deployments[0]
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("run %d: condition never met: %+v", runID, d.run(runID))
	return deploy.Deployment{}
}

// Hostile input: each gives a clear failure on its own run and nothing else breaks.
func TestHostileInput(t *testing.T) {
	e := needDocker(t)
	d := newDB(t)
	repo := e.oneService(t, "ok", fmt.Sprintf("FROM %s\nRUN echo %s; head -c 5000000 /dev/zero | tr '\\0' 'a'; echo\nCMD [\"sh\", \"-c\", \"trap 'exit 0' TERM; while true; do sleep 1; done\"]\n", e.base, e.id), nil)
	pwned := "/tmp/slipway-pwned-" + e.id
	good := repo.commit("$(touch " + pwned + "); `touch " + pwned + "` \"quoted\" 'single'")
	// The classic builder passes a step's output through whole; BuildKit clips it at 200 KiB itself.
	srv := startServer(t, d.url, append(e.serverEnv(repo.dir), "SLIPWAY_DOCKER_BUILDKIT=off")...)

	// A 5 MB log line and a commit message full of shell: the deployment works, the line is cut.
	r := d.waitRun(srv.push("acme/app", "main", zeroSHA, good, "$(touch "+pwned+")"), 3*time.Minute)
	checkDeployment(t, r.Deployments[0], deploy.StatusSucceeded)
	if logs := d.logs(r.Deployments[0].ID); !strings.Contains(logs, "line truncated") {
		t.Errorf("the 5 MB line was not truncated in the logs (%d bytes):\n%.3000s", len(logs), logs)
	}

	// A branch name with shell metacharacters.
	branch := "feat/$(touch${IFS}" + pwned + ");`id`&&true|x"
	repo.git("checkout", "-q", "-b", branch)
	repo.write(".slipway.yml", strings.Replace(readFile(t, repo, ".slipway.yml"), "branch: main", "branch: \"feat/**\"", 1))
	feat := repo.commit("feature")
	rb := d.waitRun(srv.push("acme/app", branch, zeroSHA, feat, "feature"), 3*time.Minute)
	checkDeployment(t, rb.Deployments[0], deploy.StatusSucceeded)

	// A dockerfile outside the repository, and invalid YAML: the run fails naming the problem.
	repo.git("checkout", "-q", "main")
	cases := []struct{ file, want string }{
		{strings.Replace(readFile(t, repo, ".slipway.yml"), "image:", "dockerfile: ../../etc/passwd\n    image:", 1), "dockerfile"},
		{"services:\n  api: [unclosed\n", ".slipway.yml:2"},
	}
	prev := good
	for _, c := range cases {
		repo.write(".slipway.yml", c.file)
		sha := repo.commit("hostile pipeline file")
		rr := d.waitRunStatus(srv.push("acme/app", "main", prev, sha, "hostile"), time.Minute)
		if rr.Status != deploy.StatusFailed || !strings.Contains(rr.Error, c.want) {
			t.Errorf("run with %q: %s %q, want failed naming %q", c.file, rr.Status, rr.Error, c.want)
		}
		prev = sha
	}
	if _, err := os.Stat(pwned); err == nil {
		t.Errorf("%s exists: a shell ran user data", pwned)
		_ = os.Remove(pwned)
	}
	if code, _ := get(t, srv.URL+"/readyz"); code != 200 {
		t.Errorf("server unhealthy after hostile input: %d", code)
	}
}

func readFile(t *testing.T, r *gitRepo, path string) string {
	t.Helper()
	b, err := os.ReadFile(r.dir + "/" + path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Slipway killed mid-build (SIGKILL: no shutdown at all): the build it started dies with it, and
// the next process takes the deployment back when its lease runs out and completes it.
func TestCrashMidBuildRecovered(t *testing.T) {
	e := needDocker(t)
	d := newDB(t)
	// The build's RUN step calls this server: the first call hangs until its client goes away,
	// later ones answer at once. So the first attempt's build can only end by being killed.
	var calls atomic.Int32
	firstGone, testOver := make(chan struct{}), make(chan struct{})
	gate := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			select {
			case <-r.Context().Done():
				close(firstGone)
			case <-testOver: // Close waits for handlers: never hang the test on a surviving build
			}
			return
		}
		fmt.Fprintln(w, "go on")
	}))
	defer gate.Close()
	defer close(testOver)
	repo := e.oneService(t, "crash", fmt.Sprintf("FROM %s\nRUN echo %s && wget -q -O- %s/\nCMD [\"sh\", \"-c\", \"trap 'exit 0' TERM; while true; do sleep 1; done\"]\n",
		e.base, e.id, gate.URL), nil)
	sha := repo.commit("crash")
	// The lease is what the second process waits out. Short, but not so short that a busy machine
	// delays a heartbeat (every lease/3) past it, which would cost the live server an attempt.
	env := append(e.serverEnv(repo.dir), "SLIPWAY_QUEUE_LEASE=10s", "SLIPWAY_QUEUE_RESCUE_EVERY=200ms", "SLIPWAY_QUEUE_BACKOFF_BASE=100ms")
	first := startServer(t, d.url, env...)
	runID := first.push("acme/app", "main", zeroSHA, sha, "crash")
	waitDeployment(t, d, runID, func(dep deploy.Deployment) bool { return calls.Load() == 1 })
	if err := first.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-first.done
	select {
	case <-firstGone:
	case <-time.After(2 * time.Minute): // only stops a hung test
		t.Fatal("the dead server's build still runs 2 minutes later")
	}
	startServer(t, d.url, env...)
	r := d.waitRun(runID, 3*time.Minute)
	dep := r.Deployments[0]
	checkDeployment(t, dep, deploy.StatusSucceeded)
	if dep.Attempt != 2 {
		t.Errorf("attempt %d, want 2 (one lost with the dead server)", dep.Attempt)
	}
	if logs := d.logs(dep.ID); !strings.Contains(logs, "attempt 2 by") {
		t.Errorf("logs do not show the second attempt:\n%s", logs)
	}
}
