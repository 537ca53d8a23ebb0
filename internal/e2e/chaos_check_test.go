package e2e

import (
	"cmp"
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// What the chaos test reads back from the database, with its own SQL: the store package is being
// reworked while this suite exists to check it, and the suite must keep reading old and new schemas.

type chaosRun struct {
	ID      int64
	Status  string
	Error   string
	Attempt int
}

type chaosDeployment struct {
	ID, RunID             int64
	Service, Environment  string
	Status, Error, Digest string
	Attempt               int
	ClaimedAt, FinishedAt *time.Time
}

type chaosLogLine struct {
	ID      int64
	Attempt int
	Line    string
}

type chaosState struct {
	runs       []chaosRun
	deps       []chaosDeployment
	logs       map[int64][]chaosLogLine
	hasAttempt bool // deployment_logs.attempt exists (migration 0002)
}

var (
	finalRun        = map[string]bool{"planned": true, "skipped": true, "failed": true, "cancelled": true}
	finalDeployment = map[string]bool{"succeeded": true, "failed": true, "cancelled": true, "superseded": true, "rolled_back": true}
)

// unfinished counts the runs and deployments not in a final status.
func unfinished(ctx context.Context, db *pgxpool.Pool) (runs, deps int, err error) {
	err = db.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM runs WHERE status NOT IN ('planned', 'skipped', 'failed', 'cancelled')),
		(SELECT count(*) FROM deployments WHERE status NOT IN ('succeeded', 'failed', 'cancelled', 'superseded', 'rolled_back'))`).
		Scan(&runs, &deps)
	return runs, deps, err
}

func readChaosState(ctx context.Context, db *pgxpool.Pool) (chaosState, error) {
	var s chaosState
	rows, err := db.Query(ctx, `SELECT id, status, error, attempt FROM runs ORDER BY id`)
	if err != nil {
		return s, err
	}
	for rows.Next() {
		var r chaosRun
		if err := rows.Scan(&r.ID, &r.Status, &r.Error, &r.Attempt); err != nil {
			return s, err
		}
		s.runs = append(s.runs, r)
	}
	if err := rows.Err(); err != nil {
		return s, err
	}
	rows, err = db.Query(ctx, `SELECT id, run_id, service, environment, status, error, image_digest, attempt,
		claimed_at, finished_at FROM deployments ORDER BY id`)
	if err != nil {
		return s, err
	}
	for rows.Next() {
		var d chaosDeployment
		if err := rows.Scan(&d.ID, &d.RunID, &d.Service, &d.Environment, &d.Status, &d.Error, &d.Digest,
			&d.Attempt, &d.ClaimedAt, &d.FinishedAt); err != nil {
			return s, err
		}
		s.deps = append(s.deps, d)
	}
	if err := rows.Err(); err != nil {
		return s, err
	}
	err = db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM information_schema.columns
		WHERE table_name = 'deployment_logs' AND column_name = 'attempt')`).Scan(&s.hasAttempt)
	if err != nil {
		return s, err
	}
	attempt := "0"
	if s.hasAttempt {
		attempt = "attempt"
	}
	rows, err = db.Query(ctx, `SELECT deployment_id, id, `+attempt+`, line FROM deployment_logs ORDER BY deployment_id, id`)
	if err != nil {
		return s, err
	}
	s.logs = map[int64][]chaosLogLine{}
	for rows.Next() {
		var dep int64
		var l chaosLogLine
		if err := rows.Scan(&dep, &l.ID, &l.Attempt, &l.Line); err != nil {
			return s, err
		}
		s.logs[dep] = append(s.logs[dep], l)
	}
	return s, rows.Err()
}

// chaosLive is one entry of GET /api/v1/live.
type chaosLive struct {
	ID          int64  `json:"id"`
	RunID       int64  `json:"run_id"`
	Service     string `json:"service"`
	Environment string `json:"environment"`
	ImageDigest string `json:"image_digest"`
}

// targetState is what runs on one service's target once everything settled.
type targetState struct {
	images []string // docker: the running containers' images; swarm: the running tasks' images
	spec   string   // swarm: the service spec's image
	err    error
}

// invariant is one line of the report.
type invariant struct {
	n        int
	name     string
	status   string // ok, VIOLATED, not yet possible
	figure   string
	evidence []string
	notes    []string // printed, not a failure
}

func (iv *invariant) violate(format string, args ...any) {
	iv.status = "VIOLATED"
	iv.evidence = append(iv.evidence, fmt.Sprintf(format, args...))
}

// chaosFacts is everything the invariants are checked against.
type chaosFacts struct {
	cfg      chaosConfig
	services []chaosService
	state    chaosState
	live     map[string]chaosLive // by pipeline service name
	targets  map[string]targetState
	watch    map[string]*serviceWatch // by container or swarm service name
	metrics  map[string]float64       // summed over every replica's incarnations
	seen     map[string]bool          // metric exported by at least one scrape
}

func checkInvariants(f chaosFacts) []*invariant {
	return []*invariant{
		f.everyItemFinal(), f.oneSuccess(), f.newestLive(), f.neverTwo(), f.neverDown(), f.liveRuns(), f.noStaleWrite(),
	}
}

func (f chaosFacts) everyItemFinal() *invariant {
	iv := &invariant{n: 1, name: "every run and deployment final", status: "ok"}
	for _, r := range f.state.runs {
		if !finalRun[r.Status] {
			iv.violate("run %d is %s (attempt %d)", r.ID, r.Status, r.Attempt)
		}
	}
	for _, d := range f.state.deps {
		if !finalDeployment[d.Status] {
			iv.violate("deployment %d (%s, run %d) is %s (attempt %d)", d.ID, d.Service, d.RunID, d.Status, d.Attempt)
		}
	}
	iv.figure = fmt.Sprintf("%d runs, %d deployments; %d not final", len(f.state.runs), len(f.state.deps), len(iv.evidence))
	return iv
}

var liveLine = regexp.MustCompile(`^live: `)

func (f chaosFacts) oneSuccess() *invariant {
	iv := &invariant{n: 2, name: "at most one success per service and push", status: "ok"}
	succeeded := map[string][]int64{}
	for _, d := range f.state.deps {
		if d.Status == "succeeded" {
			k := fmt.Sprintf("%s/%s run %d", d.Service, d.Environment, d.RunID)
			succeeded[k] = append(succeeded[k], d.ID)
		}
	}
	most := 0
	for k, ids := range succeeded {
		most = max(most, len(ids))
		if len(ids) > 1 {
			iv.violate("%s: deployments %v all succeeded", k, ids)
		}
	}
	// A deployment is one row, so the table cannot hold two successes of one push: what can happen
	// is one row whose rollout completed twice (two attempts each logging "live:").
	twice := 0
	for _, d := range f.state.deps {
		n := 0
		for _, l := range f.state.logs[d.ID] {
			if liveLine.MatchString(l.Line) {
				n++
			}
		}
		if n > 1 {
			twice++
			iv.notes = append(iv.notes, fmt.Sprintf("deployment %d (%s, run %d, %s) completed its rollout %d times (attempt %d)",
				d.ID, d.Service, d.RunID, d.Status, n, d.Attempt))
		}
	}
	iv.figure = fmt.Sprintf("max %d succeeded per service+push; %d deployments rolled out more than once", most, twice)
	return iv
}

func (f chaosFacts) newestLive() *invariant {
	iv := &invariant{n: 3, name: "newest push live everywhere", status: "ok"}
	byService := map[string][]chaosDeployment{}
	for _, d := range f.state.deps {
		byService[d.Service] = append(byService[d.Service], d)
	}
	ok, excused := 0, 0
	for _, s := range f.services {
		ds := byService[s.name]
		if len(ds) == 0 {
			iv.violate("%s: no push ever planned a deployment of it", s.name)
			continue
		}
		newest := slices.MaxFunc(ds, func(a, b chaosDeployment) int { return cmp.Compare(a.RunID, b.RunID) })
		live, hasLive := f.live[s.name]
		liveIs := "nothing"
		if hasLive {
			liveIs = fmt.Sprintf("deployment %d of run %d", live.ID, live.RunID)
		}
		switch {
		case newest.Status == "succeeded" && hasLive && live.ID == newest.ID:
			ok++
		case newest.Status == "succeeded":
			iv.violate("%s: live is %s, but the newest push's deployment %d (run %d) succeeded", s.name, liveIs, newest.ID, newest.RunID)
		case newest.Status == "failed" || newest.Status == "rolled_back":
			excused++
			iv.notes = append(iv.notes, fmt.Sprintf("%s: newest deployment %d (run %d) ended %s, so %s is live: %s",
				s.name, newest.ID, newest.RunID, newest.Status, liveIs, oneLine(newest.Error)))
		default:
			iv.violate("%s: the newest push's deployment %d (run %d) ended %s (%s); live is %s",
				s.name, newest.ID, newest.RunID, newest.Status, oneLine(newest.Error), liveIs)
		}
	}
	iv.figure = fmt.Sprintf("%d of %d services run their newest push; %d excused (newest failed or rolled back)",
		ok, len(f.services), excused)
	return iv
}

func (f chaosFacts) neverTwo() *invariant {
	iv := &invariant{n: 4, name: "never two running containers of one docker service", status: "ok"}
	most, swarmMost := 0, 0
	for _, s := range f.services {
		w := f.watch[s.target]
		if s.kind == "swarm" {
			swarmMost = max(swarmMost, w.maxRunning)
			if w.doubles > 0 {
				iv.notes = append(iv.notes, fmt.Sprintf("%s (swarm, 1 replica): %d samples with 2+ running tasks: %s",
					s.name, w.doubles, strings.Join(w.doubleSeen, "; ")))
			}
			continue
		}
		most = max(most, w.maxRunning)
		if w.doubles > 0 {
			iv.violate("%s: %d samples with 2+ running containers, first: %s", s.name, w.doubles, strings.Join(w.doubleSeen, "; "))
		}
	}
	iv.figure = fmt.Sprintf("max running at once: %d per docker service, %d tasks per swarm service", most, swarmMost)
	return iv
}

// downBound is how long a service may have nothing running: a worker lost mid-rollout (the old
// container stopped, the new one not started) is noticed when its lease expires, taken back on
// the next rescue pass, retried after the longest backoff, and then needs one whole attempt
// (checkout, build or reuse, push, rollout). That attempt is the longest successful one seen.
func (f chaosFacts) downBound() (bound, attempt time.Duration) {
	for _, d := range f.state.deps {
		if d.Status == "succeeded" && d.ClaimedAt != nil && d.FinishedAt != nil {
			attempt = max(attempt, d.FinishedAt.Sub(*d.ClaimedAt))
		}
	}
	backoff := f.cfg.backoffBase * time.Duration(1<<chaosDeploymentAttempts)
	return f.cfg.lease + f.cfg.rescueEvery + backoff + attempt, attempt
}

func (f chaosFacts) neverDown() *invariant {
	iv := &invariant{n: 5, name: "no service down longer than one rollout", status: "ok"}
	bound, attempt := f.downBound()
	var worst time.Duration
	worstName := ""
	for _, s := range f.services {
		w := f.watch[s.target]
		if w.longestDown > worst {
			worst, worstName = w.longestDown, s.name
		}
		switch {
		case !w.seen:
			iv.violate("%s (%s): never seen running", s.name, s.kind)
		case w.stillDown && s.kind == "docker":
			// Every item is final and every worker idle: nothing will ever start it again. (Swarm
			// restarts its own tasks, so a swarm service between two tasks is not counted.)
			iv.violate("%s (%s): nothing running since %s, and nothing will start it: every item is final",
				s.name, s.kind, w.downFrom.Format("15:04:05.0"))
		case w.longestDown > bound:
			iv.violate("%s (%s): nothing running for %s from %s", s.name, s.kind,
				w.longestDown.Round(100*time.Millisecond), w.longestAt.Format("15:04:05.0"))
		}
	}
	iv.figure = fmt.Sprintf("longest down %s (%s); bound %s = lease %s + rescue %s + backoff %s + longest attempt %s",
		worst.Round(100*time.Millisecond), cmp.Or(worstName, "-"), bound.Round(100*time.Millisecond), f.cfg.lease, f.cfg.rescueEvery,
		f.cfg.backoffBase*time.Duration(1<<chaosDeploymentAttempts), attempt.Round(100*time.Millisecond))
	return iv
}

func (f chaosFacts) liveRuns() *invariant {
	iv := &invariant{n: 6, name: "/api/v1/live equals what runs", status: "ok"}
	ok := 0
	for _, s := range f.services {
		live, hasLive := f.live[s.name]
		ts := f.targets[s.name]
		if ts.err != nil {
			iv.violate("%s: reading its target: %v", s.name, ts.err)
			continue
		}
		want := "nothing of ours"
		if hasLive {
			want = shortDigest(live.ImageDigest)
		}
		switch s.kind {
		case "docker":
			var got []string
			for _, im := range ts.images {
				got = append(got, shortImage(im))
			}
			switch {
			case !hasLive && len(ts.images) == 0:
				ok++
			case len(ts.images) != 1:
				iv.violate("%s: live says %s, %d containers run: %v", s.name, want, len(ts.images), got)
			case !hasLive || digestOf(ts.images[0]) != live.ImageDigest:
				iv.violate("%s: live says %s, the container runs %s", s.name, want, got[0])
			default:
				ok++
			}
		case "swarm":
			ours := strings.Contains(ts.spec, "/"+f.cfg.imagePrefix)
			switch {
			case !hasLive && !ours:
				ok++
			case !hasLive || digestOf(ts.spec) != live.ImageDigest:
				iv.violate("%s: live says %s, the swarm service's spec is %s", s.name, want, shortImage(ts.spec))
			default:
				ok++
				running := false
				for _, im := range ts.images {
					running = running || digestOf(im) == live.ImageDigest
				}
				if !running {
					iv.notes = append(iv.notes, fmt.Sprintf("%s: spec matches, but no running task runs it yet (tasks: %v)", s.name, ts.images))
				}
			}
		}
	}
	iv.figure = fmt.Sprintf("%d of %d services run what /live says", ok, len(f.services))
	return iv
}

var attemptHeader = regexp.MustCompile(`^attempt (\d+) by `)

func (f chaosFacts) noStaleWrite() *invariant {
	iv := &invariant{n: 7, name: "no write from a stale worker accepted", status: "ok"}
	backwards, lost := 0, 0
	for _, d := range f.state.deps {
		highest, highestHeader := 0, 0
		for _, l := range f.state.logs[d.ID] {
			if f.state.hasAttempt {
				if l.Attempt < highest {
					backwards++
					if backwards <= 10 {
						iv.violate("deployment %d (%s): log line %d of attempt %d after attempt %d's: %q",
							d.ID, d.Service, l.ID, l.Attempt, highest, clip(l.Line))
					}
				}
				highest = max(highest, l.Attempt)
			}
			// Whatever the schema, the header each attempt writes first ("attempt N by owner")
			// must not name an earlier attempt than one already in the log.
			if m := attemptHeader.FindStringSubmatch(l.Line); m != nil {
				n, _ := strconv.Atoi(m[1])
				if n < highestHeader {
					iv.violate("deployment %d (%s): attempt %d's header (line %d) after attempt %d's", d.ID, d.Service, n, l.ID, highestHeader)
				}
				highestHeader = max(highestHeader, n)
			}
			// Without the attempt column, the one line that tells a stale write is the one a
			// worker writes once its heartbeat found another worker holding the item (the
			// wording of queue's errLeaseLost before migration 0002).
			if !f.state.hasAttempt && strings.Contains(l.Line, "lease lost to another worker") {
				lost++
				if lost <= 10 {
					iv.violate("deployment %d (%s): line %d written after another worker took the item: %q", d.ID, d.Service, l.ID, clip(l.Line))
				}
			}
		}
	}
	if !f.state.hasAttempt && iv.status == "ok" {
		iv.status = "not yet possible"
	}
	// A labelled counter has no series before its first increment: absent is 0, or a build
	// without it.
	refused := "no series (0, or not in this build)"
	if f.seen["slipway_stale_writes_refused_total"] {
		refused = strconv.FormatFloat(f.metrics["slipway_stale_writes_refused_total"], 'f', -1, 64)
	}
	column := fmt.Sprintf("deployment_logs.attempt absent (no migration 0002): attempt order not checked; "+
		"%d lines written after another worker took the item", lost)
	if f.state.hasAttempt {
		column = fmt.Sprintf("%d log lines of an earlier attempt after a later one's", backwards)
	}
	iv.figure = fmt.Sprintf("%s; stale writes refused (metric): %s", column, refused)
	return iv
}

func oneLine(s string) string { return clip(strings.Join(strings.Fields(s), " ")) }

func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}
