package webhook_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/slipway-dev/slipway/internal/config"
	"github.com/slipway-dev/slipway/internal/testenv"
	"github.com/slipway-dev/slipway/internal/webhook"
)

// configured is a validated server configuration naming repos, as `slipway serve` loads it.
func configured(t *testing.T, repos ...config.Repository) config.Config {
	t.Helper()
	cfg := config.Defaults()
	cfg.DatabaseURL = "postgres://u@localhost/db"
	cfg.Repositories = repos
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// listener counts the connections made to it: a payload's URL must never be contacted.
func listener(t *testing.T) (addr string, dialled *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	dialled = new(atomic.Int32)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			dialled.Add(1)
			c.Close()
		}
	}()
	return ln.Addr().String(), dialled
}

// Attack (issue 7, item 1): the payload chose where the git token went. A repository without a
// clone_url of its own was fetched from the webhook's repository.clone_url; the run must name the
// configured GitHub URL instead, whatever the payload says, and never store a credential from it.
func TestPayloadCannotChooseCloneURL(t *testing.T) {
	cfg := configured(t, config.Repository{Name: "Codertocat/Hello-World"})
	f := newFixtureOn(t, testenv.Store(t), webhook.Config{Repos: config.Repos(cfg.Repositories)})
	internal, _ := listener(t)
	for i, hostile := range []string{
		"http://" + internal + "/probe.git",
		"file:///var/lib/slipway/git/other-repo.git",
		"/etc",
		"https://ghp_CANARY0123456789@evil.example/steal.git",
		"https://x-access-token:ghp_CANARY0123456789@github.com/codertocat/hello-world.git",
	} {
		body := pushWith(t, func(m map[string]any) {
			field(m, "repository")["clone_url"] = hostile
			m["after"] = fmt.Sprintf("%040x", i+1)
		})
		r := f.post(t, "push", fmt.Sprintf("hostile-url-%d", i), "application/json", body, sign(body, secret))
		if r.code != 202 {
			t.Fatalf("%s: status %d %+v", hostile, r.code, r.body)
		}
		var cloneURL string
		if err := f.st.Pool().QueryRow(context.Background(), "SELECT clone_url FROM runs WHERE id = $1", r.body.RunID).Scan(&cloneURL); err != nil {
			t.Fatal(err)
		}
		if want := "https://github.com/codertocat/hello-world.git"; cloneURL != want {
			t.Errorf("payload clone_url %q: the run fetches from %q, want the configured %q", hostile, cloneURL, want)
		}
		if strings.Contains(cloneURL, "CANARY") {
			t.Errorf("the run stored a credential from the payload: %q", cloneURL)
		}
	}
}

// Attack (issue 7, item 7): ACME/x counted as another repository than acme/x. Whatever case the
// payload uses, the delivery and its run record the canonical, lower-case name.
func TestRepositoryNamesCanonical(t *testing.T) {
	f := newFixture(t, 0)
	body := pushBody(t, "CODERTOCAT/hello-WORLD", "refs/heads/master")
	r := f.post(t, "push", "case-1", "application/json", body, sign(body, secret))
	if r.code != 202 {
		t.Fatalf("status %d %+v", r.code, r.body)
	}
	var runRepo, deliveryRepo string
	err := f.st.Pool().QueryRow(context.Background(), `SELECT r.repo, w.repo FROM runs r JOIN webhook_deliveries w USING (delivery_id)
		WHERE r.id = $1`, r.body.RunID).Scan(&runRepo, &deliveryRepo)
	if err != nil {
		t.Fatal(err)
	}
	if runRepo != "codertocat/hello-world" || deliveryRepo != "codertocat/hello-world" {
		t.Errorf("recorded run repo %q, delivery repo %q; want codertocat/hello-world for both", runRepo, deliveryRepo)
	}
}

// Attack (issue 7, item 8): the same signed body sent again with new delivery ids queued runs of
// an old commit. A push that is not newer than what was seen for its branch is recorded, answered
// 200 with the reason, and queues nothing.
func TestReplayDoesNotDeploy(t *testing.T) {
	f := newFixture(t, 0)
	const t0 = 1557933657 // the fixture's repository.pushed_at
	push := func(pushedAt int64, before, after string) []byte {
		return pushWith(t, func(m map[string]any) {
			field(m, "repository")["pushed_at"] = pushedAt
			m["before"], m["after"] = before, after
		})
	}
	sha := func(n int) string { return fmt.Sprintf("%040x", n) }
	old := push(t0, sha(0), sha(1))
	if r := f.post(t, "push", "replay-1", "application/json", old, sign(old, secret)); r.code != 202 {
		t.Fatalf("first push: %d %+v", r.code, r.body)
	}
	newer := push(t0+60, sha(1), sha(2))
	if r := f.post(t, "push", "replay-2", "application/json", newer, sign(newer, secret)); r.code != 202 {
		t.Fatalf("newer push: %d %+v", r.code, r.body)
	}
	for i, body := range [][]byte{old, newer, old} {
		id := fmt.Sprintf("replay-new-id-%d", i)
		r := f.post(t, "push", id, "application/json", body, sign(body, secret))
		if r.code != 200 || r.body.Outcome != "stale" || r.body.RunID != 0 || r.body.Reason == "" {
			t.Errorf("replay %d answered %d %+v, want 200 stale with a reason and no run", i, r.code, r.body)
		}
		again := f.post(t, "push", id, "application/json", body, sign(body, secret))
		if again.code != r.code || again.body != r.body || again.hdr.Get("X-Slipway-Redelivery") != "true" {
			t.Errorf("redelivery of %s answered %d %+v, first %d %+v", id, again.code, again.body, r.code, r.body)
		}
	}
	if n := f.count(t, "runs"); n != 2 {
		t.Errorf("runs = %d, want 2: replays queued runs", n)
	}
}
