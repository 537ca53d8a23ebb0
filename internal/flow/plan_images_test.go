package flow_test

import (
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/pipeline"
)

// Issue 7, item 11: a pipeline file could make the server push to (and so contact) any registry
// host. With images in the policy, a service whose image is elsewhere is refused at planning,
// with the reason in its deployment and in the run's failure; the others go ahead.
func TestPlannerRefusesImagesOutsideThePolicy(t *testing.T) {
	policy := pipeline.Policy{Rules: []pipeline.Rule{{Repo: "acme/*", Targets: []string{"swarm:*", "docker:*", "ecs:*/*"},
		Images: []string{"registry.example.com/acme/api"}}}}
	f := newPlanFixture(t, policy)
	file := strings.Replace(twoServices, "image: registry.example.com/acme/web", "image: 169.254.169.254/acme/web", 1)
	sha := f.repo.CommitFiles("web pushes elsewhere", map[string]string{".slipway.yml": file, "api/main.go": "1", "web/index.html": "1"})
	runID, err := f.plan(t, zero, sha)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	ds := f.deployments(t, runID)
	for _, key := range []string{"api/production", "api/staging"} {
		if ds[key].Status != deploy.StatusQueued {
			t.Errorf("%s: %s %q", key, ds[key].Status, ds[key].Error)
		}
	}
	web := ds["web/production"]
	if web.Status != deploy.StatusFailed || !strings.Contains(web.Error, "169.254.169.254/acme/web") || !strings.Contains(web.Error, "acme/app") {
		t.Errorf("web: %s %q, want failed naming the image and the repository", web.Status, web.Error)
	}

	// Only the refused service changed: the run fails, saying why.
	second := f.repo.CommitFiles("web again", map[string]string{"web/index.html": "2"})
	if _, err := f.plan(t, sha, second); finishStatus(err) != "failed" || !strings.Contains(err.Error(), "169.254.169.254") {
		t.Errorf("web-only push: %v", err)
	}
}
