package flow_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/internal/pipeline"
)

// Issue 7, item 11: a pipeline file that is a symlink (or a directory) was retried five times,
// as if the network had failed; it fails at once, saying why. The symlink is not followed.
func TestPlannerPipelineFileNotRegular(t *testing.T) {
	cases := []struct {
		name string
		make func(t *testing.T, dir string)
	}{
		{"symlink to a file in the repository", func(t *testing.T, dir string) {
			if err := os.Symlink("deploy/pipeline.yml", filepath.Join(dir, ".slipway.yml")); err != nil {
				t.Fatal(err)
			}
		}},
		{"symlink out of the repository", func(t *testing.T, dir string) {
			if err := os.Symlink("/etc/passwd", filepath.Join(dir, ".slipway.yml")); err != nil {
				t.Fatal(err)
			}
		}},
		{"directory", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, "x"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Join(dir, ".slipway.yml"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, ".slipway.yml", "services"), []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newPlanFixture(t, pipeline.Policy{AllowAll: true})
			f.repo.Write("deploy/pipeline.yml", twoServices)
			f.repo.Write("api/main.go", "1")
			c.make(t, f.repo.Dir)
			sha := f.repo.Commit("pipeline file that is not a file")
			runID, err := f.plan(t, zero, sha)
			if finishStatus(err) != "failed" {
				t.Fatalf("got %v (%s), want a permanent failure", err, finishStatus(err))
			}
			if !strings.Contains(err.Error(), ".slipway.yml") || !strings.Contains(err.Error(), "not a regular file") {
				t.Errorf("the reason does not say what is wrong: %v", err)
			}
			if n := len(f.deployments(t, runID)); n != 0 {
				t.Errorf("%d deployments queued from a pipeline file that is not one", n)
			}
		})
	}
}

// Issue 7, item 11: an empty before (a push event without one, as some senders make) was an
// invalid SHA, retried five times. Like GitHub's all zeros it means a new branch: deploy all.
// A before that is not a SHA at all fails at once.
func TestPlannerBeforeSHA(t *testing.T) {
	for _, before := range []string{"", zero} {
		t.Run("before="+before, func(t *testing.T) {
			f := newPlanFixture(t, pipeline.Policy{AllowAll: true})
			sha := f.repo.CommitFiles("first", map[string]string{".slipway.yml": twoServices, "api/main.go": "1"})
			runID, err := f.plan(t, before, sha)
			if err != nil {
				t.Fatalf("plan: %v (%s)", err, finishStatus(err))
			}
			if n := len(f.deployments(t, runID)); n != 3 {
				t.Errorf("%d deployments, want every service and environment (3)", n)
			}
		})
	}
	t.Run("before=garbage", func(t *testing.T) {
		f := newPlanFixture(t, pipeline.Policy{AllowAll: true})
		sha := f.repo.CommitFiles("first", map[string]string{".slipway.yml": twoServices, "api/main.go": "1"})
		_, err := f.plan(t, "not-a-sha", sha)
		if finishStatus(err) != "failed" || !strings.Contains(err.Error(), "before") {
			t.Errorf("got %v (%s), want a permanent failure naming the before commit", err, finishStatus(err))
		}
	})
}
