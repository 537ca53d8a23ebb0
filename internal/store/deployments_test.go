package store_test

import (
	"context"
	"testing"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/store"
	"github.com/slipway-dev/slipway/internal/testenv"
)

const sha = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"

// seed makes one run per (service, environment, status, pusher) and its deployment, in order.
func seed(t *testing.T, st *store.Store, rows [][4]string) []int64 {
	t.Helper()
	ctx := context.Background()
	var ids []int64
	for _, r := range rows {
		runID, err := st.RunCreate(ctx, deploy.Run{Trigger: "push", Repo: "acme/app", Ref: "refs/heads/main",
			Branch: "main", AfterSHA: sha, Pusher: r[3], Message: "by " + r[3]})
		if err != nil {
			t.Fatal(err)
		}
		var id int64
		err = st.Pool().QueryRow(ctx, `INSERT INTO deployments (run_id, repo, service, environment, commit_sha, status, finished_at)
			VALUES ($1, 'acme/app', $2, $3, $4, $5, clock_timestamp()) RETURNING id`, runID, r[0], r[1], sha, r[2]).Scan(&id)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

func TestDeploymentsListPages(t *testing.T) {
	st := testenv.Store(t)
	ids := seed(t, st, [][4]string{
		{"api", "prod", "succeeded", "ann"}, {"api", "prod", "failed", "bob"}, {"web", "prod", "succeeded", "cy"},
		{"api", "staging", "succeeded", "dee"}, {"api", "prod", "succeeded", "eve"},
	})
	ctx := context.Background()
	var got []int64
	f := store.DeploymentFilter{Service: "api", Limit: 2}
	for {
		page, err := st.DeploymentsList(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range page {
			got = append(got, d.ID)
		}
		if len(page) < f.Limit {
			break
		}
		f.Before = page[len(page)-1].ID
	}
	want := []int64{ids[4], ids[3], ids[1], ids[0]}
	if len(got) != len(want) {
		t.Fatalf("paged %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("paged %v, want %v", got, want)
		}
	}
	failed, err := st.DeploymentsList(ctx, store.DeploymentFilter{Status: "failed", Environment: "prod", Limit: 10})
	if err != nil || len(failed) != 1 || failed[0].ID != ids[1] {
		t.Errorf("status filter: %v %v", failed, err)
	}
}

func TestDeploymentsLive(t *testing.T) {
	st := testenv.Store(t)
	ids := seed(t, st, [][4]string{
		{"api", "prod", "succeeded", "ann"}, {"api", "prod", "succeeded", "bob"}, {"api", "prod", "failed", "cy"},
		{"api", "staging", "succeeded", "dee"}, {"web", "prod", "rolled_back", "eve"},
	})
	live, err := st.DeploymentsLive(context.Background(), "acme/app")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]store.Live{}
	for _, l := range live {
		got[l.Service+"/"+l.Environment] = l
	}
	if len(got) != 2 {
		t.Fatalf("live: %+v", got)
	}
	if l := got["api/prod"]; l.ID != ids[1] || l.Pusher != "bob" || l.Message != "by bob" {
		t.Errorf("api/prod live: %d by %s, want %d by bob", l.ID, l.Pusher, ids[1])
	}
	if l := got["api/staging"]; l.ID != ids[3] || l.Pusher != "dee" {
		t.Errorf("api/staging live: %d by %s", l.ID, l.Pusher)
	}
	if other, err := st.DeploymentsLive(context.Background(), "someone/else"); err != nil || len(other) != 0 {
		t.Errorf("other repo: %v %v", other, err)
	}
}
