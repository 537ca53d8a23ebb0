package web

import (
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/store"
)

// The pages' view models hold display-ready strings: the templates need no functions of their
// own, and every value reaches them as text for html/template to escape.

// when is a point in time shown relative to now, with the exact UTC time for a title and a
// <time datetime>.
type when struct {
	Rel, Exact, ISO string
}

func (d *Dashboard) when(t time.Time) when {
	if t.IsZero() {
		return when{}
	}
	return when{Rel: relative(d.now().Sub(t), t), Exact: t.UTC().Format("2006-01-02 15:04:05 UTC"),
		ISO: t.UTC().Format(time.RFC3339)}
}

func (d *Dashboard) whenPtr(t *time.Time) when {
	if t == nil {
		return when{}
	}
	return d.when(*t)
}

// relative says how long ago ago was, as people say it; app.js keeps it current.
func relative(ago time.Duration, t time.Time) string {
	switch {
	case ago < 0 && ago > -time.Minute, ago >= 0 && ago < 45*time.Second:
		return "just now"
	case ago < 0:
		return "in the future"
	case ago < time.Hour:
		return fmt.Sprintf("%d min ago", max(1, int(ago.Round(time.Minute)/time.Minute)))
	case ago < 24*time.Hour:
		return fmt.Sprintf("%d h ago", int(ago/time.Hour))
	case ago < 30*24*time.Hour:
		return fmt.Sprintf("%d d ago", int(ago/(24*time.Hour)))
	}
	return t.UTC().Format("2 Jan 2006")
}

// span formats a duration for a stage: "850 ms", "4.2 s", "3 m 05 s", "2 h 10 m".
func span(d time.Duration) string {
	switch {
	case d < 0:
		return "0 s"
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	case d < 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d m %02d s", int(d/time.Minute), int(d%time.Minute/time.Second))
	}
	return fmt.Sprintf("%d h %02d m", int(d/time.Hour), int(d%time.Hour/time.Minute))
}

// statusView shows a status as a colour (Class), a symbol and a word, so it reads without colour.
type statusView struct {
	Class, Symbol, Label string
	Active               bool
}

func statusOf(s deploy.Status) statusView {
	v := statusView{Label: strings.ReplaceAll(string(s), "_", " "), Class: "st-" + string(s)}
	switch s {
	case deploy.StatusQueued:
		v.Symbol = "◷"
	case deploy.StatusBuilding, deploy.StatusPushing, deploy.StatusDeploying, deploy.StatusPlanning:
		v.Symbol, v.Active = "●", true
	case deploy.StatusSucceeded, deploy.StatusPlanned:
		v.Symbol = "✓"
	case deploy.StatusFailed:
		v.Symbol = "✗"
	case deploy.StatusCancelled:
		v.Symbol = "⊘"
	case deploy.StatusSuperseded:
		v.Symbol = "↷"
	case deploy.StatusRolledBack:
		v.Symbol = "↺"
	case deploy.StatusSkipped:
		v.Symbol = "–"
	default:
		v.Symbol, v.Class = "?", "st-unknown"
	}
	return v
}

// commitView is a commit shown short, linked to its page on GitHub.
type commitView struct {
	Short, Full, URL string
}

func (d *Dashboard) commit(repo, sha string) commitView {
	if sha == "" {
		return commitView{}
	}
	return commitView{Short: short(sha, 7), Full: sha, URL: d.repoURL(repo) + "/commit/" + url.PathEscape(sha)}
}

// repoURL is the repository's page on GitHub; each part of the name is escaped, so a name can
// only ever point below the configured base.
func (d *Dashboard) repoURL(repo string) string {
	parts := strings.Split(repo, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return d.github + "/" + strings.Join(parts, "/")
}

func short(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// shortDigest shows "sha256:" and the first 12 hex digits of an image digest.
func shortDigest(digest string) string {
	algo, hex, ok := strings.Cut(digest, ":")
	if !ok {
		return short(digest, 19)
	}
	return algo + ":" + short(hex, 12)
}

// firstLine is a message's first line, cut to n characters.
func firstLine(msg string, n int) string {
	msg, _, _ = strings.Cut(strings.TrimSpace(msg), "\n")
	msg = strings.TrimSpace(msg)
	if utf8.RuneCountInString(msg) <= n {
		return msg
	}
	r := []rune(msg)
	return string(r[:n-1]) + "…"
}

// triggerText says what caused a run, in a few words.
func triggerText(trigger, pusher, branch string) string {
	who := pusher
	if who == "" {
		who = "someone"
	}
	switch trigger {
	case "push":
		if branch != "" {
			return "push by " + who + " to " + branch
		}
		return "push by " + who
	case "rollback":
		return "rollback by " + who
	case "redeploy":
		return "redeploy by " + who
	case "":
		return who
	}
	return trigger + " by " + who
}

// stageView is one stage of a deployment's timeline.
type stageView struct {
	Name   string
	At     when
	Dur    string
	State  string // done, running, failed
	Symbol string
}

// stages are the stages a deployment passed, from the times it recorded: a rollback or redeploy
// (its image known up front) has no build or push stage, a queued one only its wait.
func (d *Dashboard) stages(dep deploy.Deployment) (out []stageView, total string) {
	type mark struct {
		name string
		at   *time.Time
	}
	created := dep.CreatedAt
	marks := []mark{{"queued", &created}, {"build", dep.BuildingAt}, {"push", dep.PushingAt}, {"deploy", dep.DeployingAt}}
	var present []mark
	for _, m := range marks {
		if m.at != nil {
			present = append(present, m)
		}
	}
	final := dep.Status.Final()
	for i, m := range present {
		var end *time.Time
		switch {
		case m.name == "queued" && dep.ClaimedAt != nil:
			end = dep.ClaimedAt // the wait ends when a worker claims it
		case i+1 < len(present):
			end = present[i+1].at
		case final:
			end = dep.FinishedAt
		}
		sv := stageView{Name: m.name, At: d.when(*m.at), State: "done", Symbol: "✓"}
		switch {
		case end != nil:
			sv.Dur = span(end.Sub(*m.at))
		case final: // no finish time recorded: nothing to measure
		default:
			sv.Dur = span(d.now().Sub(*m.at)) + " so far"
			sv.State, sv.Symbol = "running", "●"
		}
		if i == len(present)-1 && final && dep.Status != deploy.StatusSucceeded {
			sv.State, sv.Symbol = "failed", statusOf(dep.Status).Symbol
		}
		out = append(out, sv)
	}
	if final && dep.FinishedAt != nil {
		total = span(dep.FinishedAt.Sub(dep.CreatedAt))
	}
	return out, total
}

// depRow is a deployment as the history and the run page list it.
type depRow struct {
	ID                         int64
	Href                       string
	Repo, Service, Environment string
	Status                     statusView
	Commit                     commitView
	Message                    string
	Cause                      string
	Created                    when
	Stages                     []stageView
	Total                      string
	Error                      string
	Target                     string
}

func (d *Dashboard) row(dep deploy.Deployment, trigger, branch, pusher, message string) depRow {
	r := depRow{ID: dep.ID, Href: fmt.Sprintf("/deployments/%d", dep.ID), Repo: dep.Repo, Service: dep.Service,
		Environment: dep.Environment, Status: statusOf(dep.Status), Commit: d.commit(dep.Repo, dep.CommitSHA),
		Message: firstLine(message, 100), Cause: triggerText(trigger, pusher, branch),
		Created: d.when(dep.CreatedAt), Error: firstLine(dep.Error, 160), Target: targetText(dep.Platform, dep.Spec.Destination)}
	r.Stages, r.Total = d.stages(dep)
	return r
}

func (d *Dashboard) runRow(dr store.DeploymentRun) depRow {
	return d.row(dr.Deployment, dr.Trigger, dr.Branch, dr.Pusher, dr.Message)
}

// targetText names where a deployment rolls out, like "swarm api" or "ecs prod/api"; never the
// container's environment values.
func targetText(platform string, dest deploy.Destination) string {
	if name := dest.Name(); name != "" {
		return strings.TrimSpace(dest.Platform + " " + name)
	}
	return platform
}

// targetKeyText turns a target_key ("ecs:prod/api") into targetText's form.
func targetKeyText(key string) string {
	platform, name, _ := strings.Cut(key, ":")
	return strings.TrimSpace(platform + " " + name)
}

// urlQueryEscape escapes a query value.
func urlQueryEscape(s string) string { return url.QueryEscape(s) }

// localPath reports whether next is a path on this server ("/x", not "//host" or "/\host").
func localPath(next string) bool {
	return strings.HasPrefix(next, "/") && !strings.HasPrefix(next, "//") && !strings.HasPrefix(next, "/\\")
}
