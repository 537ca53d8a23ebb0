package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/deploy"
)

// Defect: a server killed mid-rollout took its new container down with it (its `docker run`
// child passed the signal on), and the service stayed down until a later push. The engine now
// holds the container on its own: it keeps running through the crash, and the next server
// finishes the rollout with exactly one container for the service and /live naming it.
func TestCrashMidRolloutLeavesServiceRunning(t *testing.T) {
	e := needDocker(t)
	d := newDB(t)
	dockerfile := fmt.Sprintf("FROM %s\nCOPY version /version\nCMD [\"sh\", \"-c\", \"trap 'exit 0' TERM; while true; do sleep 1; done\"]\n", e.base)
	repo := e.oneService(t, "midroll", dockerfile, map[string]string{"version": "1"})
	name := e.container("midroll")
	one := repo.commit("one")
	fast := append(e.serverEnv(repo.dir), "SLIPWAY_QUEUE_LEASE=10s", "SLIPWAY_QUEUE_RESCUE_EVERY=200ms",
		"SLIPWAY_QUEUE_BACKOFF_BASE=100ms", "SLIPWAY_DOCKER_STABLE_FOR=1s")
	srv := startServer(t, d.url, fast...)
	first := d.waitRun(srv.push("acme/app", "main", zeroSHA, one, "one"), 3*time.Minute)
	checkDeployment(t, first.Deployments[0], deploy.StatusSucceeded)
	if err := srv.stop(time.Minute); err != nil {
		t.Fatal(err)
	}

	// The second version's server waits long for the container to prove itself: it is killed there.
	repo.write("version", "2")
	two := repo.commit("two")
	slow := startServer(t, d.url, append(fast[:len(fast):len(fast)], "SLIPWAY_DOCKER_STABLE_FOR=10m")...)
	runID := slow.push("acme/app", "main", one, two, "two")
	waitDeployment(t, d, runID, func(dep deploy.Deployment) bool { return strings.Contains(d.logs(dep.ID), "to stay up for") })
	if err := slow.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-slow.done
	if got := e.mustDocker("exec", name, "cat", "/version"); got != "2" {
		t.Errorf("after the crash the service runs version %q, want the new container (2) still running", got)
	}

	third := startServer(t, d.url, fast...)
	r := d.waitRun(runID, 3*time.Minute)
	dep := r.Deployments[0]
	checkDeployment(t, dep, deploy.StatusSucceeded)
	if dep.Attempt != 2 {
		t.Errorf("attempt %d, want 2 (one lost with the killed server)", dep.Attempt)
	}
	if got := e.mustDocker("exec", name, "cat", "/version"); got != "2" {
		t.Errorf("live version %q, want 2", got)
	}
	if ids := strings.Fields(e.mustDocker("ps", "--all", "--quiet", "--filter", "label=dev.slipway.target="+name)); len(ids) != 1 {
		t.Errorf("%d containers for the service, want 1: %v", len(ids), ids)
	}
	var live struct {
		Live []struct {
			ID int64 `json:"id"`
		} `json:"live"`
	}
	if code := third.api("GET", "/live?repo=acme/app", apiToken, &live); code != 200 || len(live.Live) != 1 || live.Live[0].ID != dep.ID {
		t.Errorf("/live = %d %+v, want deployment %d", code, live, dep.ID)
	}
}
