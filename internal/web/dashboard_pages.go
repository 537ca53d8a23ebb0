package web

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/slipway-dev/slipway/internal/auth"
	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/store"
)

// The read pages: services (the first screen), history, one deployment, one run.

type liveView struct {
	Href    string
	Commit  commitView
	Message string
	Cause   string
	Digest  string
	Image   string
	TaskDef string
	When    when
}

type serviceRow struct {
	Service, Environment string
	Live                 *liveView
	Target               string
	Last                 depRow
	LastIsLive           bool
	Queued, Active       int
	HistoryHref          string
}

type repoGroup struct {
	Repo, URL string
	Rows      []serviceRow
}

type servicesView struct {
	Base
	Repos []repoGroup
}

func (d *Dashboard) services(w http.ResponseWriter, r *http.Request) {
	if _, ok := d.allowed(w, r, auth.RoleViewer); !ok {
		return
	}
	states, err := d.st.DashboardServices(r.Context())
	if err != nil {
		d.failErr(w, r, err)
		return
	}
	v := servicesView{Base: d.base(r, "Services", "services")}
	for _, s := range states {
		if len(v.Repos) == 0 || v.Repos[len(v.Repos)-1].Repo != s.Repo {
			v.Repos = append(v.Repos, repoGroup{Repo: s.Repo, URL: d.repoURL(s.Repo)})
		}
		row := serviceRow{Service: s.Service, Environment: s.Environment, Last: d.runRow(s.Last),
			Queued: s.Queued, Active: s.Active, Target: targetText(s.Last.Platform, s.Last.Spec.Destination),
			HistoryHref: "/deployments?" + url.Values{"repo": {s.Repo}, "service": {s.Service}, "environment": {s.Environment}}.Encode()}
		if l := s.Live; l != nil {
			row.Live = &liveView{Href: fmt.Sprintf("/deployments/%d", l.ID), Commit: d.commit(s.Repo, l.CommitSHA),
				Message: firstLine(l.Message, 80), Cause: triggerText(l.Trigger, l.Pusher, l.Branch),
				Digest: shortDigest(l.ImageDigest), Image: l.ImageRef, TaskDef: l.TaskDef, When: d.when(l.FinishedAt)}
			row.LastIsLive = l.ID == s.Last.ID
			if k := targetKeyText(l.TargetKey); k != "" {
				row.Target = k
			}
		}
		g := &v.Repos[len(v.Repos)-1]
		g.Rows = append(g.Rows, row)
	}
	d.render(w, r, http.StatusOK, "services.html", v)
}

// historyForm is the history's filter form, as submitted.
type historyForm struct {
	Repo, Service, Environment, Status, Branch, Commit, Trigger string
}

type option struct {
	Value, Label string
	Selected     bool
}

type historyView struct {
	Base
	Form      historyForm
	Statuses  []option
	Rows      []depRow
	Older     string // link to the next page, "" on the last
	Newest    string // link back to the first page, "" on it
	Filtering bool
}

const (
	historyPage   = 50
	maxFilterText = 200
)

func (d *Dashboard) history(w http.ResponseWriter, r *http.Request) {
	if _, ok := d.allowed(w, r, auth.RoleViewer); !ok {
		return
	}
	q := r.URL.Query()
	form := historyForm{Repo: q.Get("repo"), Service: q.Get("service"), Environment: q.Get("environment"),
		Status: q.Get("status"), Branch: q.Get("branch"), Commit: strings.ToLower(q.Get("commit")), Trigger: q.Get("trigger")}
	f := store.HistoryFilter{Repo: form.Repo, Service: form.Service, Environment: form.Environment,
		Status: form.Status, Branch: form.Branch, Commit: form.Commit, Trigger: form.Trigger, Limit: historyPage}
	for _, p := range []struct{ name, v string }{{"repository", form.Repo}, {"service", form.Service},
		{"environment", form.Environment}, {"branch", form.Branch}, {"trigger", form.Trigger}} {
		if msg := checkText(p.name, p.v); msg != "" {
			d.fail(w, r, http.StatusBadRequest, msg)
			return
		}
	}
	if f.Status != "" && !slices.Contains(deploy.DeploymentStatuses, deploy.Status(f.Status)) {
		d.fail(w, r, http.StatusBadRequest, "The status must be one of "+joinStatuses(deploy.DeploymentStatuses)+".")
		return
	}
	if f.Commit != "" && (len(f.Commit) < 4 || len(f.Commit) > 40 || !hexString(f.Commit)) {
		d.fail(w, r, http.StatusBadRequest, "The commit must be 4 to 40 hexadecimal digits (a SHA or its start).")
		return
	}
	if v := q.Get("before"); v != "" {
		b, err := strconv.ParseInt(v, 10, 64)
		if err != nil || b <= 0 {
			d.fail(w, r, http.StatusBadRequest, "“before” must be a positive integer (a deployment id).")
			return
		}
		f.Before = b
	}
	rows, err := d.st.DashboardHistory(r.Context(), f)
	if err != nil {
		d.failErr(w, r, err)
		return
	}
	v := historyView{Base: d.base(r, "History", "history"), Form: form, Filtering: form != historyForm{}}
	v.Statuses = append(v.Statuses, option{Value: "", Label: "any status", Selected: f.Status == ""})
	for _, s := range deploy.DeploymentStatuses {
		v.Statuses = append(v.Statuses, option{Value: string(s), Label: statusOf(s).Symbol + " " + statusOf(s).Label,
			Selected: f.Status == string(s)})
	}
	for _, dr := range rows {
		v.Rows = append(v.Rows, d.runRow(dr))
	}
	keep := url.Values{}
	for k, val := range map[string]string{"repo": form.Repo, "service": form.Service, "environment": form.Environment,
		"status": form.Status, "branch": form.Branch, "commit": form.Commit, "trigger": form.Trigger} {
		if val != "" {
			keep.Set(k, val)
		}
	}
	if f.Before > 0 {
		v.Newest = "/deployments?" + keep.Encode()
	}
	if len(rows) == f.Limit {
		keep.Set("before", strconv.FormatInt(rows[len(rows)-1].ID, 10))
		v.Older = "/deployments?" + keep.Encode()
	}
	d.render(w, r, http.StatusOK, "history.html", v)
}

// checkText returns why a filter cannot be matched as text, or "".
func checkText(name, v string) string {
	switch {
	case !utf8.ValidString(v) || strings.ContainsRune(v, 0):
		return "The " + name + " must be UTF-8 text without NUL bytes."
	case len(v) > maxFilterText:
		return fmt.Sprintf("The %s must be at most %d bytes.", name, maxFilterText)
	}
	return ""
}

func hexString(s string) bool {
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

type logLineView struct {
	ID     int64
	Stream string
	Text   string
	At     string
}

type deploymentView struct {
	Base
	D            depRow
	RunHref      string
	RunID        int64
	Trigger      string
	Pusher       string
	Branch       string
	Message      string // the whole message
	Image        string
	Digest       string
	DigestShort  string
	Attempt      string
	Error        string
	Replaced     string // href of the deployment it replaced
	ReplacedID   int64
	Superseded   string
	SupersededID int64
	RollbackOf   int64
	IsLive       bool
	TaskDef      string // the ECS task definition the rollout registered
	CancelledBy  string
	CancelReason string
	Finished     when
	// Actions offered to a deployer.
	CanRollback, CanRedeploy, CanCancel bool
	// The log: the last lines, and where the live tail goes on from.
	Log        []logLineView
	LogMore    bool
	LogAfter   int64
	Streaming  bool
	StreamURL  string
	LogTextURL string
}

// logPageLines is how many of the last log lines the deployment page shows; the rest is in the
// plain-text log.
const logPageLines = 1000

func (d *Dashboard) deployment(w http.ResponseWriter, r *http.Request) {
	id, ok := d.allowedID(w, r, auth.RoleViewer)
	if !ok {
		return
	}
	ctx := r.Context()
	dr, err := d.st.DashboardDeployment(ctx, id)
	if err != nil {
		d.failErr(w, r, err)
		return
	}
	dep := dr.Deployment
	v := deploymentView{Base: d.base(r, fmt.Sprintf("Deployment %d · %s %s", id, dep.Service, dep.Environment), "history"),
		D: d.runRow(dr), RunHref: fmt.Sprintf("/runs/%d", dep.RunID), RunID: dep.RunID,
		Trigger: dr.Trigger, Pusher: dr.Pusher, Branch: dr.Branch, Message: dr.Message,
		Image: dep.ImageRef, Digest: dep.ImageDigest, DigestShort: shortDigest(dep.ImageDigest),
		Attempt: fmt.Sprintf("%d of %d", dep.Attempt, dep.MaxAttempts), Error: dep.Error,
		RollbackOf: dep.Spec.RollbackOf, Finished: d.whenPtr(dep.FinishedAt), TaskDef: dep.Result.TaskDefinitionARN,
		CancelledBy: dep.CancelledBy, CancelReason: dep.CancelReason,
		StreamURL: fmt.Sprintf("/deployments/%d/logs/stream", id), LogTextURL: fmt.Sprintf("/deployments/%d/log.txt", id)}
	if dep.ReplacedID != nil {
		v.ReplacedID, v.Replaced = *dep.ReplacedID, fmt.Sprintf("/deployments/%d", *dep.ReplacedID)
	}
	if dep.SupersededBy != nil {
		v.SupersededID, v.Superseded = *dep.SupersededBy, fmt.Sprintf("/deployments/%d", *dep.SupersededBy)
	}
	live, hasLive, err := d.st.DeploymentLive(ctx, dep.Repo, dep.Service, dep.Environment)
	if err != nil {
		d.failErr(w, r, err)
		return
	}
	v.IsLive = hasLive && live.ID == dep.ID
	v.CanRollback = dep.Status == deploy.StatusSucceeded && dep.ImageDigest != "" && !v.IsLive
	v.CanRedeploy = dep.ImageDigest != "" && dep.Status == deploy.StatusSucceeded
	v.CanCancel = !dep.Status.Final()
	lines, more, err := d.st.DeploymentLogsTail(ctx, id, logPageLines)
	if err != nil {
		d.failErr(w, r, err)
		return
	}
	v.LogMore = more
	for _, l := range lines {
		v.Log = append(v.Log, logLineView{ID: l.ID, Stream: l.Stream, Text: l.Line, At: l.CreatedAt.UTC().Format("15:04:05.000")})
	}
	if len(lines) > 0 {
		v.LogAfter = lines[len(lines)-1].ID
	}
	v.Streaming = !dep.Status.Final()
	d.render(w, r, http.StatusOK, "deployment.html", v)
}

type runView struct {
	Base
	ID         int64
	Repo       string
	RepoURL    string
	Ref        string
	Branch     string
	Trigger    string
	Cause      string
	Pusher     string
	Message    string
	Before     commitView
	After      commitView
	CompareURL string
	Status     statusView
	Error      string
	Created    when
	Finished   when
	Rows       []depRow
	Skipped    []deploy.Skip
	CanCancel  bool
	// Who cancelled it, and why.
	CancelledBy, CancelReason string
}

func (d *Dashboard) run(w http.ResponseWriter, r *http.Request) {
	id, ok := d.allowedID(w, r, auth.RoleViewer)
	if !ok {
		return
	}
	run, err := d.st.RunGet(r.Context(), id)
	if err != nil {
		d.failErr(w, r, err)
		return
	}
	deps, err := d.st.DeploymentsByRun(r.Context(), id)
	if err != nil {
		d.failErr(w, r, err)
		return
	}
	v := runView{Base: d.base(r, fmt.Sprintf("Run %d · %s", id, run.Repo), "history"), ID: id, Repo: run.Repo,
		RepoURL: d.repoURL(run.Repo), Ref: run.Ref, Branch: run.Branch, Trigger: run.Trigger,
		Cause: triggerText(run.Trigger, run.Pusher, run.Branch), Pusher: run.Pusher, Message: run.Message,
		Before: d.commit(run.Repo, run.BeforeSHA), After: d.commit(run.Repo, run.AfterSHA),
		Status: statusOf(run.Status), Error: cmp.Or(run.Error, run.Reason), Created: d.when(run.CreatedAt), Finished: d.whenPtr(run.FinishedAt),
		CanCancel: !run.Status.Final() && run.Status != deploy.StatusFailed, Skipped: run.Skipped,
		CancelledBy: run.CancelledBy, CancelReason: run.CancelReason}
	if run.BeforeSHA != "" && strings.Trim(run.BeforeSHA, "0") != "" && run.AfterSHA != "" {
		v.CompareURL = d.repoURL(run.Repo) + "/compare/" + url.PathEscape(run.BeforeSHA) + "..." + url.PathEscape(run.AfterSHA)
	}
	for _, dep := range deps {
		v.Rows = append(v.Rows, d.row(dep, run.Trigger, run.Branch, run.Pusher, run.Message))
	}
	d.render(w, r, http.StatusOK, "run.html", v)
}
