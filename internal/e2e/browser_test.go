package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/slipway-dev/slipway/internal/deploy"
)

// streamDone is true once a deployment page is not, or no longer, following its log: the
// server rendered it final, or app.js got the stream's "end" event.
const streamDone = `(() => { const l = document.getElementById("log"), s = document.getElementById("log-state");
	return !!l && (!l.hasAttribute("data-stream") || (!!s && s.textContent.includes("finished"))); })()`

// The dashboard in a real browser: a deployer logs in, watches a build's log arrive over SSE,
// cancels it with a reason, rolls back from an old deployment's page; a viewer sees no action
// and is refused one. Every page is photographed light and dark, at desktop and phone widths.
func TestBrowserDashboard(t *testing.T) {
	ctx := browser(t, 12*time.Minute)
	e := needDocker(t)
	d := newDB(t)
	shots := artifactsDir(t)
	port := freePort(t)
	repo := e.oneService(t, "web", e.httpdDockerfile(port), map[string]string{"index.html": "one\n"})
	first := repo.commit("first")
	users := usersYAML(t, map[string]string{"admin": "admin", "dep": "deployer", "view": "viewer"})
	srv := startServer(t, d.url,
		repoConfig(t, repo.dir, "registries:\n  - host: "+e.registry+"\n    insecure: true", users),
		"SLIPWAY_DOCKER_BINARY="+e.cli, "SLIPWAY_DOCKER_BUILD_NETWORK=host")

	// 1. A first push succeeds; the deployer logs in and finds the service.
	r1 := d.waitRun(srv.push("acme/app", "main", zeroSHA, first, "first"), 3*time.Minute)
	if len(r1.Deployments) != 1 {
		t.Fatalf("first run: %s %q, %d deployments", r1.Status, r1.Error, len(r1.Deployments))
	}
	a := r1.Deployments[0]
	checkDeployment(t, a, deploy.StatusSucceeded)

	browse(t, ctx, "login page", chromedp.Navigate(srv.URL+"/login"), chromedp.WaitVisible(chromedp.CSS(`input[name=username]`)))
	screenshots(t, ctx, shots, "login")
	login(t, ctx, srv.URL, "dep")
	browse(t, ctx, "services page",
		chromedp.WaitVisible(`//table[contains(@class,"services")]//a[contains(@class,"svc") and normalize-space(.)="web"]`),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`table.services a[href="/deployments/%d"]`, a.ID))))
	screenshots(t, ctx, shots, "services")

	// A second push, so that the first deployment is no longer live and can be rolled back to.
	repo.write("index.html", "two\n")
	second := repo.commit("second")
	r2 := d.waitRun(srv.push("acme/app", "main", first, second, "second"), 3*time.Minute)
	checkDeployment(t, r2.Deployments[0], deploy.StatusSucceeded)

	// 2. A slow build: its page, opened mid-build, gets lines the server had not rendered.
	marker := "e2e-tick-" + e.id
	repo.write("Dockerfile", fmt.Sprintf("FROM %s\nRUN i=0; while [ $i -lt 300 ]; do i=$((i+1)); echo %s-$i; sleep 1; done\n"+
		"COPY index.html /www/index.html\nCMD [\"httpd\", \"-f\", \"-p\", \"127.0.0.1:%d\", \"-h\", \"/www\"]\n", e.base, marker, port))
	slow := repo.commit("slow build")
	runSlow := srv.push("acme/app", "main", second, slow, "slow build")
	c := waitDeployment(t, d, runSlow, func(dep deploy.Deployment) bool {
		return dep.Status == deploy.StatusBuilding && strings.Contains(d.logs(dep.ID), marker)
	})
	browse(t, ctx, "running deployment page",
		chromedp.Navigate(fmt.Sprintf("%s/deployments/%d", srv.URL, c.ID)),
		chromedp.WaitVisible(chromedp.ID("log")))
	// What the server rendered; app.js may have added a line already, which the set below ignores.
	initial := value(t, ctx, "rendered log", chromedp.Evaluate[[]string](
		`window.e2eSeen = new Set([...document.querySelectorAll("#log .ln")].map(l => l.id)); [...window.e2eSeen]`))
	if !value(t, ctx, "stream attribute", chromedp.Evaluate[bool](`document.getElementById("log").hasAttribute("data-stream")`)) {
		t.Fatalf("deployment %d's page does not follow its log (status %s)", c.ID, d.run(runSlow).Deployments[0].Status)
	}
	browse(t, ctx, "a streamed log line", pollTrue(`[...document.querySelectorAll("#log .ln")].some(l => !window.e2eSeen.has(l.id) && l.textContent.includes(`+
		strconv.Quote(marker)+`))`, 2*time.Minute))
	added := value(t, ctx, "streamed lines", chromedp.Evaluate[[]string](
		`[...document.querySelectorAll("#log .ln")].filter(l => !window.e2eSeen.has(l.id)).map(l => l.textContent)`))
	if len(added) == 0 {
		t.Errorf("no streamed line beyond the %d rendered", len(initial))
	} else {
		t.Logf("%d lines rendered, then streamed: %q", len(initial), added[0])
	}
	screenshots(t, ctx, shots, "deployment-running")

	// 4. Cancel the running build, with a reason, through its confirmation page.
	reason := "e2e: too slow, " + e.id
	browse(t, ctx, "cancel",
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`a.button[href="/deployments/%d/cancel"]`, c.ID))),
		chromedp.WaitVisible(chromedp.CSS(`form.confirm textarea#reason`)),
		chromedp.SendKeys(chromedp.CSS(`textarea#reason`), reason),
		chromedp.Click(chromedp.CSS(`form.confirm button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("log")),
		pollTrue(streamDone, 2*time.Minute),
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS(`.page-head .status.st-cancelled`)),
	)
	loc := value(t, ctx, "location", chromedp.Location())
	cancelledBy := value(t, ctx, "cancelled by", chromedp.Text(`//dt[normalize-space(.)="Cancelled by"]/following-sibling::dd[1]`))
	if !strings.HasSuffix(loc, fmt.Sprintf("/deployments/%d", c.ID)) || !strings.Contains(cancelledBy, "dep") || !strings.Contains(cancelledBy, reason) {
		t.Errorf("after cancelling: at %s, cancelled by %q; want dep and %q", loc, cancelledBy, reason)
	}
	if got := d.run(runSlow).Deployments[0]; got.Status != deploy.StatusCancelled {
		t.Errorf("deployment %d is %s after the UI cancelled it", c.ID, got.Status)
	}

	// 3. Roll back to the first deployment from its page; the rollback's own page follows.
	browse(t, ctx, "rollback",
		chromedp.Navigate(fmt.Sprintf("%s/deployments/%d", srv.URL, a.ID)),
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`.actions a[href="/deployments/%d/rollback"]`, a.ID))),
		chromedp.WaitVisible(`//form[contains(@class,"confirm")]//button[normalize-space(.)="Roll back"]`),
		chromedp.Click(chromedp.CSS(`form.confirm button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("log")),
		chromedp.WaitVisible(fmt.Sprintf(`//p[contains(., "A rollback to")]/a[@href="/deployments/%d"]`, a.ID)),
	)
	loc = value(t, ctx, "location", chromedp.Location())
	runHref := value(t, ctx, "run link", chromedp.AttributeValue(chromedp.CSS(`.crumbs a[href^="/runs/"]`), "href")).Value
	browse(t, ctx, "rollback finishes",
		pollTrue(streamDone, 3*time.Minute),
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS(`.page-head .status.st-succeeded`)))
	backID, err := strconv.ParseInt(loc[strings.LastIndex(loc, "/")+1:], 10, 64)
	if err != nil || backID <= c.ID {
		t.Fatalf("the rollback led to %s, not a new deployment's page", loc)
	}
	screenshots(t, ctx, shots, "deployment")
	browse(t, ctx, "run page",
		chromedp.Navigate(srv.URL+runHref),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`a[href="/deployments/%d"]`, backID))))
	screenshots(t, ctx, shots, "run")
	browse(t, ctx, "history page",
		chromedp.Navigate(srv.URL+"/deployments"),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`a[href="/deployments/%d"]`, backID))))
	screenshots(t, ctx, shots, "history")

	// 5. A viewer sees the first deployment's page (which offered the deployer a rollback) with no
	// action, and posting the rollback form is refused.
	browse(t, ctx, "log out",
		chromedp.Click(chromedp.CSS(`form[action="/logout"] button`)),
		chromedp.WaitNotPresent(chromedp.CSS(`header .who`)))
	login(t, ctx, srv.URL, "view")
	browse(t, ctx, "viewer's deployment page",
		chromedp.Navigate(fmt.Sprintf("%s/deployments/%d", srv.URL, a.ID)),
		chromedp.WaitVisible(chromedp.ID("log")))
	actions := value(t, ctx, "action links", chromedp.Evaluate[int](
		`document.querySelectorAll('.actions, a[href$="/rollback"], a[href$="/redeploy"], a[href$="/cancel"], a[href="/deploy"]').length`))
	if actions != 0 {
		t.Errorf("a viewer sees %d action links or buttons on deployment %d", actions, a.ID)
	}
	status := value(t, ctx, "viewer's rollback post", chromedp.Evaluate[int](fmt.Sprintf(
		`fetch("/deployments/%d/rollback", {method: "POST", redirect: "manual",
			headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: ""}).then(r => r.status)`, a.ID),
		chromedp.EvalAwaitPromise))
	if status != 403 {
		t.Errorf("a viewer's rollback post answered %d, want 403", status)
	}
	for _, u := range []string{"admin", "dep", "view"} {
		if strings.Contains(srv.logs.String(), userPassword(u)) {
			t.Errorf("slipway's output contains %s's password", u)
		}
	}
}

// pollTrue waits, on every change of the page, until the expression is true.
func pollTrue(expr string, timeout time.Duration) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Poll[bool](expr, chromedp.WithPollingMutation(), chromedp.WithPollingTimeout(timeout))(ctx, tg)
		return err
	})
}
