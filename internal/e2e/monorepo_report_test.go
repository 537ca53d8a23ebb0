package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// monoReport reports BenchmarkMonorepoPush's figures as metrics and returns its tables: full, with
// the figures per side and each target's numbers, and short enough for b.Logf (which keeps ten
// lines of a benchmark's log): the main table and one line of verdicts.
func monoReport(b *testing.B, ns []int, samples []monoSample) (full, short string) {
	b.Helper()
	// scripts are the bare ones, the yardstick for CPU and processes; windowed wait
	// Slipway's stability window too.
	slipways, scripts := []string{"slipway-4w", "slipway-8w"}, []string{"script-seq", "script-par"}
	windowed := []string{"script-seq-" + monoStableFor.String(), "script-par-" + monoStableFor.String()}
	pick := func(n int, sides ...string) []monoSample {
		var out []monoSample
		for _, s := range samples {
			if s.n == n && slices.Contains(sides, s.side) {
				out = append(out, s)
			}
		}
		return out
	}
	med := func(ss []monoSample, f func(monoSample) float64) float64 {
		v := make([]float64, 0, len(ss))
		for _, s := range ss {
			if x := f(s); x >= 0 {
				v = append(v, x)
			}
		}
		if len(v) == 0 {
			return -1
		}
		return median(v)
	}
	total := func(s monoSample) float64 { return s.total.Seconds() }
	cpu := func(s monoSample) float64 { return s.perService(s.all) }
	perDeployment := func(ss []monoSample) float64 {
		var procs, deps int
		for _, s := range ss {
			procs += s.procs.count
			deps += s.n
		}
		return float64(procs) / float64(max(deps, 1))
	}

	var t, main strings.Builder
	main.WriteString("| N | Slipway 4w | Slipway 8w | sequential script | parallel script | sequential, -w " + monoStableFor.String() +
		" | parallel, -w " + monoStableFor.String() + " | docker procs/deployment (Slipway, script) | CPU-s/service (Slipway server+docker procs, script) |\n")
	main.WriteString("|---|---|---|---|---|---|---|---|---|\n")
	for _, n := range ns {
		fmt.Fprintf(&main, "| %d | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f, %.2f | %.3f, %.3f |\n", n,
			med(pick(n, "slipway-4w"), total), med(pick(n, "slipway-8w"), total),
			med(pick(n, "script-seq"), total), med(pick(n, "script-par"), total),
			med(pick(n, windowed[0]), total), med(pick(n, windowed[1]), total),
			perDeployment(pick(n, slipways...)), perDeployment(pick(n, scripts...)),
			med(pick(n, slipways...), cpu), med(pick(n, scripts...), cpu))
	}
	t.WriteString("medians; times in seconds; CPU in CPU-seconds per service deployed\n")
	t.WriteString(main.String())
	live := func(s monoSample) float64 {
		if s.live < 0 {
			return -1
		}
		return s.live.Seconds()
	}
	t.WriteString("\npush → every new container started (live; Slipway's stability window follows, the bare script stops there)\n")
	t.WriteString("| N | Slipway 4w | Slipway 8w | sequential script | parallel script |\n|---|---|---|---|---|\n")
	for _, n := range ns {
		fmt.Fprintf(&t, "| %d | %.2f | %.2f | %.2f | %.2f |\n", n, med(pick(n, "slipway-4w"), live), med(pick(n, "slipway-8w"), live),
			med(pick(n, "script-seq"), live), med(pick(n, "script-par"), live))
	}
	t.WriteString("\nper side; \"own\" is the server's process, or the script's shell, git, tar and the wrappers' bash;\n")
	t.WriteString("\"all\" is own plus every docker, git process it ran; dockerd counts what else ran on it meanwhile\n")
	t.WriteString("| N | side | s | docker procs/deployment | docker subcommands (all pushes) | docker CLI CPU-s/svc | own CPU-s/svc | all CPU-s/svc | dockerd CPU-s/svc |\n")
	t.WriteString("|---|---|---|---|---|---|---|---|---|\n")
	for _, n := range ns {
		for _, side := range slices.Concat(slipways, scripts, windowed) {
			ss := pick(n, side)
			subs := map[string]int{}
			for _, s := range ss {
				for k, v := range s.procs.bySub {
					subs[k] += v
				}
			}
			eng := med(ss, func(s monoSample) float64 {
				if s.engine < 0 {
					return -1
				}
				return s.perService(s.engine)
			})
			fmt.Fprintf(&t, "| %d | %s | %.2f | %.2f | %s | %.3f | %.3f | %.3f | %s |\n", n, side, med(ss, total),
				perDeployment(ss), monoSubcommands(subs),
				med(ss, func(s monoSample) float64 { return s.perService(s.procs.cpu) }),
				med(ss, func(s monoSample) float64 { return s.perService(s.own) }),
				med(ss, cpu), monoOptional(eng))
		}
	}

	t.WriteString("\nthe issue's targets (a miss is reported, not failed):\n")
	var verdicts []string
	verdict := func(short string, ok bool) string {
		v := "met"
		if !ok {
			v = "MISSED"
		}
		verdicts = append(verdicts, short+" "+v)
		return v
	}
	var procsLine []string
	worst := 0.0
	for _, n := range ns {
		p := perDeployment(pick(n, slipways...))
		worst = max(worst, p)
		procsLine = append(procsLine, fmt.Sprintf("N=%d %.2f", n, p))
	}
	fmt.Fprintf(&t, "- docker processes per Slipway deployment <= 4: %s: %s\n", strings.Join(procsLine, ", "),
		verdict(fmt.Sprintf("procs/deployment %.2f", worst), worst <= 4))
	withEngine := func(s monoSample) float64 {
		if s.engine < 0 {
			return -1
		}
		return s.perService(s.all + s.engine)
	}
	for _, n := range ns {
		s, c := med(pick(n, slipways...), cpu), med(pick(n, scripts...), cpu)
		fmt.Fprintf(&t, "- Slipway CPU per service <= the script's, N=%d: %.3f vs %.3f CPU-s (%.2fx): %s", n, s, c, s/c,
			verdict(fmt.Sprintf("N=%d CPU %.2fx", n, s/c), s <= c))
		if se, ce := med(pick(n, slipways...), withEngine), med(pick(n, scripts...), withEngine); se >= 0 && ce >= 0 {
			fmt.Fprintf(&t, " (with dockerd: %.3f vs %.3f, %.2fx)", se, ce, se/ce)
		}
		t.WriteString("\n")
		b.ReportMetric(s/c, fmt.Sprintf("N%d-cpu-slipway/script", n))
	}
	ratio := func(name string, n int, side, against string, limit float64) {
		s, c := med(pick(n, side), total), med(pick(n, against), total)
		fmt.Fprintf(&t, "- %s, %s: %.2f s vs %.2f s = %.2fx (target <= %.1fx): %s\n", name, side, s, c, s/c, limit,
			verdict(fmt.Sprintf("N=%d %s/%s %.2fx", n, strings.TrimPrefix(side, "slipway-"), strings.TrimPrefix(against, "script-"), s/c), s <= limit*c))
		b.ReportMetric(s/c, fmt.Sprintf("N%d-%s/%s", n, strings.ReplaceAll(side, "-", ""), strings.TrimPrefix(against, "script-")))
	}
	if slices.Contains(ns, 8) {
		for _, side := range []string{"slipway-8w", "slipway-4w"} {
			ratio("N=8 <= 0.8x the sequential script", 8, side, "script-seq", 0.8)
			ratio("N=8 <= 1.2x the parallel script", 8, side, "script-par", 1.2)
			ratio("N=8 <= 1.2x the parallel script that waits the window too", 8, side, windowed[1], 1.2)
		}
	}
	if slices.Contains(ns, 1) {
		for _, side := range slipways {
			ratio("N=1 <= 1.2x the script with the default stability window", 1, side, windowed[0], 1.2)
			ratio("N=1 <= 1.2x the bare script", 1, side, "script-seq", 1.2)
		}
	}

	// For reference, not a target of the issue's: how soon the push is live, where the bare
	// scripts stop.
	for _, c := range []struct {
		n       int
		against string
	}{{1, "script-seq"}, {8, "script-par"}} {
		if !slices.Contains(ns, c.n) {
			continue
		}
		for _, side := range slipways {
			sl, sc := med(pick(c.n, side), live), med(pick(c.n, c.against), live)
			fmt.Fprintf(&t, "- for reference, push → live, N=%d, %s: %.2f s vs %s %.2f s = %.2fx\n", c.n, side, sl, c.against, sc, sl/sc)
			b.ReportMetric(sl/sc, fmt.Sprintf("N%d-live-%s/%s", c.n, strings.ReplaceAll(side, "-", ""), strings.TrimPrefix(c.against, "script-")))
		}
	}

	for _, n := range ns {
		for _, side := range slices.Concat(slipways, scripts, windowed) {
			b.ReportMetric(med(pick(n, side), total), fmt.Sprintf("N%d-%s-s", n, strings.ReplaceAll(side, "-", "")))
		}
		b.ReportMetric(perDeployment(pick(n, slipways...)), fmt.Sprintf("N%d-slipway-procs/deployment", n))
		b.ReportMetric(perDeployment(pick(n, scripts...)), fmt.Sprintf("N%d-script-procs/deployment", n))
	}
	return t.String(), main.String() + "targets: " + strings.Join(verdicts, "; ")
}

func monoOptional(v float64) string {
	if v < 0 {
		return "-"
	}
	return fmt.Sprintf("%.3f", v)
}
