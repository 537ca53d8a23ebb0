package store_test

import (
	"context"
	"testing"

	"github.com/slipway-dev/slipway/internal/deploy"
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
