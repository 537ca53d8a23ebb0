package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/store"
	"github.com/slipway-dev/slipway/internal/testenv"
)

func commit(n int) string { return fmt.Sprintf("%040x", n) }

type push struct {
	repo, branch  string
	at            int64
	before, after int
}

func (p push) ingest(t *testing.T, st *store.Store, id string) (store.Delivery, bool) {
	t.Helper()
	repo, branch := p.repo, p.branch
	if repo == "" {
		repo = "acme/app"
	}
	if branch == "" {
		branch = "main"
	}
	d := store.Delivery{ID: id, Event: "push", Repo: repo, Ref: "refs/heads/" + branch, Outcome: "queued",
		StatusCode: 202, PushedAt: p.at}
	run := &deploy.Run{Trigger: "push", Repo: repo, Ref: d.Ref, Branch: branch, BeforeSHA: commit(p.before),
		AfterSHA: commit(p.after), CloneURL: "https://x-access-token:CANARY@github.com/acme/app.git"}
	got, inserted, err := st.WebhookIngest(context.Background(), d, run)
	if err != nil {
		t.Fatal(err)
	}
	return got, inserted
}

// Replays and late deliveries (issue 7, item 8): a push deploys only if it is newer than every
// push already received for its branch, by pushed_at, and within one second by its commits.
func TestWebhookIngestOrdersPushes(t *testing.T) {
	const t0 = 1700000000
	cases := []struct {
		name   string
		pushes []push
		fresh  []bool // per push: queued (true) or recorded stale
	}{
		{"newer pushes deploy", []push{{at: t0, before: 0, after: 1}, {at: t0 + 1, before: 1, after: 2}}, []bool{true, true}},
		{"a replay with a new delivery id", []push{{at: t0, before: 0, after: 1}, {at: t0, before: 0, after: 1}}, []bool{true, false}},
		{"an older push after a newer one", []push{{at: t0 + 5, before: 1, after: 2}, {at: t0, before: 0, after: 1}}, []bool{true, false}},
		{"an old replay after several", []push{{at: t0, after: 1}, {at: t0 + 1, before: 1, after: 2}, {at: t0 + 2, before: 2, after: 3},
			{at: t0 + 1, before: 1, after: 2}}, []bool{true, true, true, false}},
		{"the next push in the same second", []push{{at: t0, before: 0, after: 1}, {at: t0, before: 1, after: 2}}, []bool{true, true}},
		{"three in one second, then each replayed", []push{{at: t0, after: 1}, {at: t0, before: 1, after: 2}, {at: t0, before: 2, after: 3},
			{at: t0, after: 1}, {at: t0, before: 1, after: 2}, {at: t0, before: 2, after: 3}}, []bool{true, true, true, false, false, false}},
		{"the same second's predecessor delivered late", []push{{at: t0, before: 1, after: 2}, {at: t0, before: 0, after: 1}}, []bool{true, false}},
		{"a force push in the same second to an unseen commit", []push{{at: t0, before: 0, after: 1}, {at: t0, before: 1, after: 9}}, []bool{true, true}},
		{"pushed_at unknown: not ordered", []push{{at: t0, after: 1}, {at: 0, after: 1}, {at: 0, after: 1}}, []bool{true, true, true}},
		{"branches are ordered apart", []push{{at: t0 + 5, after: 2}, {branch: "dev", at: t0, after: 1}}, []bool{true, true}},
		{"repositories are ordered apart", []push{{at: t0 + 5, after: 2}, {repo: "acme/other", at: t0, after: 1}}, []bool{true, true}},
		{"a new branch after its deletion", []push{{at: t0, after: 1}, {at: t0 + 60, before: 0, after: 1}}, []bool{true, true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := testenv.Store(t)
			for i, p := range c.pushes {
				id := fmt.Sprintf("d-%d", i)
				got, inserted := p.ingest(t, st, id)
				if !inserted {
					t.Fatalf("push %d: not inserted", i)
				}
				queued := got.RunID != 0
				if queued != c.fresh[i] {
					t.Errorf("push %d (%+v): queued %v, want %v (%+v)", i, p, queued, c.fresh[i], got)
				}
				if !queued && (got.Outcome != store.OutcomeStale || got.StatusCode != 200 || got.Reason == "") {
					t.Errorf("push %d: recorded %+v, want stale, 200 and a reason", i, got)
				}
				stored, err := st.WebhookDeliveryGet(context.Background(), id)
				if err != nil || stored.Outcome != got.Outcome || stored.StatusCode != got.StatusCode || stored.RunID != got.RunID {
					t.Errorf("push %d: answered %+v, stored %+v (%v)", i, got, stored, err)
				}
				// A redelivery of the id gets the stored answer and changes nothing.
				again, inserted := p.ingest(t, st, id)
				if inserted || again.Outcome != got.Outcome || again.RunID != got.RunID || again.Reason != got.Reason {
					t.Errorf("push %d: redelivery answered %+v (inserted %v), first %+v", i, again, inserted, got)
				}
			}
		})
	}
}

// Concurrent deliveries of one push with distinct ids (a replay storm racing the original): one
// run. And replays of an older push racing a newer one never deploy the older after the newer.
func TestWebhookIngestConcurrentReplays(t *testing.T) {
	st := testenv.Store(t)
	var wg sync.WaitGroup
	const n = 16
	queued := make([]bool, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, _ := push{at: 1700000000, after: 1}.ingest(t, st, fmt.Sprintf("storm-%d", i))
			queued[i] = got.RunID != 0
		}()
	}
	wg.Wait()
	runs := 0
	for _, q := range queued {
		if q {
			runs++
		}
	}
	if runs != 1 {
		t.Errorf("%d runs queued for one push delivered %d times, want 1", runs, n)
	}
	if got, _ := (push{at: 1700000001, before: 1, after: 2}).ingest(t, st, "newer"); got.RunID == 0 {
		t.Fatalf("the newer push was not queued: %+v", got)
	}
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if got, _ := (push{at: 1700000000, after: 1}).ingest(t, st, fmt.Sprintf("late-%d", i)); got.RunID != 0 {
				t.Errorf("a replay of the older push queued run %d", got.RunID)
			}
		}()
	}
	wg.Wait()
	var cloneURL string
	if err := st.Pool().QueryRow(context.Background(), `SELECT clone_url FROM runs LIMIT 1`).Scan(&cloneURL); err != nil {
		t.Fatal(err)
	}
	if cloneURL != "https://github.com/acme/app.git" {
		t.Errorf("stored clone URL %q keeps its credentials", cloneURL)
	}
}
