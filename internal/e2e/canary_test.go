package e2e

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/testenv"
)

// The canary test of issue 7: every secret of the configuration set to a value of its own, the
// server driven through a deploy, a failed build, a failed push, failed clones (one with the
// repository's token, one with git.token, sent to their https hosts), a rollback, API reads,
// pages, metrics, forged webhooks, and start-ups on broken copies of the config file; then every
// place a secret could land is searched for every value, as written and inside base64: the
// server's output and its start-up errors, every HTTP answer, a dump of the database, the argv
// and environment of every docker and git child, the images built and the containers, every file
// left under the server's dirs, and what the harness's PostgreSQL, dockerd and registry logged
// meanwhile. A hit names the secret and the place, never the value.
func TestCanarySecrets(t *testing.T) {
	started := time.Now()
	e := needDocker(t)
	pgBin := testenv.Require(t, "SLIPWAY_TEST_PG_BIN")
	d := newDB(t)
	harness := harnessLogs(t)
	c := newCanaryRig(t, e, d)
	first := c.writeRepo()
	t.Cleanup(func() {
		refs, _ := e.docker("images", "--format", "{{.Repository}}:{{.Tag}}")
		for _, ref := range strings.Fields(refs) {
			if strings.Contains(ref, "/e2e-"+e.id+"/") {
				_, _ = e.docker("rmi", "-f", ref)
			}
		}
	})
	srv := c.start()

	// acme/app (its own webhook secret): web deploys, broken fails its build, pushfail its push.
	appRun := c.push("acme/app", c.s.repoHook, zeroSHA, first)
	// Failed clones: a path with no repository (signed with the global secret), tokco/tok's https
	// remote with its token, ghorg/app fetched from github.url with git.token (signed with its
	// organisation's secret); nothing listens at either.
	cloneRuns := map[string]int64{
		"other/missing": c.push("other/missing", c.s.hookEnv, zeroSHA, canarySHA()),
		"tokco/tok":     c.push("tokco/tok", c.s.hookEnv, zeroSHA, canarySHA()),
		"ghorg/app":     c.push("ghorg/app", c.s.orgHook, zeroSHA, canarySHA()),
	}
	r1 := c.wait(appRun, true)
	deps := byService(r1)
	c.expect(deps["web"], deploy.StatusSucceeded, "")
	c.expect(deps["broken"], deploy.StatusFailed, "build failed")
	c.expect(deps["pushfail"], deploy.StatusFailed, "pushing")
	for repo, id := range cloneRuns {
		if r := c.wait(id, false); r.Status != deploy.StatusFailed {
			t.Errorf("%s: run %s, want failed (its clone cannot work): %s", repo, r.Status, c.masker().mask([]byte(r.Error)))
		}
	}

	// A second push deploys web again; then one click back to the first.
	c.repo.write("web/version", "2\n")
	second := c.repo.commit("web two")
	r2 := c.wait(c.push("acme/app", c.s.repoHook, first, second), true)
	if len(r2.Deployments) != 1 {
		t.Fatalf("second push: %d deployments, want web only", len(r2.Deployments))
	}
	c.expect(r2.Deployments[0], deploy.StatusSucceeded, "")
	code, body := c.call("POST rollback", http.MethodPost, fmt.Sprintf("/api/v1/deployments/%d/rollback", deps["web"].ID), c.s.apiEnv, nil, nil)
	var rb struct {
		RunID int64 `json:"run_id"`
	}
	if err := json.Unmarshal(body, &rb); code != http.StatusAccepted || err != nil {
		t.Fatalf("rollback: %d %s", code, c.masker().mask(body))
	}
	rr := c.wait(rb.RunID, true)
	if len(rr.Deployments) != 1 {
		t.Fatalf("rollback run: %d deployments", len(rr.Deployments))
	}
	c.expect(rr.Deployments[0], deploy.StatusSucceeded, "")

	// Forged deliveries: acme/app signed with the global secret and with another organisation's
	// (acme/app has its own), and unsigned. A wrong API token.
	forged := pushPayload("acme/app", "main", second, canarySHA(), "forged")
	for _, f := range []struct{ label, key string }{{"global", c.s.hookEnv}, {"ghorg's", c.s.orgHookOld}, {"no", ""}} {
		if code, body := c.deliver("webhook with "+f.label+" signature", f.key, forged); code != http.StatusUnauthorized {
			t.Errorf("a push signed with %s secret: %d %s, want 401", f.label, code, c.masker().mask(body))
		}
	}
	if code, _ := c.call("GET /api/v1/live with a wrong token", http.MethodGet, "/api/v1/live?repo=acme/app", "wrong-token-"+canarySHA(), nil, nil); code != http.StatusUnauthorized {
		t.Errorf("a wrong API token: %d, want 401", code)
	}

	// Everything the API, the pages and the metrics show.
	runs := []int64{appRun, r2.ID, rb.RunID}
	for _, id := range cloneRuns {
		runs = append(runs, id)
	}
	var depIDs []int64
	for _, id := range runs {
		c.read(fmt.Sprintf("/api/v1/runs/%d", id))
		for _, dep := range d.run(id).Deployments {
			depIDs = append(depIDs, dep.ID)
		}
	}
	for _, id := range depIDs {
		c.read(fmt.Sprintf("/api/v1/deployments/%d", id))
		c.read(fmt.Sprintf("/api/v1/deployments/%d/logs", id))
	}
	c.read("/api/v1/deployments?limit=500")
	c.read("/api/v1/deployments?repo=acme/app&status=failed")
	c.read("/api/v1/live?repo=acme/app")
	for _, page := range []string{"/healthz", "/readyz", "/pipeline.schema.json"} {
		if code, _ := c.call("GET "+page, http.MethodGet, page, "", nil, nil); code != http.StatusOK {
			t.Errorf("GET %s: %d", page, code)
		}
	}
	// The dashboard's pages, the configuration page (secrets redacted) and the audit log, as the
	// config token (an admin).
	pages := []string{"/", "/deployments", "/admin/config", "/admin/audit", "/deploy", "/metrics"}
	for _, id := range runs {
		pages = append(pages, fmt.Sprintf("/runs/%d", id))
	}
	for _, id := range depIDs {
		pages = append(pages, fmt.Sprintf("/deployments/%d", id), fmt.Sprintf("/deployments/%d/log.txt", id))
	}
	for _, page := range pages {
		if code, _ := c.call("GET "+page, http.MethodGet, page, c.s.apiEnv, nil, nil); code != http.StatusOK {
			t.Errorf("GET %s: %d", page, code)
		}
	}

	if err := srv.stop(2 * time.Minute); err != nil {
		t.Errorf("slipway exit: %v", err)
	}

	// The exercise was real: each login and token was used where it belongs.
	children := c.children()
	childSources, sent := c.childSources(children)
	c.expectChild(children, "docker", "build", c.image(c.registry, "web"))
	c.expectChild(children, "docker", "push", c.image(c.registry, "web"))
	c.expectChild(children, "docker", "push", c.image(c.dead, "pushfail"))
	c.expectChild(children, "git", "fetch", c.repo.dir)
	if c.registryAuths.Load() == 0 {
		t.Error("the registry proxy never saw the canary login: the registry password was not exercised")
	}
	for _, u := range []string{c.tokURL, c.ghorgURL} {
		if sent[u] == 0 {
			t.Errorf("no git fetch from %s carried its token: that token was not exercised", u)
		}
	}

	sources := []canarySource{{"slipway's output (stdout and stderr)", []byte(srv.logs.String())}}
	sources = append(sources, c.responses...)
	sources = append(sources, c.databaseDump(pgBin))
	sources = append(sources, childSources...)
	docker, images := c.dockerObjects()
	sources = append(sources, docker...)
	sources = append(sources, c.leftoverFiles()...)
	sources = append(sources, harness()...)
	sources = append(sources, c.startupErrors()...)
	var size int
	for _, s := range sources {
		size += len(s.data)
	}
	hits := c.masker().search(sources)
	for _, h := range hits {
		t.Errorf("canary of %s found %d× in %s: %s", h.canary, h.count, h.source, h.context)
	}
	t.Logf("%d canaries, %d places searched (%d KiB): %d HTTP answers, %d children (%d docker, %d git), %d images %v; %d hits; %s",
		len(c.s.list()), len(sources), size>>10, len(c.responses), len(children), canaryCount(children, "docker"),
		canaryCount(children, "git"), len(images), images, len(hits), time.Since(started).Round(time.Second))
}

func canaryCount(children []canaryChild, kind string) int {
	n := 0
	for _, ch := range children {
		if ch.kind == kind {
			n++
		}
	}
	return n
}

func canarySHA() string {
	b := make([]byte, 20)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// push sends a push of repo signed with key and returns the run it queued.
func (c *canaryRig) push(repo, key, before, after string) int64 {
	c.t.Helper()
	code, body := c.deliver("push of "+repo, key, pushPayload(repo, "main", before, after, "canary"))
	var out struct {
		RunID int64 `json:"run_id"`
	}
	if err := json.Unmarshal(body, &out); code != http.StatusAccepted || err != nil || out.RunID == 0 {
		c.t.Fatalf("push of %s: %d %s", repo, code, c.masker().mask(body))
	}
	return out.RunID
}

// deliver posts a push event signed with key ("" for unsigned).
func (c *canaryRig) deliver(label, key string, body []byte) (int, []byte) {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("X-GitHub-Event", "push")
	h.Set("X-GitHub-Delivery", "canary-delivery-"+canarySHA())
	if key != "" {
		mac := hmac.New(sha256.New, []byte(key))
		mac.Write(body)
		h.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	}
	return c.call(label, http.MethodPost, "/webhooks/github", "", h, body)
}

// read GETs an API path with the token, expecting 200.
func (c *canaryRig) read(path string) {
	c.t.Helper()
	if code, body := c.call("GET "+path, http.MethodGet, path, c.s.apiEnv, nil, nil); code != http.StatusOK {
		c.t.Errorf("GET %s: %d %s", path, code, c.masker().mask(body))
	}
}

// wait waits until the run is final, and its deployments too when withDeployments.
func (c *canaryRig) wait(id int64, withDeployments bool) deploy.Run {
	c.t.Helper()
	deadline := time.Now().Add(5 * time.Minute) // only stops a hung test
	for {
		r := c.d.run(id)
		done := r.Status.Final() || r.Status == deploy.StatusFailed
		if withDeployments {
			for _, dep := range r.Deployments {
				done = done && dep.Status.Final()
			}
		}
		if done {
			return r
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("run %d not finished: %s %s", id, r.Status, c.masker().mask([]byte(r.Error)))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *canaryRig) expect(d deploy.Deployment, want deploy.Status, errWant string) {
	c.t.Helper()
	if d.Status != want || !strings.Contains(d.Error, errWant) {
		c.t.Errorf("deployment %d (%s): %s %s, want %s with %q", d.ID, d.Service, d.Status,
			c.masker().mask([]byte(d.Error)), want, errWant)
	}
}

// expectChild fails unless a child of kind ran sub with an argument holding ref.
func (c *canaryRig) expectChild(children []canaryChild, kind, sub, ref string) {
	c.t.Helper()
	for _, ch := range children {
		if ch.kind == kind && slices.Contains(ch.argv, sub) && slices.ContainsFunc(ch.argv, func(a string) bool {
			return strings.Contains(a, ref)
		}) {
			return
		}
	}
	c.t.Errorf("no %s child ran %s of %s: the exercise did not happen", kind, sub, ref)
}
