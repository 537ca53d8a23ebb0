package web

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/slipway-dev/slipway/internal/auth"
	"github.com/slipway-dev/slipway/internal/source"
	"github.com/slipway-dev/slipway/internal/store"
)

// The actions: each has a confirmation page (GET) saying what will happen, and a form that posts
// to the same address to act, then redirects (303) to what it made. The router's cross-origin
// protection guards the posts; each handler checks the deployer role itself too.

type action string

const (
	actRollback action = "rollback"
	actRedeploy action = "redeploy"
	actCancel   action = "cancel"
)

const maxReason = 500

type confirmView struct {
	Base
	Action   string // rollback, redeploy, cancel, cancel-run, deploy
	Verb     string // the button
	Intro    string // one sentence: what will happen
	PostTo   string
	Back     string
	D        *depRow
	Image    string
	Live     *depRow
	Reason   bool // ask for a reason
	Repo     string
	Ref      string
	Error    string
	RepoLive []depRow
}

func (d *Dashboard) confirmDeployment(a action) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := d.allowedID(w, r, auth.RoleDeployer)
		if !ok {
			return
		}
		dr, err := d.st.DashboardDeployment(r.Context(), id)
		if err != nil {
			d.failErr(w, r, err)
			return
		}
		dep := dr.Deployment
		row := d.runRow(dr)
		v := confirmView{Base: d.base(r, "", "history"), Action: string(a), D: &row, Image: dep.ImageRef,
			PostTo: fmt.Sprintf("/deployments/%d/%s", id, a), Back: row.Href}
		if v.Image == "" && dep.ImageDigest != "" {
			v.Image = dep.Spec.Build.Image + "@" + dep.ImageDigest
		}
		live, ok, err := d.st.DeploymentLive(r.Context(), dep.Repo, dep.Service, dep.Environment)
		if err != nil {
			d.failErr(w, r, err)
			return
		}
		if ok {
			lr := d.row(live, "", "", "", "")
			v.Live = &lr
		}
		switch a {
		case actRollback:
			v.Title, v.Verb = fmt.Sprintf("Roll back %s %s", dep.Service, dep.Environment), "Roll back"
			v.Intro = fmt.Sprintf("Deploy the image deployment %d put live to %s in %s again, without a build. "+
				"It waits for a running deployment of this service and replaces any queued one.", id, dep.Service, dep.Environment)
		case actRedeploy:
			v.Title, v.Verb = fmt.Sprintf("Redeploy %s %s", dep.Service, dep.Environment), "Redeploy"
			v.Intro = fmt.Sprintf("Roll out deployment %d's image to %s in %s once more: same image, no build.",
				id, dep.Service, dep.Environment)
		case actCancel:
			v.Title, v.Verb, v.Reason = fmt.Sprintf("Cancel deployment %d", id), "Cancel deployment", true
			v.Intro = "A queued deployment stops at once; a running one is stopped by its worker, and a rollout " +
				"in progress puts back what was live."
		}
		d.render(w, r, http.StatusOK, "confirm.html", v)
	}
}

func (d *Dashboard) actDeployment(a action) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := d.allowed(w, r, auth.RoleDeployer)
		if !ok {
			return
		}
		id, ok := d.idParam(w, r)
		if !ok {
			return
		}
		if !d.parseForm(w, r) || !d.haveActions(w, r) {
			return
		}
		ctx := r.Context()
		var depID int64
		var err error
		switch a {
		case actRollback:
			_, depID, err = d.actions.Rollback(ctx, id, p.Name)
		case actRedeploy:
			_, depID, err = d.actions.Redeploy(ctx, id, p.Name)
		case actCancel:
			reason, ok := d.reason(w, r)
			if !ok {
				return
			}
			_, err = d.actions.Cancel(ctx, store.KindDeployment, id, p.Name, reason)
			depID = id
		}
		if err != nil {
			d.failErr(w, r, err)
			return
		}
		http.Redirect(w, r, fmt.Sprintf("/deployments/%d", depID), http.StatusSeeOther)
	}
}

func (d *Dashboard) confirmRunCancel(w http.ResponseWriter, r *http.Request) {
	id, ok := d.allowedID(w, r, auth.RoleDeployer)
	if !ok {
		return
	}
	run, err := d.st.RunGet(r.Context(), id)
	if err != nil {
		d.failErr(w, r, err)
		return
	}
	v := confirmView{Base: d.base(r, fmt.Sprintf("Cancel run %d", id), "history"), Action: "cancel-run",
		Verb: "Cancel run", Reason: true, PostTo: fmt.Sprintf("/runs/%d/cancel", id), Back: fmt.Sprintf("/runs/%d", id),
		Repo: run.Repo, Ref: run.Branch,
		Intro: fmt.Sprintf("Run %d of %s (%s, commit %s) will not plan any deployment. Deployments it already queued are cancelled on their own pages.",
			id, run.Repo, run.Branch, short(run.AfterSHA, 7))}
	d.render(w, r, http.StatusOK, "confirm.html", v)
}

func (d *Dashboard) actRunCancel(w http.ResponseWriter, r *http.Request) {
	p, ok := d.allowed(w, r, auth.RoleDeployer)
	if !ok {
		return
	}
	id, ok := d.idParam(w, r)
	if !ok || !d.parseForm(w, r) || !d.haveActions(w, r) {
		return
	}
	reason, ok := d.reason(w, r)
	if !ok {
		return
	}
	if _, err := d.actions.Cancel(r.Context(), store.KindRun, id, p.Name, reason); err != nil {
		d.failErr(w, r, err)
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/runs/%d", id), http.StatusSeeOther)
}

type deployFormView struct {
	Base
	Repos   []option
	Repo    string
	Branch  string
	SHA     string
	Error   string
	Confirm bool
	Live    []depRow
	Edit    string // the form again, filled
}

// deployForm asks for a repository, a branch and optionally a commit; with them in the query
// it shows what will be deployed and what is live now, and asks to confirm.
func (d *Dashboard) deployForm(w http.ResponseWriter, r *http.Request) {
	if _, ok := d.allowed(w, r, auth.RoleDeployer); !ok {
		return
	}
	q := r.URL.Query()
	in := deployInput{Repo: strings.TrimSpace(q.Get("repo")), Branch: strings.TrimSpace(q.Get("branch")),
		SHA: strings.ToLower(strings.TrimSpace(q.Get("sha")))}
	states, err := d.st.DashboardServices(r.Context())
	if err != nil {
		d.failErr(w, r, err)
		return
	}
	repos := reposOf(states)
	v := deployFormView{Base: d.base(r, "Deploy", "deploy"), Repo: in.Repo, Branch: in.Branch, SHA: in.SHA}
	for _, name := range repos {
		v.Repos = append(v.Repos, option{Value: name, Label: name, Selected: name == in.Repo})
	}
	status := http.StatusOK
	if in != (deployInput{}) && q.Get("edit") == "" {
		if msg := in.check(repos); msg != "" {
			v.Error, status = msg, http.StatusBadRequest
		} else {
			v.Confirm = true
			v.Edit = "/deploy?" + url.Values{"repo": {in.Repo}, "branch": {in.Branch}, "sha": {in.SHA}, "edit": {"1"}}.Encode()
			for _, s := range states {
				if s.Repo == in.Repo && s.Live != nil {
					v.Live = append(v.Live, depRow{ID: s.Live.ID, Href: fmt.Sprintf("/deployments/%d", s.Live.ID),
						Service: s.Service, Environment: s.Environment, Commit: d.commit(in.Repo, s.Live.CommitSHA),
						Created: d.when(s.Live.FinishedAt), Message: firstLine(s.Live.Message, 80)})
				}
			}
		}
	}
	d.render(w, r, status, "deploy.html", v)
}

// deployInput is what the deploy form asks for.
type deployInput struct {
	Repo, Branch, SHA string
}

// check returns why the input cannot be deployed, or "".
func (in deployInput) check(known []string) string {
	switch {
	case in.Repo == "" || in.Branch == "":
		return "Choose a repository and name a branch."
	case !slices.Contains(known, in.Repo):
		return "Slipway has not deployed that repository yet; choose one from the list."
	case !source.ValidBranch(in.Branch):
		return "That is not a branch name."
	case in.SHA != "" && !source.ValidSHA(in.SHA):
		return "A commit is the full SHA: 40 hexadecimal characters (leave it empty for the branch's head)."
	}
	return ""
}

func reposOf(states []store.ServiceState) []string {
	var repos []string
	for _, s := range states {
		if !slices.Contains(repos, s.Repo) {
			repos = append(repos, s.Repo)
		}
	}
	return repos
}

func (d *Dashboard) deployRef(w http.ResponseWriter, r *http.Request) {
	p, ok := d.allowed(w, r, auth.RoleDeployer)
	if !ok || !d.parseForm(w, r) || !d.haveActions(w, r) {
		return
	}
	in := deployInput{Repo: strings.TrimSpace(r.PostForm.Get("repo")), Branch: strings.TrimSpace(r.PostForm.Get("branch")),
		SHA: strings.ToLower(strings.TrimSpace(r.PostForm.Get("sha")))}
	states, err := d.st.DashboardServices(r.Context())
	if err != nil {
		d.failErr(w, r, err)
		return
	}
	if msg := in.check(reposOf(states)); msg != "" {
		d.fail(w, r, http.StatusBadRequest, msg)
		return
	}
	runID, err := d.actions.DeployRef(r.Context(), in.Repo, in.Branch, in.SHA, p.Name)
	if err != nil {
		d.failErr(w, r, err)
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/runs/%d", runID), http.StatusSeeOther)
}

// parseForm reads a small url-encoded form; anything else is the client's mistake.
func (d *Dashboard) parseForm(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		d.fail(w, r, http.StatusBadRequest, "The form could not be read.")
		return false
	}
	return true
}

func (d *Dashboard) reason(w http.ResponseWriter, r *http.Request) (string, bool) {
	reason := strings.TrimSpace(r.PostForm.Get("reason"))
	if !utf8.ValidString(reason) || strings.ContainsRune(reason, 0) || utf8.RuneCountInString(reason) > maxReason {
		d.fail(w, r, http.StatusBadRequest, fmt.Sprintf("The reason must be text of at most %d characters.", maxReason))
		return "", false
	}
	return reason, true
}

func (d *Dashboard) haveActions(w http.ResponseWriter, r *http.Request) bool {
	if d.actions == nil {
		d.fail(w, r, http.StatusServiceUnavailable, "Actions are not available on this server.")
		return false
	}
	return true
}
