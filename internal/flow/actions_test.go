package flow_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/flow"
	"github.com/slipway-dev/slipway/internal/source"
	"github.com/slipway-dev/slipway/internal/store"
	"github.com/slipway-dev/slipway/internal/testenv"
)

const headSHA = "cafecafecafecafecafecafecafecafecafecafe"

type branches map[string]string

func (b branches) BranchHead(_ context.Context, _ source.Repo, branch string) (string, error) {
	if sha, ok := b[branch]; ok {
		return sha, nil
	}
	return "", source.ErrNotFound
}

func remote(repo string) (string, string, error) {
	if repo != "acme/app" {
		return "", "", errors.New("repository " + repo + " is not configured")
	}
	return "https://github.example/acme/app.git", "tok", nil
}

// seedDeployment records a deployment of acme/app web/prod ending in status, with an image
// when digest is set.
func seedDeployment(t *testing.T, st *store.Store, status deploy.Status, digest string) int64 {
	t.Helper()
	ctx := t.Context()
	runID, err := st.RunCreate(ctx, deploy.Run{Trigger: "push", Repo: "acme/app", Branch: "main", AfterSHA: headSHA, Pusher: "ada"})
	if err != nil {
		t.Fatal(err)
	}
	ids, err := st.DeploymentsEnqueue(ctx, []deploy.NewDeployment{{RunID: runID, Repo: "acme/app", Service: "web",
		Environment: "prod", Platform: deploy.PlatformDocker, CommitSHA: headSHA,
		Spec: deploy.Spec{Destination: deploy.Destination{Platform: deploy.PlatformDocker, Docker: &deploy.Container{Container: "web"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Pool().Exec(ctx, `UPDATE deployments SET status = $2, image_ref = 'reg/web', image_digest = $3, finished_at = now() WHERE id = $1`,
		ids[0], status, digest); err != nil {
		t.Fatal(err)
	}
	return ids[0]
}

func TestActions(t *testing.T) {
	st := testenv.Store(t)
	allow := func(string, deploy.Spec) error { return nil }
	deny := func(string, deploy.Spec) error { return errors.New("not allowed") }
	a := flow.NewActions(st, allow, remote, branches{"main": headSHA})
	digest := "sha256:" + strings.Repeat("ab", 32)
	live := seedDeployment(t, st, deploy.StatusSucceeded, digest)
	failedAfterPush := seedDeployment(t, st, deploy.StatusFailed, digest)
	neverBuilt := seedDeployment(t, st, deploy.StatusFailed, "")

	ctx := t.Context()
	for _, tc := range []struct {
		name     string
		act      func(*flow.Actions) (int64, int64, error)
		wantCode string // "" is success
		trigger  string
	}{
		{"rollback to a live version", func(a *flow.Actions) (int64, int64, error) { return a.Rollback(ctx, live, "grace") }, "", "rollback"},
		{"rollback to a failed one", func(a *flow.Actions) (int64, int64, error) { return a.Rollback(ctx, failedAfterPush, "grace") }, deploy.ECONFLICT, ""},
		{"redeploy a failed rollout's image", func(a *flow.Actions) (int64, int64, error) { return a.Redeploy(ctx, failedAfterPush, "grace") }, "", "redeploy"},
		{"redeploy without an image", func(a *flow.Actions) (int64, int64, error) { return a.Redeploy(ctx, neverBuilt, "grace") }, deploy.ECONFLICT, ""},
		{"redeploy of a missing deployment", func(a *flow.Actions) (int64, int64, error) { return a.Redeploy(ctx, 999999, "grace") }, deploy.ENOTFOUND, ""},
		{"rollback outside the policy", func(*flow.Actions) (int64, int64, error) {
			return flow.NewActions(st, deny, remote, nil).Rollback(ctx, live, "grace")
		}, deploy.EFORBIDDEN, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runID, depID, err := tc.act(a)
			if deploy.ErrorCode(err) != tc.wantCode && (err != nil || tc.wantCode != "") {
				t.Fatalf("err = %v (code %s), want code %q", err, deploy.ErrorCode(err), tc.wantCode)
			}
			if tc.wantCode != "" {
				return
			}
			run, err := st.RunGet(ctx, runID)
			if err != nil {
				t.Fatal(err)
			}
			d, err := st.DeploymentGet(ctx, depID)
			if err != nil {
				t.Fatal(err)
			}
			if run.Trigger != tc.trigger || run.Pusher != "grace" || d.ImageDigest != digest || d.Status != deploy.StatusQueued {
				t.Errorf("run %+v, deployment %+v: want trigger %s by grace, image %s queued", run, d, tc.trigger, digest)
			}
			// Cancelled at once (queued), naming who and why.
			if _, err := a.Cancel(ctx, store.KindDeployment, depID, "grace", "wrong button"); err != nil {
				t.Fatal(err)
			}
			if d, _ = st.DeploymentGet(ctx, depID); d.Status != deploy.StatusCancelled || d.CancelledBy != "grace" ||
				d.CancelReason != "wrong button" || d.Error != "cancelled by grace: wrong button" {
				t.Errorf("after cancel: %s by %q (%q), error %q", d.Status, d.CancelledBy, d.CancelReason, d.Error)
			}
		})
	}
}

func TestDeployRef(t *testing.T) {
	st := testenv.Store(t)
	a := flow.NewActions(st, nil, remote, branches{"main": headSHA})
	ctx := t.Context()
	explicit := strings.Repeat("1", 40)
	for _, tc := range []struct {
		name, repo, branch, sha string
		wantCode                string
		wantSHA                 string
	}{
		{"branch head", "Acme/App", "main", "", "", headSHA},
		{"a given commit", "acme/app", "main", strings.ToUpper(explicit), "", explicit},
		{"unknown branch", "acme/app", "nope", "", deploy.ENOTFOUND, ""},
		{"unconfigured repository", "evil/app", "main", "", deploy.EINVALID, ""},
		{"not a commit", "acme/app", "main", "HEAD~1", deploy.EINVALID, ""},
		{"no branch", "acme/app", "", explicit, deploy.EINVALID, ""},
		{"not a branch name, with a commit", "acme/app", "a..b", explicit, deploy.EINVALID, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runID, err := a.DeployRef(ctx, tc.repo, tc.branch, tc.sha, "grace")
			if tc.wantCode != "" {
				if deploy.ErrorCode(err) != tc.wantCode {
					t.Fatalf("err = %v, want code %s", err, tc.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			run, err := st.RunGet(ctx, runID)
			if err != nil {
				t.Fatal(err)
			}
			if run.Trigger != "manual" || run.Repo != "acme/app" || run.AfterSHA != tc.wantSHA || run.Branch != "main" ||
				run.Pusher != "grace" || run.CloneURL != "https://github.example/acme/app.git" || run.Status != "queued" {
				t.Errorf("run = %+v", run)
			}
		})
	}
}

// A planned run is cancelled through its unfinished deployments; a run with none left answers
// a conflict that says so.
func TestCancelPlannedRun(t *testing.T) {
	st := testenv.Store(t)
	a := flow.NewActions(st, nil, remote, nil)
	ctx := t.Context()
	depID := seedDeployment(t, st, deploy.StatusSucceeded, "")
	d, _ := st.DeploymentGet(ctx, depID)
	if _, err := st.Pool().Exec(ctx, `UPDATE runs SET status = 'planned' WHERE id = $1`, d.RunID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Cancel(ctx, store.KindRun, d.RunID, "grace", ""); deploy.ErrorCode(err) != deploy.ECONFLICT ||
		!strings.Contains(err.Error(), "every deployment it planned has finished") {
		t.Fatalf("cancel of a finished run: %v", err)
	}
	if _, err := st.Pool().Exec(ctx, `UPDATE deployments SET status = 'queued', finished_at = NULL WHERE id = $1`, depID); err != nil {
		t.Fatal(err)
	}
	status, err := a.Cancel(ctx, store.KindRun, d.RunID, "grace", "")
	if err != nil || status != "planned" {
		t.Fatalf("cancel = %q, %v", status, err)
	}
	if d, _ = st.DeploymentGet(ctx, depID); d.Status != deploy.StatusCancelled || d.Error != "cancelled by grace" {
		t.Errorf("deployment after its run's cancel: %s %q", d.Status, d.Error)
	}
}
