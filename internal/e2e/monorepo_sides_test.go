package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/deploy"
)

// The two ways BenchmarkMonorepoPush deploys a push: a Slipway server (one per worker count, each
// on a database of its own) and scripts/monorepo-baseline.sh (sequential or parallel). Each side
// builds its own directory of the monorepo into its own images and containers, so that no side
// ever finds another's build in the cache.

// monoSide deploys services at sha and says what it cost.
type monoSide interface {
	deploy(b *testing.B, sha string, services []string) monoSample
}

// monoSample is one side's deploy of one push.
type monoSample struct {
	side  string
	n     int           // services deployed
	total time.Duration // Slipway: 202 → the last deployment finished; script: exec → exit
	// live is until every new container was started, before any stability window: Slipway's from
	// its deployments' logs; the bare script's is its total (it stops there), -1 when unknown.
	live  time.Duration
	procs monoProcs // the docker CLI processes
	// own is the CPU of the side's own process: the server's (utime+stime), or the script's
	// shell, git and tar (its tree less the docker processes).
	own time.Duration
	// all is the CPU of every process of the side: the server and every child it waited for
	// (docker CLI, git, the wrappers' bash), or the script and all of its processes.
	all    time.Duration
	engine time.Duration // dockerd and its containerd, -1 when unknown
	stages string        // Slipway: where the time went
}

func (s monoSample) perService(d time.Duration) float64 { return d.Seconds() / float64(s.n) }

func (s monoSample) String() string {
	eng := "-"
	if s.engine >= 0 {
		eng = fmt.Sprintf("%.2f", s.engine.Seconds())
	}
	line := fmt.Sprintf("%-12s N=%d %7.2fs  %s  own %.2f  all %.2f  dockerd %s CPU-s",
		s.side, s.n, s.total.Seconds(), s.procs, s.own.Seconds(), s.all.Seconds(), eng)
	if s.stages != "" {
		line += "\n             " + s.stages
	}
	return line
}

// monoSlipway is a slipway serve process with its own database, pipeline file and docker wrapper.
type monoSlipway struct {
	label   string
	srv     *server
	d       *db
	wrap    *monoWrapper
	engine  []int
	prev    string            // the last commit pushed to it
	digests map[string]string // service → the digest it put live
}

func (s *monoSlipway) deploy(b *testing.B, sha string, services []string) monoSample {
	b.Helper()
	if idle := s.wrap.since(b); idle.count > 0 {
		b.Logf("%s ran docker while idle: %s", s.label, idle)
	}
	pid := s.srv.cmd.Process.Pid
	cpu0, err := monoReadProcCPU(pid)
	if err != nil {
		b.Fatal(err)
	}
	eng0 := monoEngineCPU(s.engine)
	runID := s.srv.push("acme/app", "main", s.prev, sha, "bench")
	accepted := time.Now()
	if runID == 0 {
		b.Fatalf("%s: the webhook queued no run", s.label)
	}
	r := s.d.waitRun(runID, 20*time.Minute)
	eng1 := monoEngineCPU(s.engine)
	cpu1, err := monoReadProcCPU(pid)
	if err != nil {
		b.Fatal(err)
	}
	procs := s.wrap.since(b)
	s.prev = sha

	if r.Status != deploy.StatusPlanned || len(r.Deployments) != len(services) {
		b.Fatalf("%s: run %d: %s %q, %d deployments, want %d", s.label, runID, r.Status, r.Error, len(r.Deployments), len(services))
	}
	var last, lastLive time.Time
	var queued, build, push, rollout []float64
	first, slotWaits := r.Deployments[0].CreatedAt, 0
	for _, dep := range r.Deployments {
		log := s.d.logs(dep.ID)
		if dep.Status != deploy.StatusSucceeded || dep.FinishedAt == nil {
			b.Fatalf("%s: deployment %d of %s: %s %q\n%s", s.label, dep.ID, dep.Service, dep.Status, dep.Error, log)
		}
		if !slices.Contains(services, dep.Service) {
			b.Fatalf("%s: run %d deployed %s, not one of %v", s.label, runID, dep.Service, services)
		}
		if strings.Contains(log, "build skipped") || !strings.Contains(log, "built in") || monoCachedCopy(log) {
			b.Fatalf("%s: deployment %d of %s did not really build:\n%s", s.label, dep.ID, dep.Service, log)
		}
		if old := s.digests[dep.Service]; old == dep.ImageDigest {
			b.Fatalf("%s: deployment %d of %s put live the digest it had before, %s", s.label, dep.ID, dep.Service, old)
		}
		s.digests[dep.Service] = dep.ImageDigest
		if dep.FinishedAt.After(last) {
			last = *dep.FinishedAt
		}
		if dep.CreatedAt.Before(first) {
			first = dep.CreatedAt
		}
		if strings.Contains(log, "waiting for a build slot") {
			slotWaits++
		}
		if at := s.d.liveAt(dep.ID); at.After(lastLive) {
			lastLive = at
		}
		if dep.ClaimedAt != nil && dep.PushingAt != nil && dep.DeployingAt != nil {
			queued = append(queued, dep.ClaimedAt.Sub(dep.CreatedAt).Seconds())
			build = append(build, dep.PushingAt.Sub(*dep.ClaimedAt).Seconds())
			push = append(push, dep.DeployingAt.Sub(*dep.PushingAt).Seconds())
			rollout = append(rollout, dep.FinishedAt.Sub(*dep.DeployingAt).Seconds())
		}
	}
	cpu := cpu1.sub(cpu0)
	stages := fmt.Sprintf("202 → planned %.2fs; per deployment, median (max): queued %s, claimed → pushing %s "+
		"(%d waited for a build slot), push %s, rollout %s",
		first.Sub(accepted).Seconds(), monoMedMax(queued), monoMedMax(build), slotWaits, monoMedMax(push), monoMedMax(rollout))
	live := time.Duration(-1)
	if !lastLive.IsZero() {
		live = lastLive.Sub(accepted)
	}
	return monoSample{side: s.label, n: len(services), total: last.Sub(accepted), live: live, procs: procs,
		own: cpu.own, all: cpu.own + cpu.children, engine: monoDelta(eng0, eng1), stages: stages}
}

// monoBuildKit is the build mode the server chose on its first build, as 0 or 1 for
// DOCKER_BUILDKIT, or "" when its log does not say.
func (s *monoSlipway) monoBuildKit() string {
	m := regexp.MustCompile(`msg="docker build mode chosen".*? buildkit=(true|false)`).FindStringSubmatch(s.srv.logs.String())
	switch {
	case m == nil:
		return ""
	case m[1] == "true":
		return "1"
	default:
		return "0"
	}
}

// monoScript runs scripts/monorepo-baseline.sh on the services of dir, through its own wrapper.
type monoScript struct {
	label           string
	script          string
	parallel        bool
	window          time.Duration // -w: how long each new container must stay up, 0 for no check
	repoDir, dir    string
	imagePrefix     string
	containerPrefix string
	buildKit        string // BASELINE_BUILDKIT: the server's choice
	wrap            *monoWrapper
	engine          []int
	digests         map[string]string
}

var monoDigestRE = regexp.MustCompile(`(?m)^monorepo-baseline: (\S+) digest (sha256:[0-9a-f]{64})$`)

func (s *monoScript) deploy(b *testing.B, sha string, services []string) monoSample {
	b.Helper()
	s.wrap.since(b)
	args := []string{s.script}
	if s.parallel {
		args = append(args, "-p")
	}
	if s.window > 0 {
		args = append(args, "-w", strconv.FormatFloat(s.window.Seconds(), 'f', -1, 64))
	}
	args = append(args, s.repoDir, sha, s.dir, s.imagePrefix, s.containerPrefix)
	args = append(args, services...)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", args...)
	cmd.Env = append(os.Environ(), "SLIPWAY_TEST_DOCKER_CLI="+s.wrap.path, "BASELINE_BUILDKIT="+s.buildKit)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	eng0 := monoEngineCPU(s.engine)
	start := time.Now()
	err := cmd.Run()
	total := time.Since(start)
	eng1 := monoEngineCPU(s.engine)
	procs := s.wrap.since(b)
	if err != nil {
		b.Fatalf("%s: %s: %v\n%s", s.label, s.script, err, out.String())
	}
	// A fully cached build gives the image it gave before (the script adds no label that changes
	// per commit), so an unchanged digest is the check: it holds for both modes, where reading
	// BuildKit's step numbers out of several builds' output does not.
	output := out.String()
	got := map[string]string{}
	for _, m := range monoDigestRE.FindAllStringSubmatch(output, -1) {
		got[m[1]] = m[2]
	}
	for _, svc := range services {
		d, ok := got[svc]
		if !ok {
			b.Fatalf("%s: no digest for %s:\n%s", s.label, svc, output)
		}
		if d == s.digests[svc] {
			b.Fatalf("%s: %s pushed the digest it had before, %s:\n%s", s.label, svc, d, output)
		}
		s.digests[svc] = d
	}
	all := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	live := total
	if s.window > 0 {
		live = -1
	}
	return monoSample{side: s.label, n: len(services), total: total, live: live, procs: procs,
		own: all - procs.cpu, all: all, engine: monoDelta(eng0, eng1)}
}

func monoMedMax(v []float64) string {
	if len(v) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fs (%.2fs)", median(v), slices.Max(v))
}

func monoDelta(before, after time.Duration) time.Duration {
	if before < 0 || after < 0 {
		return -1
	}
	return after - before
}

var (
	monoBuildKitStartRE  = regexp.MustCompile(`#\d+ \[internal\] load build definition`)
	monoBuildKitCopyRE   = regexp.MustCompile(`#(\d+) \[[^\]]*\] COPY `)
	monoBuildKitCachedRE = regexp.MustCompile(`#(\d+) CACHED`)
)

// monoCachedCopy says whether a build's output shows a COPY step taken from the cache: the
// classic builder's "Using cache" (its FROM step never says it, so any is the COPY or later),
// BuildKit's "#N CACHED" for a step N that copies. The output may hold several builds one after
// the other (the sequential script's): BuildKit numbers the steps of each anew.
func monoCachedCopy(output string) bool {
	if strings.Contains(output, "Using cache") {
		return true
	}
	copies := map[string]bool{}
	for line := range strings.Lines(output) {
		if monoBuildKitStartRE.MatchString(line) {
			clear(copies)
		}
		if m := monoBuildKitCopyRE.FindStringSubmatch(line); m != nil {
			copies[m[1]] = true
		}
		if m := monoBuildKitCachedRE.FindStringSubmatch(line); m != nil && copies[m[1]] {
			return true
		}
	}
	return false
}
