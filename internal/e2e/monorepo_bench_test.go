package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// monoStableFor is Slipway's default stability window (docker.stable_for): the servers run with
// it, and the scripts with -w wait it too.
const monoStableFor = 3 * time.Second

// BenchmarkMonorepoPush is the benchmark of issue #11 ("Deploys that cost less than a script"): a
// push to a monorepo that touches N services (SLIPWAY_BENCH_N, default 1,4,8), each a real build,
// deployed by Slipway with 4 and with 8 workers, and by scripts/monorepo-baseline.sh doing docker
// build, docker push and a container replacement (stop, rm, run on the host network) for each
// service, one after the other and all at once; and again by the script with -w 3s, which waits
// Slipway's default stability window after each start and checks the container still runs, the
// like-for-like script for the "N=1 with the default stability window". Every side
// deploys every push; the order alternates (Slipway first, then scripts first) so machine noise
// hits all alike; each figure is the median of SLIPWAY_BENCH_REPEAT (default 3) pushes. One
// iteration (-benchtime 1x) runs the whole matrix.
//
// Slipway's time runs from the webhook's 202 to the last deployment of the run finished
// (database timestamps), with the default stability window (docker.stable_for 3s); the script's
// from exec to exit. Each side's docker CLI is a wrapper that logs every invocation and its CPU
// time; the server's CPU comes from /proc (its own, and that of the children it waited for: docker,
// git), the script's from its rusage, dockerd's (with its containerd) from
// $SLIPWAY_TEST_SERVICES_DIR/pids/dockerd.pid when it is there. dockerd is shared: whatever else
// runs on it while a side deploys is counted to that side.
//
// Every push rebuilds: each service's Dockerfile COPYs a file that every push changes, a
// different one per side, and the run fails when a build was skipped or cached or a service's
// digest did not change. The targets (docker processes per deployment ≤ 4, Slipway's CPU
// per service ≤ the script's, N=8 ≤ 0.8× the sequential script and ≤ 1.2× the parallel one, N=1 ≤
// 1.2× the script with the default stability window) are reported against both kinds of script, a
// miss is not a failure.
//
// Environment: that of the e2e tests (scripts/services.sh's env); SLIPWAY_BENCH_SERVER_BIN as for
// BenchmarkDeployOverhead.
func BenchmarkMonorepoPush(b *testing.B) {
	ns := monoEnvInts(b, "SLIPWAY_BENCH_N", "1,4,8")
	repeat := monoEnvInts(b, "SLIPWAY_BENCH_REPEAT", "3")[0]
	e := needDocker(b)
	script, err := filepath.Abs("../../scripts/monorepo-baseline.sh")
	if err != nil {
		b.Fatal(err)
	}
	services := make([]string, slices.Max(ns))
	for i := range services {
		services[i] = fmt.Sprintf("svc%d", i)
	}
	prefix := "mono-" + e.id
	b.Cleanup(func() { monoCleanup(e, prefix) }) // registered first: runs after the servers stop
	engine := monoEngineProcs(b)
	if engine == nil {
		b.Log("no readable $SLIPWAY_TEST_SERVICES_DIR/pids/dockerd.pid: dockerd's CPU is not measured")
	}

	// The monorepo: for each side a directory of services, each a Dockerfile and the version
	// file it copies; one pipeline file per server, naming its directory, images and containers.
	repo := newGitRepo(b)
	dockerfile := fmt.Sprintf("FROM %s\nCOPY version /version\n"+
		"CMD [\"sh\", \"-c\", \"trap 'exit 0' TERM; sleep 2147483647 & wait\"]\n", e.base)
	dirs := []string{"w4", "w8", "seq", "par", "seqw", "parw"}
	change := func(push int, n int) string {
		for _, dir := range dirs {
			for _, svc := range services[:n] {
				repo.write(dir+"/"+svc+"/version", fmt.Sprintf("%s %s push %d %s\n", dir, svc, push, e.id))
			}
		}
		return repo.commit(fmt.Sprintf("push %d: %d services", push, n))
	}
	for _, dir := range dirs {
		for _, svc := range services {
			repo.write(dir+"/"+svc+"/Dockerfile", dockerfile)
		}
	}
	bin, src := benchBinary(b), monoServerSource()
	w4 := newMonoSlipway(b, e, bin, repo, "w4", 4, prefix, services, engine)
	w8 := newMonoSlipway(b, e, bin, repo, "w8", 8, prefix, services, engine)
	seq := newMonoScript(b, e, script, repo, "seq", false, 0, prefix, services, engine)
	par := newMonoScript(b, e, script, repo, "par", true, 0, prefix, services, engine)
	seqw := newMonoScript(b, e, script, repo, "seqw", false, monoStableFor, prefix, services, engine)
	parw := newMonoScript(b, e, script, repo, "parw", true, monoStableFor, prefix, services, engine)
	scripts := []*monoScript{seq, par, seqw, parw}

	// Warm-up: every service of every side once, to fill the git cache, push the base layer to
	// every image repository, and give each container its first version. The script then builds
	// the way the server chose to (BuildKit or not).
	prev := change(0, len(services))
	w4.prev, w8.prev = zeroSHA, zeroSHA
	w4.deploy(b, prev, services)
	w8.deploy(b, prev, services)
	bk := w4.monoBuildKit()
	if bk == "" {
		b.Fatalf("the server's log does not say which build mode it chose:\n%s", w4.srv.logs.String())
	}
	for _, sc := range scripts {
		sc.buildKit = bk
		sc.deploy(b, prev, services)
	}

	loadStart := monoLoad()
	var samples []monoSample
	push := 0
	for b.Loop() {
		for _, n := range ns {
			for range repeat {
				push++
				sha := change(push, n)
				order := []monoSide{w4, seq, w8, par, seqw, parw}
				if push%2 == 0 {
					order = []monoSide{seqw, parw, seq, w4, par, w8}
				}
				for _, side := range order {
					s := side.deploy(b, sha, services[:n])
					fmt.Fprintf(os.Stderr, "monorepo: push %d %s\n", push, s)
					samples = append(samples, s)
				}
			}
		}
	}
	// The whole report goes to standard output: a benchmark's log keeps ten lines.
	head := fmt.Sprintf("server %s; DOCKER_BUILDKIT=%s on both sides; %d pushes per figure; "+
		"load average (1, 5, 15 min) at the start %s, at the end %s", src, bk, repeat, loadStart, monoLoad())
	full, short := monoReport(b, ns, samples)
	fmt.Printf("\nBenchmarkMonorepoPush: %s\n", head)
	for _, s := range samples {
		fmt.Printf("%s\n", s)
	}
	fmt.Printf("\n%s\n", full)
	b.Logf("%s\n%s", head, short)
}

func newMonoSlipway(b *testing.B, e *dockerEnv, bin string, repo *gitRepo, label string, workers int,
	prefix string, services []string, engine []int) *monoSlipway {
	b.Helper()
	var pipeline strings.Builder
	pipeline.WriteString("services:\n")
	for _, svc := range services {
		fmt.Fprintf(&pipeline, `  %[1]s:
    paths: [%[2]s/%[1]s/**]
    context: %[2]s/%[1]s
    image: %[3]s/%[4]s/%[2]s-%[1]s
    environments:
      production: {branch: main, docker: {container: %[4]s-%[2]s-%[1]s}}
`, svc, label, e.registry, prefix)
	}
	file := ".slipway-" + label + ".yml"
	repo.write(file, pipeline.String())
	wrap := newMonoWrapper(b, filepath.Join(b.TempDir(), "docker-"+label), e.cli)
	d := newDB(b)
	env := append(e.serverEnv(repo.dir),
		"SLIPWAY_LOG_LEVEL=info", "SLIPWAY_QUEUE_POLL_INTERVAL=2s", // as launchBenchServer
		"SLIPWAY_DOCKER_BINARY="+wrap.path,
		"SLIPWAY_WORKERS="+strconv.Itoa(workers),
		"SLIPWAY_PIPELINE_FILE="+file,
		"SLIPWAY_DOCKER_STABLE_FOR="+monoStableFor.String(), // the default, whatever the environment says
		// The repository is a local path; a server that does not know the setting ignores it.
		"SLIPWAY_GIT_ALLOW_INSECURE_URLS=true",
	)
	srv := launch(b, bin, d.url, "/readyz", env...)
	return &monoSlipway{label: fmt.Sprintf("slipway-%dw", workers), srv: srv, d: d, wrap: wrap,
		engine: engine, digests: map[string]string{}}
}

func newMonoScript(b *testing.B, e *dockerEnv, script string, repo *gitRepo, dir string, parallel bool,
	window time.Duration, prefix string, services []string, engine []int) *monoScript {
	b.Helper()
	label := "script-seq"
	if parallel {
		label = "script-par"
	}
	if window > 0 {
		label += "-" + window.String()
	}
	s := &monoScript{label: label, script: script, parallel: parallel, window: window, repoDir: repo.dir, dir: dir,
		imagePrefix:     e.registry + "/" + prefix + "/" + dir + "-",
		containerPrefix: prefix + "-" + dir + "-",
		wrap:            newMonoWrapper(b, filepath.Join(b.TempDir(), "docker-"+dir), e.cli),
		engine:          engine, digests: map[string]string{}}
	// The script replaces containers; the first ones are the base image, doing what the services do.
	for _, svc := range services {
		e.mustDocker("run", "-d", "--name", s.containerPrefix+svc, "--network", "host", e.base,
			"sh", "-c", "trap 'exit 0' TERM; sleep 2147483647 & wait")
	}
	return s
}

// monoCleanup removes the benchmark's containers and images; the registry keeps its pushes.
func monoCleanup(e *dockerEnv, prefix string) {
	if ids, err := e.docker("ps", "-aq", "--filter", "name="+prefix+"-"); err == nil && ids != "" {
		_, _ = e.docker(append([]string{"rm", "-f"}, strings.Fields(ids)...)...)
	}
	if ids, err := e.docker("images", "-q", "--filter", "reference="+e.registry+"/"+prefix+"/*"); err == nil && ids != "" {
		_, _ = e.docker(append([]string{"rmi", "-f"}, slices.Compact(slices.Sorted(slices.Values(strings.Fields(ids))))...)...)
	}
}

// monoEnvInts reads a comma-separated list of positive integers from the environment.
func monoEnvInts(b *testing.B, key, def string) []int {
	b.Helper()
	v := os.Getenv(key)
	if v == "" {
		v = def
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 64 {
			b.Fatalf("%s=%q: want positive integers (at most 64), comma-separated", key, v)
		}
		out = append(out, n)
	}
	return out
}

func monoLoad() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(string(raw))[:3], " ")
}

// monoServerSource says which server was measured: SLIPWAY_BENCH_SERVER_BIN, or the working tree
// (benchBinary builds it) at its HEAD, and whether it held changes not committed.
func monoServerSource() string {
	if bin := os.Getenv("SLIPWAY_BENCH_SERVER_BIN"); bin != "" {
		return bin
	}
	head, err := exec.Command("git", "-C", "../..", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "of the working tree"
	}
	src := "of the working tree at " + strings.TrimSpace(string(head))
	if dirty, err := exec.Command("git", "-C", "../..", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(dirty) > 0 {
		src += " with uncommitted changes"
	}
	return src
}
