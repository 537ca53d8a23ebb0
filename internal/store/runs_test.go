package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/store"
	"github.com/slipway-dev/slipway/internal/testenv"
)

// Attack (issue 7, item 10): a credential inside a clone URL was stored in runs.clone_url and
// returned by the API. Whatever a caller passes, the stored URL has no userinfo.
func TestRunCloneURLNeverStoresCredentials(t *testing.T) {
	st := testenv.Store(t)
	ctx := context.Background()
	for _, c := range []struct{ in, want string }{
		{"https://ghp_CANARY@github.com/acme/app.git", "https://github.com/acme/app.git"},
		{"https://x-access-token:ghp_CANARY@github.com/acme/app.git", "https://github.com/acme/app.git"},
		{"https://github.com/acme/app.git", "https://github.com/acme/app.git"},
		{"/srv/git/app", "/srv/git/app"},
	} {
		id, err := st.RunCreate(ctx, deploy.Run{Trigger: "test", Repo: "acme/app", Ref: "refs/heads/main", Branch: "main",
			AfterSHA: sha, CloneURL: c.in})
		if err != nil {
			t.Fatal(err)
		}
		r, err := st.RunGet(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if r.CloneURL != c.want {
			t.Errorf("stored %q for %q, want %q", r.CloneURL, c.in, c.want)
		}
	}
}

// A skipped run deployed nothing, and that is no error: its why is the run's reason.
func TestSkippedRunHasAReasonNotAnError(t *testing.T) {
	st := testenv.Store(t)
	ctx := context.Background()
	for _, tc := range []struct{ status, msg string }{{"skipped", "no service matched"}, {"failed", "no pipeline file"}} {
		id, err := st.RunCreate(ctx, deploy.Run{Trigger: "push", Repo: "acme/app", Branch: "main", AfterSHA: "abc"})
		if err != nil {
			t.Fatal(err)
		}
		c, ok, err := st.QueueClaim(ctx, store.KindRun, "test", time.Minute)
		if err != nil || !ok || c.ID != id {
			t.Fatalf("claim: %+v %v %v", c, ok, err)
		}
		if err := st.QueueFinish(ctx, c.Claim, tc.status, tc.msg); err != nil {
			t.Fatal(err)
		}
		r, err := st.RunGet(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		wantErr, wantReason := tc.msg, ""
		if tc.status == "skipped" {
			wantErr, wantReason = "", tc.msg
		}
		if r.Error != wantErr || r.Reason != wantReason {
			t.Errorf("%s run: error %q, reason %q", tc.status, r.Error, r.Reason)
		}
	}
}
