package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/deploy"
)

const zeroSHA = "0000000000000000000000000000000000000000"

const simplePipeline = `services:
  web:
    image: 127.0.0.1:5999/web
    environments:
      production: {branch: main, docker: {container: e2e-never-started}}
`

// SIGTERM with a run being planned: the planner finishes within the grace period and the process
// exits cleanly; nothing is lost.
func TestShutdownFinishesInFlightWork(t *testing.T) {
	d := newDB(t)
	repo := newGitRepo(t)
	repo.write(".slipway.yml", simplePipeline)
	sha := repo.commit("first")
	gs := serveGit(t, repo)
	// The grace period is long so that only a planner that does not finish can miss it; the
	// test ends as soon as it does.
	srv := startServer(t, d.url, repoConfig(t, gs.URL), "SLIPWAY_QUEUE_SHUTDOWN_GRACE=2m", "SLIPWAY_WORKERS=1")

	gs.hold()
	runID := srv.push("acme/app", "main", zeroSHA, sha, "first")
	<-gs.arrived // the planner is fetching now
	stopped := make(chan error, 1)
	go func() { stopped <- srv.stop(3 * time.Minute) }()
	waitLog(t, srv, "queue stopping")
	gs.release()
	if err := <-stopped; err != nil {
		t.Fatalf("exit: %v", err)
	}
	r := d.run(runID)
	if r.Status != deploy.StatusPlanned || len(r.Deployments) != 1 || r.Deployments[0].Status != deploy.StatusQueued {
		t.Fatalf("after shutdown: run %s with %d deployments %+v", r.Status, len(r.Deployments), r.Deployments)
	}
}

// SIGTERM with work that outlasts the grace period: it is released, not failed, and the next
// process picks it up.
func TestShutdownReleasesUnfinishedWork(t *testing.T) {
	d := newDB(t)
	repo := newGitRepo(t)
	repo.write(".slipway.yml", simplePipeline)
	sha := repo.commit("first")
	gs := serveGit(t, repo)
	env := []string{repoConfig(t, gs.URL), "SLIPWAY_QUEUE_SHUTDOWN_GRACE=500ms"}
	srv := startServer(t, d.url, env...)

	gs.hold()
	runID := srv.push("acme/app", "main", zeroSHA, sha, "first")
	<-gs.arrived
	if err := srv.stop(2 * time.Minute); err != nil {
		t.Fatalf("exit: %v", err)
	}
	if r := d.run(runID); r.Status != deploy.StatusQueued || r.Attempt != 0 {
		t.Fatalf("after shutdown: run %s attempt %d, want queued attempt 0", r.Status, r.Attempt)
	}
	gs.release()
	startServer(t, d.url, env...)
	r := d.waitRunStatus(runID, 60*time.Second)
	if r.Status != deploy.StatusPlanned || len(r.Deployments) != 1 {
		t.Fatalf("second process: run %s, %d deployments", r.Status, len(r.Deployments))
	}
}

// repoConfig writes a config file naming acme/app with its clone URL (the webhook payload names
// GitHub, which this machine cannot reach) and returns the SLIPWAY_CONFIG entry for it.
func repoConfig(t testing.TB, cloneURL string, extra ...string) string {
	t.Helper()
	cfg := "repositories:\n  - name: acme/app\n    clone_url: " + cloneURL + "\npolicy:\n  allow_all: true\n  adopt: [\"swarm:*\"]\n" + strings.Join(extra, "\n")
	path := filepath.Join(t.TempDir(), "slipway.yml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return "SLIPWAY_CONFIG=" + path
}

func waitLog(t *testing.T, s *server, text string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute) // only stops a hung test
	for !strings.Contains(s.logs.String(), text) {
		if time.Now().After(deadline) {
			t.Fatalf("log never said %q:\n%s", text, s.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
