package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// replicaState is what the chaos driver did to a replica last.
type replicaState int

const (
	replicaStarting replicaState = iota // started, /readyz not yet 200
	replicaUp
	replicaPaused // SIGSTOP, itself and every descendant
	replicaDown   // killed or exited, waiting to be started again
	replicaStopped
)

// chaosReplica is one `slipway serve` under a supervisor that restarts it whenever it exits, as
// systemd's Restart=always would: after the delay the chaos driver chose for a kill, after a
// second for an exit of its own.
type chaosReplica struct {
	n      int
	bin    string
	addr   string
	env    []string
	logDir string

	mu       sync.Mutex
	state    replicaState
	cmd      *exec.Cmd
	frozen   []int // pids stopped by pause
	expected bool  // the next exit is our SIGKILL
	delay    time.Duration
	starts   int
	exits    []string // exits we did not cause, with the end of the log
	scraped  map[string]float64
	changed  chan struct{} // closed and replaced on every state change
}

func newChaosReplica(n int, bin, addr, logDir string, env []string) *chaosReplica {
	return &chaosReplica{n: n, bin: bin, addr: addr, env: env, logDir: logDir,
		scraped: map[string]float64{}, changed: make(chan struct{})}
}

func (r *chaosReplica) URL() string { return "http://" + r.addr }

// pid is the current incarnation's process id.
func (r *chaosReplica) pid() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil || r.cmd.Process == nil {
		return 0
	}
	return r.cmd.Process.Pid
}

func (r *chaosReplica) setState(s replicaState) {
	r.state = s
	close(r.changed)
	r.changed = make(chan struct{})
}

func (r *chaosReplica) State() (replicaState, <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state, r.changed
}

// logPath is the log of one incarnation.
func (r *chaosReplica) logPath(start int) string {
	return filepath.Join(r.logDir, fmt.Sprintf("replica%d.%02d.log", r.n, start))
}

// supervise runs the replica until ctx ends.
func (r *chaosReplica) supervise(ctx context.Context, wg *sync.WaitGroup) {
	defer wg.Done()
	for ctx.Err() == nil {
		exited, err := r.spawn()
		if err != nil {
			r.recordExit(fmt.Sprintf("could not start: %v", err))
		} else {
			gone, err := r.awaitReady(ctx, exited)
			if !gone {
				select {
				case err = <-exited:
				case <-ctx.Done():
					r.terminate(exited)
					return
				}
			}
			r.mu.Lock()
			expected := r.expected
			r.expected = false
			r.setState(replicaDown)
			r.mu.Unlock()
			if !expected {
				r.recordExit(fmt.Sprintf("exited on its own (%v); end of %s:\n%s",
					err, r.logPath(r.starts), tail(r.logPath(r.starts), 15)))
			}
		}
		r.mu.Lock()
		delay := r.delay
		r.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}

func (r *chaosReplica) recordExit(what string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.exits = append(r.exits, fmt.Sprintf("replica %d start %d: %s", r.n, r.starts, what))
	if r.state != replicaDown {
		r.setState(replicaDown)
	}
}

func (r *chaosReplica) spawn() (<-chan error, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.starts++
	f, err := os.Create(r.logPath(r.starts))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(r.bin, "serve")
	cmd.Env = append(append(os.Environ(), r.env...), "SLIPWAY_LISTEN_ADDR="+r.addr)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	exited := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		f.Close()
		exited <- err
	}()
	r.cmd = cmd
	r.delay = time.Second
	r.setState(replicaStarting)
	return exited, nil
}

// awaitReady polls /readyz until it answers 200 (state up), the process exits (gone, with its
// exit error), or ctx ends. Readiness can take long while PostgreSQL restarts; the process is
// given all the time it needs.
func (r *chaosReplica) awaitReady(ctx context.Context, exited <-chan error) (gone bool, exitErr error) {
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := client.Get(r.URL() + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				r.mu.Lock()
				if r.state == replicaStarting {
					r.setState(replicaUp)
				}
				r.mu.Unlock()
				return false, nil
			}
		}
		select {
		case err := <-exited:
			return true, err
		case <-ctx.Done():
			return false, nil
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// kill sends SIGKILL to a replica that is up; it comes back after delay. It reports false when the
// replica was not up. Counters are scraped first: they die with the process.
func (r *chaosReplica) kill(delay time.Duration) bool {
	r.mu.Lock()
	if r.state != replicaUp {
		r.mu.Unlock()
		return false
	}
	r.mu.Unlock()
	r.scrape()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state != replicaUp {
		return false
	}
	r.expected = true
	r.delay = delay
	r.setState(replicaDown)
	_ = r.cmd.Process.Signal(syscall.SIGKILL)
	return true
}

// pause stops the replica and every process under it (docker and git children run in their own
// process groups), as a frozen VM would: nothing of it runs, but the engine finishes what it was
// asked. It reports false when the replica was not up.
func (r *chaosReplica) pause() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state != replicaUp {
		return false
	}
	pid := r.cmd.Process.Pid
	_ = syscall.Kill(pid, syscall.SIGSTOP)
	r.frozen = append([]int{pid}, descendants(pid)...)
	for _, p := range r.frozen[1:] {
		_ = syscall.Kill(p, syscall.SIGSTOP)
	}
	r.setState(replicaPaused)
	return true
}

// resume continues what pause stopped.
func (r *chaosReplica) resume() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state != replicaPaused {
		return
	}
	pids := append(r.frozen, descendants(r.cmd.Process.Pid)...)
	for i := len(pids) - 1; i >= 0; i-- {
		_ = syscall.Kill(pids[i], syscall.SIGCONT)
	}
	r.frozen = nil
	r.setState(replicaUp)
}

// terminate stops the replica for good at the end of the test.
func (r *chaosReplica) terminate(exited <-chan error) {
	r.mu.Lock()
	if r.state == replicaPaused {
		r.mu.Unlock()
		r.resume()
		r.mu.Lock()
	}
	r.expected = true
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	r.mu.Unlock()
	select {
	case <-exited:
	case <-time.After(15 * time.Second):
		_ = r.cmd.Process.Signal(syscall.SIGKILL)
		<-exited
	}
	r.mu.Lock()
	r.setState(replicaStopped)
	r.mu.Unlock()
}

// scrape reads the replica's metrics and adds them to what its earlier incarnations counted (only
// the counters' sums mean anything). A metric the build does not export is simply absent.
func (r *chaosReplica) scrape() {
	got := readMetrics(r.URL())
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, v := range got {
		r.scraped[k] += v
	}
}

// readMetrics sums each metric family of /metrics over its labels; nil on a failed scrape.
func readMetrics(base string) map[string]float64 {
	client := &http.Client{Timeout: 3 * time.Second}
	resp, err := client.Get(base + "/metrics")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil // refused (a 401 is no scrape): as failed as a dropped connection
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 8<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		name, rest, _ := strings.Cut(line, " ")
		if i := strings.IndexByte(name, '{'); i >= 0 {
			// A label value may hold a space: the value is the last field.
			name = name[:i]
			rest = line[strings.LastIndexByte(line, ' ')+1:]
		}
		v, err := strconv.ParseFloat(strings.Fields(rest + " x")[0], 64)
		if err == nil {
			out[name] += v
		}
	}
	return out
}

// busy is the number of items the replica's workers run now, -1 when it cannot say.
func (r *chaosReplica) busy() float64 {
	m := readMetrics(r.URL())
	v, ok := m["slipway_workers_busy"]
	if !ok {
		return -1
	}
	return v
}

// descendants lists every process under pid, read from /proc.
func descendants(pid int) []int {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		s := string(stat)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(fields[1])
		children[ppid] = append(children[ppid], p)
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// tail is the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// grepLogs counts, over every incarnation's log, the lines containing each of needles.
func grepLogs(dir string, needles ...string) (map[string]int, error) {
	files, err := filepath.Glob(filepath.Join(dir, "replica*.log"))
	if err != nil {
		return nil, err
	}
	counts := map[string]int{}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			for _, n := range needles {
				if strings.Contains(sc.Text(), n) {
					counts[n]++
				}
			}
		}
		err = sc.Err()
		fh.Close()
		if err != nil && !errors.Is(err, bufio.ErrTooLong) {
			return nil, err
		}
	}
	return counts, nil
}
