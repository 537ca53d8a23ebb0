package e2e

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// What BenchmarkMonorepoPush counts of the processes of each side: every docker CLI process, its
// subcommand and CPU time, through a wrapper binary in the CLI's place; the CPU time of a process
// and of the children it waited for, from /proc; the engine's, from its pid file.

// monoUserHZ is the unit of the CPU times in /proc/PID/stat: USER_HZ, 100 on every Linux.
const monoUserHZ = 100

// monoWrapper is a docker CLI in the place of the real one, for one side of the benchmark: it
// runs the real CLI with the same arguments, standard streams and exit status, then appends one
// line to its log: "SUBCOMMAND USER SYS STATUS", the child's CPU as bash's times prints it
// (getrusage of the children: microseconds, printed to the millisecond).
type monoWrapper struct {
	path string
	log  string
	read int // log lines already taken by since
}

// monoWrapperScript is the wrapper, with %[1]q the real CLI, %[2]q its log and %[3]q a scratch file
// prefix. Forks nothing after the CLI: times writes to a file the read builtin reads back. A flag
// that takes a value before the subcommand (docker --config DIR push) is skipped with its value.
const monoWrapperScript = `#!/bin/bash
%[1]q "$@"
rc=$?
sub=-
skip=false
for a in "$@"; do
	if $skip; then
		skip=false
		continue
	fi
	case $a in
	--config | --context | -c | --host | -H | --log-level | -l) skip=true ;;
	-*) ;;
	*)
		sub=$a
		break
		;;
	esac
done
[[ $sub == - && $# -gt 0 ]] && sub=$1
LC_ALL=C
times >%[3]q.$$
{
	read -r _ _
	read -r user sys
} <%[3]q.$$
printf '%%s %%s %%s %%d\n' "$sub" "$user" "$sys" "$rc" >>%[2]q
exit "$rc"
`

// newMonoWrapper writes a wrapper of the real CLI into dir.
func newMonoWrapper(t testing.TB, dir, real string) *monoWrapper {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	w := &monoWrapper{path: filepath.Join(dir, "docker"), log: filepath.Join(dir, "invocations.log")}
	script := fmt.Sprintf(monoWrapperScript, real, w.log, filepath.Join(dir, "times"))
	if err := os.WriteFile(w.path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return w
}

// monoProcs is what a stretch of a wrapper's log says.
type monoProcs struct {
	count  int
	cpu    time.Duration
	bySub  map[string]int
	failed int
}

func (p monoProcs) String() string {
	return fmt.Sprintf("%d procs %s (%.3f CPU-s)", p.count, monoSubcommands(p.bySub), p.cpu.Seconds())
}

// since returns the invocations logged since the last call.
func (w *monoWrapper) since(t testing.TB) monoProcs {
	t.Helper()
	raw, err := os.ReadFile(w.log)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	if len(raw) == 0 {
		lines = nil
	}
	p := monoProcs{bySub: map[string]int{}}
	for _, line := range lines[min(w.read, len(lines)):] {
		f := strings.Fields(line)
		if len(f) != 4 {
			t.Fatalf("docker wrapper log %s: bad line %q", w.log, line)
		}
		user, err1 := monoParseTimes(f[1])
		sys, err2 := monoParseTimes(f[2])
		if err1 != nil || err2 != nil {
			t.Fatalf("docker wrapper log %s: bad times in %q", w.log, line)
		}
		p.count++
		p.cpu += user + sys
		p.bySub[f[0]]++
		if f[3] != "0" {
			p.failed++
		}
	}
	w.read = len(lines)
	return p
}

// monoParseTimes reads a time as bash's times prints it: "0m0.052s".
func monoParseTimes(s string) (time.Duration, error) {
	m, rest, ok := strings.Cut(s, "m")
	if !ok || !strings.HasSuffix(rest, "s") {
		return 0, fmt.Errorf("not a times value: %q", s)
	}
	mins, err := strconv.Atoi(m)
	if err != nil {
		return 0, err
	}
	secs, err := strconv.ParseFloat(strings.ReplaceAll(strings.TrimSuffix(rest, "s"), ",", "."), 64)
	if err != nil {
		return 0, err
	}
	return time.Duration(mins)*time.Minute + time.Duration(secs*float64(time.Second)), nil
}

func monoSubcommands(m map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s×%d", k, m[k]))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// monoProcCPU is a process's CPU time from /proc/PID/stat: its own (utime+stime) and that of the
// children it waited for (cutime+cstime).
type monoProcCPU struct {
	own, children time.Duration
}

func monoReadProcCPU(pid int) (monoProcCPU, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return monoProcCPU{}, err
	}
	// The command name, in parentheses, may hold spaces: the fields to count start after it.
	i := strings.LastIndexByte(string(raw), ')')
	if i < 0 {
		return monoProcCPU{}, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(raw[i+1:]))
	if len(f) < 15 {
		return monoProcCPU{}, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	// f[0] is field 3 (state): utime, stime, cutime, cstime are fields 14 to 17.
	var ticks [4]int64
	for k := range ticks {
		if ticks[k], err = strconv.ParseInt(f[11+k], 10, 64); err != nil {
			return monoProcCPU{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
	}
	tick := time.Second / monoUserHZ
	return monoProcCPU{own: time.Duration(ticks[0]+ticks[1]) * tick, children: time.Duration(ticks[2]+ticks[3]) * tick}, nil
}

func (p monoProcCPU) sub(q monoProcCPU) monoProcCPU {
	return monoProcCPU{own: p.own - q.own, children: p.children - q.children}
}

// monoEngineProcs are dockerd's pid (from $SLIPWAY_TEST_SERVICES_DIR/pids/dockerd.pid) and its
// containerd's, when dockerd started one; nil when there is no pid file.
func monoEngineProcs(t testing.TB) []int {
	t.Helper()
	dir := os.Getenv("SLIPWAY_TEST_SERVICES_DIR")
	if dir == "" {
		return nil
	}
	raw, err := os.ReadFile(filepath.Join(dir, "pids", "dockerd.pid"))
	if err != nil {
		return nil
	}
	dockerd, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		return nil
	}
	if _, err := monoReadProcCPU(dockerd); err != nil {
		return nil // not ours to read, or gone
	}
	pids := []int{dockerd}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(stat)
		if !strings.Contains(s, "(containerd)") {
			continue
		}
		if f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]); len(f) > 1 && f[1] == strconv.Itoa(dockerd) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// monoEngineCPU is the CPU time of the engine's processes so far (their own, not their children's:
// a build's RUN steps have none here), or -1 when they are unknown.
func monoEngineCPU(pids []int) time.Duration {
	if len(pids) == 0 {
		return -1
	}
	var sum time.Duration
	for _, pid := range pids {
		c, err := monoReadProcCPU(pid)
		if err != nil {
			return -1
		}
		sum += c.own
	}
	return sum
}
