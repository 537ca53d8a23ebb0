package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// chaosDriver plays the schedule: it pushes, kills, pauses and restarts PostgreSQL at the times
// drawn, from the test's goroutine.
type chaosDriver struct {
	t        *testing.T
	cfg      chaosConfig
	repo     *gitRepo
	replicas []*chaosReplica
	pick     *rand.Rand
	pg       *chaosPG
	services []chaosService
	id       string
	db       *pgxpool.Pool

	fig     chaosFigures
	head    string
	start   time.Time
	resumes sync.WaitGroup
	client  *http.Client
}

func (d *chaosDriver) logf(format string, args ...any) {
	d.t.Helper()
	d.t.Logf("t+%5.1fs  %s", time.Since(d.start).Seconds(), fmt.Sprintf(format, args...))
}

func (d *chaosDriver) run(events []chaosEvent) {
	d.t.Helper()
	d.start, d.head = time.Now(), zeroSHA
	d.client = &http.Client{Timeout: 10 * time.Second}
	d.logf("schedule starts at %s (the clock times below and in the replicas' logs)", d.start.Format("15:04:05.0"))
	for _, ev := range events {
		if wait := time.Until(d.start.Add(ev.at)); wait > 0 {
			time.Sleep(wait) // the schedule's clock
		}
		switch ev.kind {
		case "push":
			d.push(ev)
		case "kill":
			if r := d.victim(ev.pick); r != nil && r.kill(ev.delay) {
				d.fig.kills++
				d.logf("kill -9 replica %d (restarts in %s)", r.n, ev.delay.Round(time.Millisecond))
			}
		case "pause":
			if r := d.victim(ev.pick); r != nil && r.pause() {
				d.fig.pauses++
				d.logf("SIGSTOP replica %d and its children for %s", r.n, ev.delay.Round(time.Millisecond))
				d.resumes.Add(1)
				go func() {
					defer d.resumes.Done()
					time.Sleep(ev.delay)
					r.resume()
				}()
			}
		case "pg-restart":
			d.logf("restarting PostgreSQL (pg_ctl restart -m fast)")
			if err := d.pg.restart(); err != nil {
				d.t.Fatalf("harness: %v", err)
			}
			d.fig.pgRestarts++
			d.logf("PostgreSQL is back")
		}
	}
	d.resumes.Wait()
	d.logf("schedule done: every paused replica resumed")
}

// healthy lists the replicas that are up (not starting, paused or down).
func (d *chaosDriver) healthy() []*chaosReplica {
	var out []*chaosReplica
	for _, r := range d.replicas {
		if st, _ := r.State(); st == replicaUp {
			out = append(out, r)
		}
	}
	return out
}

// victim picks a replica to kill or pause among the healthy ones, keeping one healthy: it waits
// for a second one to be up when needed, and gives up (nil) after a minute. The draw favours a
// replica in the middle of a rollout, then one holding any item: an idle replica's death tests
// little.
func (d *chaosDriver) victim(pick int) *chaosReplica {
	deadline := time.Now().Add(time.Minute)
	waited := false
	for {
		h := d.healthy()
		if len(h) >= 2 {
			if waited {
				d.fig.deferred++
			}
			if busy := d.holding(h); len(busy) > 0 {
				h = busy
			}
			return h[pick%len(h)]
		}
		if time.Now().After(deadline) {
			d.logf("no two replicas up for a minute: event skipped")
			return nil
		}
		waited = true
		time.Sleep(100 * time.Millisecond)
	}
}

// holding returns the replicas of h that hold a deployment being rolled out or, failing that, any
// leased item. Lease owners are host-pid-random; an owner in another form (or a database that does
// not answer) leaves the draw uniform.
func (d *chaosDriver) holding(h []*chaosReplica) []*chaosReplica {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	rows, err := d.db.Query(ctx, `SELECT status, lease_owner FROM deployments WHERE lease_owner IS NOT NULL
		UNION ALL SELECT status, lease_owner FROM runs WHERE lease_owner IS NOT NULL`)
	if err != nil {
		return nil
	}
	defer rows.Close()
	rank := map[string]int{} // pid → 2 deploying, 1 other
	for rows.Next() {
		var status, owner string
		if rows.Scan(&status, &owner) != nil {
			return nil
		}
		parts := strings.Split(owner, "-")
		if len(parts) < 3 {
			continue
		}
		r := 1
		if status == "deploying" {
			r = 2
		}
		pid := parts[len(parts)-2]
		rank[pid] = max(rank[pid], r)
	}
	if rows.Err() != nil {
		return nil
	}
	var best []*chaosReplica
	top := 0
	for _, r := range h {
		k := rank[strconv.Itoa(r.pid())]
		switch {
		case k > top:
			best, top = []*chaosReplica{r}, k
		case k == top && k > 0:
			best = append(best, r)
		}
	}
	return best
}

// push commits a change to the services of ev and delivers the webhook.
func (d *chaosDriver) push(ev chaosEvent) {
	d.t.Helper()
	n := d.fig.pushes + 1
	var names []string
	for _, j := range ev.services {
		s := d.services[j]
		d.repo.write("services/"+s.name+"/version", fmt.Sprintf("%s, push %d\n", s.name, n))
		names = append(names, s.name)
	}
	msg := fmt.Sprintf("push %d: %s", n, strings.Join(names, " "))
	sha := d.repo.commit(msg)
	runID := d.deliver(fmt.Sprintf("chaos-%s-%d", d.id, n), pushPayload("acme/app", "main", d.head, sha, msg))
	d.head = sha
	d.fig.pushes++
	d.fig.runIDs = append(d.fig.runIDs, runID)
	d.logf("push %d -> run %d (%d services: %s)", n, runID, len(names), strings.Join(names, " "))
}

// deliver posts the webhook to a random healthy replica until one accepts it, as GitHub's
// redelivery would: a 5xx or a dead connection is retried with the same delivery id.
func (d *chaosDriver) deliver(delivery string, body []byte) int64 {
	d.t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		h := d.healthy()
		if len(h) > 0 {
			r := h[d.pick.IntN(len(h))]
			d.fig.deliveries++
			code, runID, raw, err := signedPush(d.client, r.URL(), delivery, body)
			switch {
			case err == nil && (code == http.StatusAccepted || code == http.StatusOK) && runID > 0:
				return runID
			case err == nil && code < 500:
				d.t.Fatalf("harness: webhook %s to replica %d answered %d: %s", delivery, r.n, code, raw)
			}
			d.fig.retried++
			d.logf("webhook %s to replica %d: %v %d %s (redelivering)", delivery, r.n, err, code, oneLine(raw))
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("harness: webhook %s not accepted in 3 minutes", delivery)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// settle waits until every run and deployment is final and no worker of any replica is busy, or
// the deadline, which only stops a hang. It reports whether everything settled.
func (d *chaosDriver) settle(db *pgxpool.Pool, limit time.Duration) bool {
	d.t.Helper()
	deadline := time.Now().Add(limit)
	for poll := 1; ; poll++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		runs, deps, err := unfinished(ctx, db)
		cancel()
		busy := d.busy()
		if err == nil && runs == 0 && deps == 0 && busy == 0 {
			d.logf("settled: every item final, every worker idle")
			return true
		}
		if time.Now().After(deadline) {
			d.logf("NOT settled after %s: %d runs and %d deployments unfinished, %d workers busy (err %v)", limit, runs, deps, busy, err)
			return false
		}
		if poll%30 == 0 { // a progress line every 30 polls (about 15 s), only for the reader
			d.logf("waiting: %d runs and %d deployments unfinished, %d workers busy (err %v)", runs, deps, busy, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// busy sums the replicas' busy workers; a replica that is not up counts as busy, since what it
// was doing is not settled.
func (d *chaosDriver) busy() int {
	n := 0
	for _, r := range d.replicas {
		st, _ := r.State()
		b := r.busy()
		if st != replicaUp || b < 0 {
			n++
			continue
		}
		n += int(b)
	}
	return n
}

// live reads GET /api/v1/live from a healthy replica.
func (d *chaosDriver) live() map[string]chaosLive {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var body struct {
		Live []chaosLive `json:"live"`
	}
	_, err := chaosRetry(ctx, func() (struct{}, error) {
		h := d.healthy()
		if len(h) == 0 {
			return struct{}{}, fmt.Errorf("no replica up")
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h[0].URL()+"/api/v1/live?repo=acme/app", nil)
		req.Header.Set("Authorization", "Bearer "+apiToken)
		resp, err := d.client.Do(req)
		if err != nil {
			return struct{}{}, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return struct{}{}, fmt.Errorf("GET /api/v1/live: %s", resp.Status)
		}
		return struct{}{}, json.NewDecoder(resp.Body).Decode(&body)
	})
	if err != nil {
		d.t.Fatalf("harness: reading /api/v1/live: %v", err)
	}
	out := map[string]chaosLive{}
	for _, l := range body.Live {
		if l.Environment == "production" {
			out[l.Service] = l
		}
	}
	return out
}

// report prints the figures and every invariant with its figure, then fails the test for each
// invariant violated (and for a replica that raced, panicked or logged a secret).
func (d *chaosDriver) report(f chaosFacts, invs []*invariant, s *chaosSampler, settled bool, logDir string) {
	t := d.t
	t.Helper()
	byStatus := func(statuses []string) string {
		counts := map[string]int{}
		for _, st := range statuses {
			counts[st]++
		}
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(counts)) {
			parts = append(parts, fmt.Sprintf("%s %d", k, counts[k]))
		}
		return strings.Join(parts, ", ")
	}
	var runSt, depSt []string
	for _, r := range f.state.runs {
		runSt = append(runSt, r.Status)
	}
	for _, dep := range f.state.deps {
		depSt = append(depSt, dep.Status)
	}
	logs, err := grepLogs(logDir, "took back item from a lost worker", "WARNING: DATA RACE", "panic:",
		webhookSecret, apiToken)
	if err != nil {
		t.Errorf("harness: reading replica logs: %v", err)
	}
	starts := 0
	var exits []string
	for _, r := range d.replicas {
		starts += r.starts
		exits = append(exits, r.exits...)
	}
	metric := func(name string) string {
		if !f.seen[name] {
			return "no series (0, or not in this build)"
		}
		return fmt.Sprintf("%g", f.metrics[name])
	}

	var b strings.Builder
	fmt.Fprintf(&b, "chaos %s, seed %d (SLIPWAY_CHAOS_SEED=%d replays the schedule)\n", f.cfg.mode, f.cfg.seed, f.cfg.seed)
	fmt.Fprintf(&b, "  pushes            %d (webhook deliveries %d, redelivered %d); run ids %v\n", d.fig.pushes, d.fig.deliveries, d.fig.retried, d.fig.runIDs)
	fmt.Fprintf(&b, "  kills (-9)        %d\n", d.fig.kills)
	fmt.Fprintf(&b, "  pauses (SIGSTOP)  %d (kills and pauses that waited for a second healthy replica: %d)\n", d.fig.pauses, d.fig.deferred)
	fmt.Fprintf(&b, "  PG restarts       %d\n", d.fig.pgRestarts)
	fmt.Fprintf(&b, "  replica starts    %d (exits not caused by the test: %d)\n", starts, len(exits))
	fmt.Fprintf(&b, "  runs              %d: %s\n", len(runSt), byStatus(runSt))
	fmt.Fprintf(&b, "  deployments       %d: %s\n", len(depSt), byStatus(depSt))
	fmt.Fprintf(&b, "  rescues           %d logged (\"took back item\"); slipway_queue_rescued_total %s\n", logs["took back item from a lost worker"], metric("slipway_queue_rescued_total"))
	fmt.Fprintf(&b, "  leases lost       slipway_queue_leases_lost_total %s\n", metric("slipway_queue_leases_lost_total"))
	fmt.Fprintf(&b, "  engine samples    %d (failed %d)\n", s.samples, s.failures)
	if !settled {
		fmt.Fprintf(&b, "  NOT SETTLED within %s: the checks below read a system still moving\n", f.cfg.deadline)
	}
	b.WriteString("invariants:\n")
	for _, iv := range invs {
		fmt.Fprintf(&b, "  %d. %-52s %-16s %s\n", iv.n, iv.name, iv.status, iv.figure)
		for _, e := range iv.evidence {
			fmt.Fprintf(&b, "       ! %s\n", e)
		}
		for _, n := range iv.notes {
			fmt.Fprintf(&b, "       - %s\n", n)
		}
	}
	for _, r := range f.state.runs {
		if r.Status == "failed" {
			fmt.Fprintf(&b, "  run %d failed: %s\n", r.ID, oneLine(r.Error))
		}
	}
	listed := 0
	for _, dep := range f.state.deps {
		if dep.Status == "failed" || dep.Status == "rolled_back" {
			if listed++; listed <= 10 {
				fmt.Fprintf(&b, "  deployment %d (%s, run %d) %s after %d attempts: %s\n",
					dep.ID, dep.Service, dep.RunID, dep.Status, dep.Attempt, oneLine(dep.Error))
			}
		}
	}
	if listed > 10 {
		fmt.Fprintf(&b, "  … and %d more failed or rolled back\n", listed-10)
	}
	for _, x := range exits {
		fmt.Fprintf(&b, "  %s\n", x)
	}
	t.Log("\n" + b.String())

	for _, iv := range invs {
		if iv.status == "VIOLATED" {
			t.Errorf("invariant %d violated: %s (%s):\n  %s", iv.n, iv.name, iv.figure, strings.Join(iv.evidence, "\n  "))
		}
	}
	if n := logs["WARNING: DATA RACE"] + logs["panic:"]; n > 0 {
		t.Errorf("a replica raced or panicked (%d reports): see %s", n, logDir)
	}
	if logs[webhookSecret]+logs[apiToken] > 0 {
		t.Errorf("a replica logged the webhook secret or API token: see %s", logDir)
	}
}
