package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/slipway-dev/slipway/internal/deploy"
)

// benchMonitor is the swarm update monitor both sides are asked for. The server's is read back from
// the service after its first deploy and handed to the script, so the two stay alike even on a
// server that ignores SLIPWAY_DOCKER_SWARM_UPDATE_MONITOR (and monitors for its default 5s).
const benchMonitor = "1s"

// BenchmarkDeployOverhead measures what Slipway adds to a deploy: the time from the webhook's 202
// to the deployment being succeeded, for a trivial swarm service with a warm cache, against
// scripts/deploy-baseline.sh doing the same docker build, docker push and docker service update.
// The target is Slipway ≤ 1.10× the script; a miss is reported, not failed.
//
// Each iteration commits one change to the two services' small files, then deploys that commit
// both ways, in alternating order, so that machine noise hits both alike. Each side builds its own
// file (app/version for Slipway, baseline/version for the script) into its own image and swarm
// service: with one file, whichever built second would find its COPY layer in the build cache.
//
// Metrics: slipway-s/op and script-s/op are medians, ratio is their quotient; ns/op is both
// deploys together plus the harness's own work, not a number to read. The log has each
// iteration's stages: Slipway's from the database timestamps, the script's from its own marks.
//
// Environment: that of the e2e tests (scripts/services.sh's env). SLIPWAY_BENCH_SERVER_BIN names
// the slipway binary to run; without it one is built, without -race (the tests' binary has the
// race detector, which would slow the server down).
func BenchmarkDeployOverhead(b *testing.B) {
	e := needDocker(b)
	d := newDB(b)
	conn, err := pgx.Connect(context.Background(), d.url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close(context.Background()) })
	script, err := filepath.Abs("../../scripts/deploy-baseline.sh")
	if err != nil {
		b.Fatal(err)
	}

	slipwaySvc, scriptSvc := "bench-slipway-"+e.id, "bench-script-"+e.id
	for _, svc := range []string{slipwaySvc, scriptSvc} {
		e.mustDocker("service", "create", "--detach", "--name", svc, "--network", "host",
			"--stop-grace-period", "1s", e.base, "sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done")
		b.Cleanup(func() { _, _ = e.docker("service", "rm", svc) })
	}
	slipwayImage, scriptImage := e.registry+"/bench-"+e.id+"/slipway", e.registry+"/bench-"+e.id+"/script"

	repo := newGitRepo(b)
	repo.write(".slipway.yml", fmt.Sprintf(`services:
  app:
    paths: [app/**]
    context: app
    image: %s
    environments:
      production: {branch: main, swarm: {service: %s}}
`, slipwayImage, slipwaySvc))
	// busybox sleep ignores SIGTERM; the trap ends the task once the current sleep 1 returns.
	dockerfile := fmt.Sprintf("FROM %s\nCOPY version /version\nCMD [\"sh\", \"-c\", \"trap 'exit 0' TERM; while true; do sleep 1; done\"]\n", e.base)
	repo.write("app/Dockerfile", dockerfile)
	repo.write("baseline/Dockerfile", dockerfile)
	change := func(n int) string {
		repo.write("app/version", fmt.Sprintf("slipway %d %s\n", n, e.id))
		repo.write("baseline/version", fmt.Sprintf("script %d %s\n", n, e.id))
		return repo.commit(fmt.Sprintf("version %d", n))
	}

	srv := launchBenchServer(b, d.url, append(e.serverEnv(repo.dir), "SLIPWAY_DOCKER_SWARM_UPDATE_MONITOR="+benchMonitor)...)
	slipway := func(before, after string) slipwayTimes {
		b.Helper()
		runID := srv.push("acme/app", "main", before, after, "bench")
		accepted := time.Now()
		return slipwayStages(b, d, conn, runID, accepted)
	}

	// Warm-up: the first deploy fills the git cache and pushes the base layer; after it, the
	// server's monitor is known and the script gets the same one.
	prev := change(0)
	slipway(zeroSHA, prev)
	monitor := e.mustDocker("service", "inspect", "--format", "{{.Spec.UpdateConfig.Monitor}}", slipwaySvc)
	if _, err := time.ParseDuration(monitor); err != nil {
		b.Fatalf("the update monitor of %s is %q: %v", slipwaySvc, monitor, err)
	}
	if monitor != benchMonitor {
		b.Logf("the server ignored SLIPWAY_DOCKER_SWARM_UPDATE_MONITOR=%s: its update monitor is %s, and so is the script's", benchMonitor, monitor)
	}
	baseline := func(sha string) scriptTimes {
		b.Helper()
		return runBaseline(b, script, repo.dir, sha, scriptImage, scriptSvc, monitor)
	}
	baseline(prev)

	var slips []slipwayTimes
	var scripts []scriptTimes
	for i := 0; b.Loop(); i++ {
		sha := change(i + 1)
		var s slipwayTimes
		var c scriptTimes
		if i%2 == 0 {
			s = slipway(prev, sha)
			c = baseline(sha)
		} else {
			c = baseline(sha)
			s = slipway(prev, sha)
		}
		prev = sha
		slips = append(slips, s)
		scripts = append(scripts, c)
	}

	b.Logf("update monitor %s on both sides; times in seconds; order alternates, Slipway first on odd iterations", monitor)
	b.Logf("%4s %8s %8s %6s | slipway: %7s %7s %7s %7s %7s %7s | script: %7s %7s %7s %7s %7s",
		"iter", "slipway", "script", "ratio",
		"pick-r", "plan", "pick-d", "build", "push", "rollout",
		"start", "checkout", "build", "push", "update")
	for i, s := range slips {
		c := scripts[i]
		b.Logf("%4d %8.3f %8.3f %6.3f | %16.3f %7.3f %7.3f %7.3f %7.3f %7.3f | %15.3f %7.3f %7.3f %7.3f %7.3f",
			i+1, s.total.Seconds(), c.total.Seconds(), s.total.Seconds()/c.total.Seconds(),
			s.pickRun.Seconds(), s.plan.Seconds(), s.pickDeployment.Seconds(), s.build.Seconds(), s.push.Seconds(), s.rollout.Seconds(),
			c.start.Seconds(), c.checkout.Seconds(), c.build.Seconds(), c.push.Seconds(), c.update.Seconds())
	}
	med := func(f func(int) time.Duration) float64 {
		v := make([]float64, len(slips))
		for i := range v {
			v[i] = f(i).Seconds()
		}
		return median(v)
	}
	slipMed := med(func(i int) time.Duration { return slips[i].total })
	scriptMed := med(func(i int) time.Duration { return scripts[i].total })
	b.Logf("%4s %8.3f %8.3f %6.3f | %16.3f %7.3f %7.3f %7.3f %7.3f %7.3f | %15.3f %7.3f %7.3f %7.3f %7.3f",
		"med", slipMed, scriptMed, slipMed/scriptMed,
		med(func(i int) time.Duration { return slips[i].pickRun }),
		med(func(i int) time.Duration { return slips[i].plan }),
		med(func(i int) time.Duration { return slips[i].pickDeployment }),
		med(func(i int) time.Duration { return slips[i].build }),
		med(func(i int) time.Duration { return slips[i].push }),
		med(func(i int) time.Duration { return slips[i].rollout }),
		med(func(i int) time.Duration { return scripts[i].start }),
		med(func(i int) time.Duration { return scripts[i].checkout }),
		med(func(i int) time.Duration { return scripts[i].build }),
		med(func(i int) time.Duration { return scripts[i].push }),
		med(func(i int) time.Duration { return scripts[i].update }))
	if testing.Verbose() && len(slips) > 0 {
		b.Logf("the last Slipway deployment's log, seconds after the 202:\n%s", slips[len(slips)-1].log)
		b.Logf("the last script's output:\n%s", scripts[len(scripts)-1].output)
	}
	b.ReportMetric(slipMed, "slipway-s/op")
	b.ReportMetric(scriptMed, "script-s/op")
	b.ReportMetric(slipMed/scriptMed, "ratio")
}

// slipwayTimes splits one Slipway deploy, from the 202 to the deployment's finished_at.
type slipwayTimes struct {
	total          time.Duration
	pickRun        time.Duration // 202 → the run claimed by a planner (can be < 0: the NOTIFY beats the 202)
	plan           time.Duration // run claimed → deployment queued: git fetch, pipeline file, changed paths
	pickDeployment time.Duration // deployment queued → claimed
	build          time.Duration // claimed → pushing: checkout, inputs hash, registry lookup, docker build
	push           time.Duration // pushing → deploying: two docker pushes, each checked against the registry
	rollout        time.Duration // deploying → finished: docker service update and Slipway's checks
	log            string
}

// slipwayStages waits for the run's one deployment to succeed and reads its stage timestamps.
func slipwayStages(b *testing.B, d *db, conn *pgx.Conn, runID int64, accepted time.Time) slipwayTimes {
	b.Helper()
	if runID == 0 {
		b.Fatal("the webhook queued no run")
	}
	r := d.waitRun(runID, 5*time.Minute)
	if r.Status != deploy.StatusPlanned || len(r.Deployments) != 1 {
		b.Fatalf("run %d: %s %q, %d deployments", runID, r.Status, r.Error, len(r.Deployments))
	}
	dep := r.Deployments[0]
	if dep.Status != deploy.StatusSucceeded || dep.ClaimedAt == nil || dep.PushingAt == nil ||
		dep.DeployingAt == nil || dep.FinishedAt == nil {
		b.Fatalf("deployment %d: %s %q\n%s", dep.ID, dep.Status, dep.Error, d.logs(dep.ID))
	}
	// deploy.Run does not carry the run's claimed_at.
	var runClaimed time.Time
	if err := conn.QueryRow(context.Background(), `SELECT claimed_at FROM runs WHERE id = $1`, runID).Scan(&runClaimed); err != nil {
		b.Fatalf("reading run %d's claimed_at: %v", runID, err)
	}
	lines, err := d.st.DeploymentLogs(context.Background(), dep.ID, 0, 10000)
	if err != nil {
		b.Fatal(err)
	}
	var log strings.Builder
	for _, l := range lines {
		fmt.Fprintf(&log, "%7.3f %s\n", l.CreatedAt.Sub(accepted).Seconds(), l.Line)
	}
	return slipwayTimes{
		total:          dep.FinishedAt.Sub(accepted),
		pickRun:        runClaimed.Sub(accepted),
		plan:           dep.CreatedAt.Sub(runClaimed),
		pickDeployment: dep.ClaimedAt.Sub(dep.CreatedAt),
		build:          dep.PushingAt.Sub(*dep.ClaimedAt),
		push:           dep.DeployingAt.Sub(*dep.PushingAt),
		rollout:        dep.FinishedAt.Sub(*dep.DeployingAt),
		log:            log.String(),
	}
}

// scriptTimes splits one run of scripts/deploy-baseline.sh by the marks it prints.
type scriptTimes struct {
	total    time.Duration // exec → exit
	start    time.Duration // exec → the script's first line
	checkout time.Duration
	build    time.Duration
	push     time.Duration
	update   time.Duration
	output   string
}

func runBaseline(b *testing.B, script, repoDir, sha, image, service, monitor string) scriptTimes {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", script, repoDir, sha, image, service, "baseline")
	cmd.Env = append(os.Environ(), "BASELINE_UPDATE_MONITOR="+monitor)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	total := time.Since(start)
	if err != nil {
		b.Fatalf("%s: %v\n%s", script, err, out.String())
	}
	output := out.String()
	marks := map[string]time.Time{}
	sc := bufio.NewScanner(strings.NewReader(output))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 || f[0] != "deploy-baseline:" {
			continue
		}
		sec, err := strconv.ParseFloat(f[2], 64)
		if err != nil {
			b.Fatalf("%s: bad mark %q", script, sc.Text())
		}
		marks[f[1]] = time.Unix(0, int64(sec*1e9))
	}
	for _, m := range []string{"start", "checkout", "build", "push", "update"} {
		if marks[m].IsZero() {
			b.Fatalf("%s printed no %q mark:\n%s", script, m, output)
		}
	}
	return scriptTimes{
		total:    total,
		start:    marks["start"].Sub(start),
		checkout: marks["checkout"].Sub(marks["start"]),
		build:    marks["build"].Sub(marks["checkout"]),
		push:     marks["push"].Sub(marks["build"]),
		update:   marks["update"].Sub(marks["push"]),
		output:   output,
	}
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(v))
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

// benchBinary is SLIPWAY_BENCH_SERVER_BIN, or cmd/slipway built without the race detector.
func benchBinary(b *testing.B) string {
	b.Helper()
	if bin := os.Getenv("SLIPWAY_BENCH_SERVER_BIN"); bin != "" {
		return bin
	}
	bin := filepath.Join(b.TempDir(), "slipway")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/slipway").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// launchBenchServer runs slipway serve as production would: no race detector, info logs, the
// default queue poll interval (NOTIFY wakes the workers).
func launchBenchServer(b *testing.B, dbURL string, env ...string) *server {
	b.Helper()
	return launch(b, benchBinary(b), dbURL, "/readyz",
		append([]string{"SLIPWAY_LOG_LEVEL=info", "SLIPWAY_QUEUE_POLL_INTERVAL=2s"}, env...)...)
}
