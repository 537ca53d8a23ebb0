package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/store"
	"github.com/slipway-dev/slipway/internal/testenv"
)

// dashRow is one deployment to seed: its run's fields and its own.
type dashRow struct {
	repo, service, env, status, branch, trigger, sha string
}

func dashSeed(t *testing.T, st *store.Store, rows []dashRow) []int64 {
	t.Helper()
	ctx := context.Background()
	var ids []int64
	for _, r := range rows {
		runID, err := st.RunCreate(ctx, deploy.Run{Trigger: r.trigger, Repo: r.repo, Ref: "refs/heads/" + r.branch,
			Branch: r.branch, AfterSHA: r.sha, Pusher: "ann", Message: "change " + r.service})
		if err != nil {
			t.Fatal(err)
		}
		var id int64
		err = st.Pool().QueryRow(ctx, `INSERT INTO deployments (run_id, repo, service, environment, commit_sha, status,
				image_digest, finished_at)
			VALUES ($1, $2, $3, $4, $5, $6, 'sha256:'||md5($5), CASE WHEN $6 IN ('queued','building','pushing','deploying')
				THEN NULL ELSE clock_timestamp() END) RETURNING id`,
			runID, r.repo, r.service, r.env, r.sha, r.status).Scan(&id)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

func TestDashboardServices(t *testing.T) {
	st := testenv.Store(t)
	const a, b = "aaaa000000000000000000000000000000000000", "bbbb000000000000000000000000000000000000"
	ids := dashSeed(t, st, []dashRow{
		{"acme/app", "api", "prod", "succeeded", "main", "push", a},  // 0
		{"acme/app", "api", "prod", "succeeded", "main", "push", b},  // 1: live
		{"acme/app", "api", "prod", "failed", "main", "push", a},     // 2: last
		{"acme/app", "api", "prod", "queued", "main", "push", b},     // 3: queued, and now the last
		{"acme/app", "api", "staging", "building", "dev", "push", a}, // 4: running, nothing live
		{"acme/web", "www", "prod", "succeeded", "main", "rollback", b},
	})
	got, err := st.DashboardServices(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("%d rows, want 3: %+v", len(got), got)
	}
	type key struct{ repo, svc, env string }
	var keys []key
	for _, s := range got {
		keys = append(keys, key{s.Repo, s.Service, s.Environment})
	}
	if want := []key{{"acme/app", "api", "prod"}, {"acme/app", "api", "staging"}, {"acme/web", "www", "prod"}}; !slices.Equal(keys, want) {
		t.Fatalf("keys %v, want %v", keys, want)
	}
	prod := got[0]
	if prod.Live == nil || prod.Live.ID != ids[1] || prod.Live.CommitSHA != b || prod.Live.Pusher != "ann" || prod.Live.Branch != "main" {
		t.Errorf("prod live %+v, want deployment %d of %s", prod.Live, ids[1], b)
	}
	if prod.Last.ID != ids[3] || prod.Queued != 1 || prod.Active != 0 {
		t.Errorf("prod last %d queued %d active %d, want %d 1 0", prod.Last.ID, prod.Queued, prod.Active, ids[3])
	}
	staging := got[1]
	if staging.Live != nil || staging.Active != 1 || staging.Last.Status != deploy.StatusBuilding {
		t.Errorf("staging %+v", staging)
	}
	if web := got[2]; web.Live == nil || web.Live.Trigger != "rollback" || web.Last.Trigger != "rollback" {
		t.Errorf("web %+v", web)
	}
}

func TestDashboardHistory(t *testing.T) {
	st := testenv.Store(t)
	ctx := context.Background()
	const a, b = "abcd000000000000000000000000000000000000", "abff000000000000000000000000000000000000"
	ids := dashSeed(t, st, []dashRow{
		{"acme/app", "api", "prod", "succeeded", "main", "push", a},
		{"acme/app", "api", "prod", "failed", "main", "push", b},
		{"acme/app", "web", "staging", "succeeded", "dev", "push", a},
		{"acme/app", "api", "prod", "succeeded", "main", "rollback", a},
		{"acme/other", "api", "prod", "cancelled", "main", "manual", b},
	})
	cases := []struct {
		name string
		f    store.HistoryFilter
		want []int64
	}{
		{"all", store.HistoryFilter{}, []int64{ids[4], ids[3], ids[2], ids[1], ids[0]}},
		{"branch", store.HistoryFilter{Branch: "dev"}, []int64{ids[2]}},
		{"trigger", store.HistoryFilter{Trigger: "rollback"}, []int64{ids[3]}},
		{"commit prefix", store.HistoryFilter{Commit: "abf"}, []int64{ids[4], ids[1]}},
		{"commit full", store.HistoryFilter{Commit: a}, []int64{ids[3], ids[2], ids[0]}},
		{"commit shared prefix", store.HistoryFilter{Commit: "ab"}, []int64{ids[4], ids[3], ids[2], ids[1], ids[0]}},
		{"repo service env status", store.HistoryFilter{Repo: "acme/app", Service: "api", Environment: "prod", Status: "succeeded"},
			[]int64{ids[3], ids[0]}},
		{"before", store.HistoryFilter{Before: ids[2]}, []int64{ids[1], ids[0]}},
		{"nothing", store.HistoryFilter{Branch: "nope"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.f.Limit = 10
			got, err := st.DashboardHistory(ctx, c.f)
			if err != nil {
				t.Fatal(err)
			}
			var gotIDs []int64
			for _, d := range got {
				gotIDs = append(gotIDs, d.ID)
			}
			if !slices.Equal(gotIDs, c.want) {
				t.Errorf("got %v, want %v", gotIDs, c.want)
			}
		})
	}
	if _, err := st.DashboardHistory(ctx, store.HistoryFilter{Commit: "ab%", Limit: 1}); deploy.ErrorCode(err) != deploy.EINVALID {
		t.Errorf("commit with a wildcard: %v, want invalid", err)
	}

	// Pages stay put while rows arrive: a deployment queued between two pages shows on neither
	// (it is newer than the cursor), and no older row repeats or goes missing.
	page1, err := st.DashboardHistory(ctx, store.HistoryFilter{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	dashSeed(t, st, []dashRow{{"acme/app", "api", "prod", "queued", "main", "push", a}})
	var seen []int64
	for _, d := range page1 {
		seen = append(seen, d.ID)
	}
	for before := page1[len(page1)-1].ID; ; {
		page, err := st.DashboardHistory(ctx, store.HistoryFilter{Limit: 2, Before: before})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range page {
			seen = append(seen, d.ID)
		}
		if len(page) < 2 {
			break
		}
		before = page[len(page)-1].ID
	}
	if want := []int64{ids[4], ids[3], ids[2], ids[1], ids[0]}; !slices.Equal(seen, want) {
		t.Errorf("paged %v, want %v", seen, want)
	}
}

func TestDashboardLogsTail(t *testing.T) {
	st := testenv.Store(t)
	ctx := context.Background()
	id := dashSeed(t, st, []dashRow{{"acme/app", "api", "prod", "building", "main", "push", "ab"}})[0]
	if _, err := st.Pool().Exec(ctx, `UPDATE deployments SET lease_owner = 'w', attempt = 1 WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	var lines []store.LogLine
	for i := range 5 {
		lines = append(lines, store.LogLine{Stream: "stdout", Line: strings.Repeat("x", i)})
	}
	if err := st.DeploymentLogsAppend(ctx, store.Claim{Kind: store.KindDeployment, ID: id, Owner: "w", Attempt: 1}, lines); err != nil {
		t.Fatal(err)
	}
	tail, more, err := st.DeploymentLogsTail(ctx, id, 3)
	if err != nil {
		t.Fatal(err)
	}
	if !more || len(tail) != 3 || tail[0].Line != "xx" || tail[2].Line != "xxxx" {
		t.Errorf("tail %+v more %v, want the last 3 lines oldest first", tail, more)
	}
	if _, more, _ := st.DeploymentLogsTail(ctx, id, 5); more {
		t.Error("more is set with every line shown")
	}
}

// A log append notifies store.ChannelLogs with the deployment's id, and a refused one does not.
func TestDeploymentLogsAppendNotifies(t *testing.T) {
	st := testenv.Store(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	id := dashSeed(t, st, []dashRow{{"acme/app", "api", "prod", "building", "main", "push", "ab"}})[0]
	if _, err := st.Pool().Exec(ctx, `UPDATE deployments SET lease_owner = 'w', attempt = 1 WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 10)
	ready := make(chan struct{})
	var once sync.Once
	go st.Listen(ctx, []string{store.ChannelLogs}, func(ch, payload string) { //nolint:errcheck
		if ch != "" {
			got <- payload
		}
	}, func() { once.Do(func() { close(ready) }) })
	<-ready
	line := []store.LogLine{{Stream: "stdout", Line: "hello"}}
	if err := st.DeploymentLogsAppend(ctx, store.Claim{ID: id, Owner: "other", Attempt: 1}, line); err != store.ErrNotHeld {
		t.Fatalf("stale append: %v, want ErrNotHeld", err)
	}
	if err := st.DeploymentLogsAppend(ctx, store.Claim{ID: id, Owner: "w", Attempt: 1}, line); err != nil {
		t.Fatal(err)
	}
	// Notifications arrive in commit order: the first one is the accepted append's.
	if p := <-got; p != jsonInt(id) {
		t.Errorf("notification %q, want %d", p, id)
	}
}

func jsonInt(i int64) string { b, _ := json.Marshal(i); return string(b) }

// queryLog records the statements a pool runs, with their arguments, to EXPLAIN them after.
type queryLog struct {
	mu   sync.Mutex
	last []pgx.TraceQueryStartData
}

func (l *queryLog) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	l.mu.Lock()
	l.last = append(l.last, d)
	l.mu.Unlock()
	return ctx
}
func (l *queryLog) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (l *queryLog) take() []pgx.TraceQueryStartData {
	l.mu.Lock()
	defer l.mu.Unlock()
	q := l.last
	l.last = nil
	return q
}

// The services and history reads go through indexes, never a sequential scan of deployments,
// with the planner's estimates from ANALYZE on a few thousand rows, in custom and generic plans.
func TestDashboardQueriesUseIndexes(t *testing.T) {
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(testenv.DatabaseURL(t))
	if err != nil {
		t.Fatal(err)
	}
	ql := &queryLog{}
	cfg.ConnConfig.Tracer = ql
	cfg.MaxConns = 1 // plan_cache_mode is a session setting
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	st := store.New(pool)
	// 6000 deployments over 4 repositories × 25 services × 2 environments, from 3000 runs.
	_, err = pool.Exec(ctx, `
		INSERT INTO runs (trigger, repo, ref, branch, after_sha, pusher, message, status)
		SELECT CASE WHEN i % 300 = 7 THEN 'rollback' ELSE 'push' END, 'acme/r' || (i % 4),
			'refs/heads/' || CASE WHEN i % 10 = 0 THEN 'dev' ELSE 'main' END,
			CASE WHEN i % 10 = 0 THEN 'dev' ELSE 'main' END, md5(i::text) || substr(md5((i+1)::text), 1, 8),
			'user' || (i % 7), 'commit ' || i, 'planned'
		FROM generate_series(1, 3000) i;
		INSERT INTO deployments (run_id, repo, service, environment, commit_sha, status, finished_at, image_digest)
		SELECT r.id, r.repo, 's' || (s % 25), CASE WHEN s % 2 = 0 THEN 'prod' ELSE 'staging' END, r.after_sha,
			CASE WHEN r.id % 13 = 0 THEN 'failed' WHEN r.id % 17 = 0 THEN 'superseded' ELSE 'succeeded' END,
			r.created_at, 'sha256:' || md5(r.id::text)
		FROM runs r CROSS JOIN LATERAL (SELECT r.id * 2 + k AS s FROM generate_series(0, 1) k) s;
		INSERT INTO deployments (run_id, repo, service, environment, commit_sha, status)
		SELECT id, repo, 'q' || id, 'prod', after_sha, 'queued' FROM runs WHERE id % 300 = 0;
`)
	if err != nil {
		t.Fatal(err)
	}
	// What autovacuum does to a table that has seen this many inserts: statistics and the
	// visibility map (index-only scans).
	for _, table := range []string{"runs", "deployments"} {
		if _, err := pool.Exec(ctx, "VACUUM ANALYZE "+table); err != nil {
			t.Fatal(err)
		}
	}
	reads := map[string]func() error{
		"services": func() error { _, err := st.DashboardServices(ctx); return err },
	}
	for name, f := range map[string]store.HistoryFilter{
		"history":              {Limit: 50},
		"history deep":         {Limit: 50, Before: 300},
		"history service":      {Repo: "acme/r1", Service: "s3", Environment: "staging", Limit: 50},
		"history service deep": {Repo: "acme/r1", Service: "s3", Environment: "staging", Before: 1000, Limit: 50},
		"history status":       {Status: "failed", Limit: 50},
		"history branch":       {Branch: "dev", Limit: 50},
		"history trigger":      {Trigger: "rollback", Limit: 50},
		"history commit":       {Commit: "c4ca4238", Limit: 50},
		"history repo":         {Repo: "acme/r2", Before: 5000, Limit: 50},
	} {
		reads[name] = func() error { _, err := st.DashboardHistory(ctx, f); return err }
	}
	for _, mode := range []string{"force_custom_plan", "force_generic_plan"} {
		if _, err := pool.Exec(ctx, "SET plan_cache_mode = "+mode); err != nil {
			t.Fatal(err)
		}
		for name, read := range reads {
			ql.take()
			if err := read(); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			qs := ql.take()
			if len(qs) != 1 {
				t.Fatalf("%s ran %d statements, want 1", name, len(qs))
			}
			// EXECUTE of a prepared statement plans as the mode says; the arguments go as literals.
			if _, err := pool.Exec(ctx, "PREPARE dash_q AS "+qs[0].SQL); err != nil {
				t.Fatalf("%s: prepare: %v", name, err)
			}
			execute := "EXPLAIN (FORMAT JSON) EXECUTE dash_q"
			if n := len(qs[0].Args); n > 0 {
				ps := make([]string, n)
				for i := range ps {
					ps[i] = fmt.Sprintf("$%d", i+1)
				}
				execute += "(" + strings.Join(ps, ", ") + ")"
			}
			var plan []byte
			args := append([]any{pgx.QueryExecModeSimpleProtocol}, qs[0].Args...)
			if err := pool.QueryRow(ctx, execute, args...).Scan(&plan); err != nil {
				t.Fatalf("%s: explain: %v", name, err)
			}
			if _, err := pool.Exec(ctx, "DEALLOCATE dash_q"); err != nil {
				t.Fatal(err)
			}
			if bad := seqScans(t, plan, "deployments"); len(bad) > 0 {
				t.Errorf("%s (%s): %s scans deployments sequentially:\n%s", name, mode, strings.Join(bad, ", "), plan)
			}
		}
	}
}

// seqScans returns the Seq Scan nodes of an EXPLAIN (FORMAT JSON) plan on table.
func seqScans(t *testing.T, plan []byte, table string) []string {
	var doc []struct{ Plan map[string]any }
	if err := json.Unmarshal(plan, &doc); err != nil {
		t.Fatalf("plan: %v", err)
	}
	var out []string
	var walk func(n map[string]any)
	walk = func(n map[string]any) {
		if n["Node Type"] == "Seq Scan" && n["Relation Name"] == table {
			out = append(out, "Seq Scan on "+table)
		}
		kids, _ := n["Plans"].([]any)
		for _, k := range kids {
			if m, ok := k.(map[string]any); ok {
				walk(m)
			}
		}
	}
	for _, d := range doc {
		walk(d.Plan)
	}
	return out
}
