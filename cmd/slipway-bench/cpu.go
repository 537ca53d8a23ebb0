package main

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTick is USER_HZ, the unit of /proc's CPU times: 100 on every Linux Go runs on.
const clockTick = 10 * time.Millisecond

// cpuTimes is cumulative CPU time: the whole machine's, and that of the processes a phase involves.
type cpuTimes struct {
	at       time.Time
	busy     time.Duration // all CPUs, not idle
	self     time.Duration // this process: the load generator
	server   time.Duration
	spawned  time.Duration // the server's exited children: git, run by planning
	postgres time.Duration // the postmaster and every process under it, exited ones included
}

// readCPU reads the times; a process it cannot see counts as zero (its share then shows as other).
func readCPU(serverPID, postmasterPID int) cpuTimes {
	c := cpuTimes{at: time.Now(), busy: machineBusy()}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		c.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if serverPID > 0 {
		c.server = procCPU(serverPID, false)
		c.spawned = procCPU(serverPID, true) - c.server
	}
	if postmasterPID > 0 {
		// Backends that exited are in the postmaster's children times; live ones are summed here.
		c.postgres = procCPU(postmasterPID, true)
		for _, pid := range childrenOf(postmasterPID) {
			c.postgres += procCPU(pid, false)
		}
	}
	return c
}

// machineBusy is the CPU time of all CPUs spent neither idle nor waiting for I/O.
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	var busy int64
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		if i == 3 || i == 4 || i >= 8 { // idle, iowait; guest times are already in user
			continue
		}
		busy += n
	}
	return time.Duration(busy) * clockTick
}

// procStat returns the fields of /proc/PID/stat after the command name.
func procStat(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(s[i+1:]) // state ppid ... utime(11) stime(12) cutime(13) cstime(14)
}

func procCPU(pid int, withChildren bool) time.Duration {
	f := procStat(pid)
	if len(f) < 15 {
		return 0
	}
	last := 12
	if withChildren {
		last = 14
	}
	var ticks int64
	for i := 11; i <= last; i++ {
		n, _ := strconv.ParseInt(f[i], 10, 64)
		ticks += n
	}
	return time.Duration(ticks) * clockTick
}

func childrenOf(ppid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	want := strconv.Itoa(ppid)
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if f := procStat(pid); len(f) > 1 && f[1] == want {
			pids = append(pids, pid)
		}
	}
	return pids
}

// cpuUse is where a phase's CPU went, per operation (request or transaction), in microseconds.
type cpuUse struct {
	BusyPct   float64 `json:"machine_busy_pct"` // of all CPUs
	ClientUs  float64 `json:"client_us_per_op"`
	ServerUs  float64 `json:"server_us_per_op,omitempty"`
	SpawnedUs float64 `json:"server_children_us_per_op,omitempty"`
	PostgreUs float64 `json:"postgres_us_per_op"`
	OtherUs   float64 `json:"other_us_per_op"`
}

// cpuBetween splits the CPU used between a and b over ops operations; client is the load
// generator's time (this process's, or pgbench's when measured apart).
func cpuBetween(a, b cpuTimes, client time.Duration, ops int, cpus int) cpuUse {
	if ops == 0 {
		return cpuUse{}
	}
	per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 / float64(ops) }
	busy := b.busy - a.busy
	server, spawned, pg := b.server-a.server, b.spawned-a.spawned, b.postgres-a.postgres
	return cpuUse{
		BusyPct:   100 * busy.Seconds() / (b.at.Sub(a.at).Seconds() * float64(cpus)),
		ClientUs:  per(client),
		ServerUs:  per(server),
		SpawnedUs: per(spawned),
		PostgreUs: per(pg),
		OtherUs:   per(max(busy-client-server-spawned-pg, 0)),
	}
}
