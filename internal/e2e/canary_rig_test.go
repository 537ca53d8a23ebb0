package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/testenv"
)

// canary is one secret of the server's configuration, set to a value found nowhere else.
type canary struct {
	name  string // the key it is configured under, as a report names it
	value string
}

// canarySecrets are the values of every Secret-typed key of internal/config. The four the
// systemd unit puts in /etc/slipway/env are given twice: in the environment, which wins and is
// what the server uses, and in the file, where they are shadowed (and still must never show).
type canarySecrets struct {
	dbEnv, dbFile       string // password of SLIPWAY_DATABASE_URL, of database_url
	hookEnv, hookFile   string // SLIPWAY_WEBHOOK_SECRET, webhook.secrets
	apiEnv, apiFile     string // SLIPWAY_API_TOKENS, api.tokens
	gitEnv, gitFile     string // SLIPWAY_GIT_TOKEN, git.token
	repoHook            string // repositories[acme/app].webhook_secret
	orgHookOld, orgHook string // orgs[ghorg].webhook_secret, rotating: the old one, the new one
	repoToken           string // repositories[tokco/tok].token
	regPass, deadPass   string // registries[].password: the working registry's, the dead one's
}

func newCanarySecrets() canarySecrets {
	v := func(name string) string {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		return "canary-" + name + "-" + hex.EncodeToString(b)
	}
	return canarySecrets{
		dbEnv: v("dbenv"), dbFile: v("dbfile"), hookEnv: v("hookenv"), hookFile: v("hookfile"),
		apiEnv: v("apienv"), apiFile: v("apifile"), gitEnv: v("gitenv"), gitFile: v("gitfile"),
		repoHook: v("repohook"), orgHookOld: v("orghookold"), orgHook: v("orghook"),
		repoToken: v("repotoken"), regPass: v("regpass"), deadPass: v("deadpass"),
	}
}

func (s canarySecrets) list() []canary {
	return []canary{
		{"SLIPWAY_DATABASE_URL (password)", s.dbEnv},
		{"database_url (password, shadowed)", s.dbFile},
		{"SLIPWAY_WEBHOOK_SECRET", s.hookEnv},
		{"webhook.secrets (shadowed)", s.hookFile},
		{"SLIPWAY_API_TOKENS", s.apiEnv},
		{"api.tokens (shadowed)", s.apiFile},
		{"SLIPWAY_GIT_TOKEN", s.gitEnv},
		{"git.token (shadowed)", s.gitFile},
		{"repositories[acme/app].webhook_secret", s.repoHook},
		{"orgs[ghorg].webhook_secret[0]", s.orgHookOld},
		{"orgs[ghorg].webhook_secret[1]", s.orgHook},
		{"repositories[tokco/tok].token", s.repoToken},
		{"registries[proxy].password", s.regPass},
		{"registries[dead].password", s.deadPass},
	}
}

// canaryRig is one server with canaries in every secret, and what it needs around it. Everything
// the server may write goes under root (its state dir, git cache, HOME, TMPDIR), which is searched
// once it stops; only the config file is left out, and the children's records (record/) are
// searched as argv and environments.
type canaryRig struct {
	t          *testing.T
	e          *dockerEnv
	d          *db
	s          canarySecrets
	root       string
	configPath string
	recordDir  string
	repo       *gitRepo
	config     string // the config file's text

	registry      string // host:port of the proxy that takes pushes with the canary login
	registryAuths atomic.Int32
	dead          string // host:port with nothing listening, configured with a login
	tokURL        string // https clone URL of tokco/tok, nothing listening: gets repoToken
	githubURL     string // github.url, nothing listening: ghorg/app is fetched there with gitEnv
	ghorgURL      string // the clone URL ghorg/app gets from it

	srv       *server
	responses []canarySource
}

func newCanaryRig(t *testing.T, e *dockerEnv, d *db) *canaryRig {
	t.Helper()
	c := &canaryRig{t: t, e: e, d: d, s: newCanarySecrets(), root: t.TempDir()}
	c.configPath = filepath.Join(c.root, "slipway.yml")
	c.recordDir = filepath.Join(c.root, "record")
	for _, dir := range []string{c.recordDir, filepath.Join(c.root, "bin"), filepath.Join(c.root, "home"), filepath.Join(c.root, "tmp")} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	c.registry = c.startRegistryProxy()
	c.dead = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	c.tokURL = fmt.Sprintf("https://127.0.0.1:%d/tokco/tok.git", freePort(t))
	c.githubURL = fmt.Sprintf("https://127.0.0.1:%d", freePort(t))
	c.ghorgURL = c.githubURL + "/ghorg/app.git"
	c.writeWrapper("docker", e.cli)
	gitPath, err := exec.LookPath("git")
	if err != nil {
		t.Fatal(err)
	}
	c.writeWrapper("git", gitPath)
	return c
}

// image is the name of a service's image in registry (host:port).
func (c *canaryRig) image(registry, name string) string {
	return registry + "/e2e-" + c.e.id + "/" + name
}

// startRegistryProxy puts a registry that wants a login (Basic, the canary password) in front
// of the harness's, which wants none, so that the password is really used: by docker push
// through the per-push config, and by the server's own digest lookups.
func (c *canaryRig) startRegistryProxy() string {
	up, err := url.Parse("http://" + c.e.registry)
	if err != nil {
		c.t.Fatal(err)
	}
	// The upstream builds its Location headers from the Host header, which the proxy passes on:
	// uploads come back through the proxy.
	proxy := httputil.NewSingleHostReverseProxy(up)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if user, pass, ok := r.BasicAuth(); !ok || user != "slipway" || pass != c.s.regPass {
			w.Header().Set("WWW-Authenticate", `Basic realm="slipway-canary"`)
			w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprintln(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
			return
		}
		c.registryAuths.Add(1)
		r.Header.Del("Authorization")
		proxy.ServeHTTP(w, r)
	}))
	c.t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// canaryWrapperScript records a child's argv ($0 first) and its whole environment, as the kernel
// gave it, in a new file pair under %[2]q, then runs the real program %[1]q in its place.
const canaryWrapperScript = `#!/bin/sh
f=$(%[3]q %[2]q/%[4]s.XXXXXX) || exit 97
printf '%%s\0' "$0" "$@" >"$f"
%[5]q /proc/$$/environ >"$f.env"
exec %[1]q "$@"
`

func (c *canaryRig) writeWrapper(name, real string) {
	c.t.Helper()
	mktemp, err := exec.LookPath("mktemp")
	if err != nil {
		c.t.Fatal(err)
	}
	cat, err := exec.LookPath("cat")
	if err != nil {
		c.t.Fatal(err)
	}
	script := fmt.Sprintf(canaryWrapperScript, real, c.recordDir, mktemp, name, cat)
	if err := os.WriteFile(filepath.Join(c.root, "bin", name), []byte(script), 0o755); err != nil {
		c.t.Fatal(err)
	}
}

// writeRepo makes acme/app: web deploys, broken fails its build, pushfail fails its push.
func (c *canaryRig) writeRepo() string {
	c.t.Helper()
	c.repo = newGitRepo(c.t)
	var b strings.Builder
	b.WriteString("services:\n")
	for _, svc := range []struct{ name, registry string }{{"web", c.registry}, {"broken", c.registry}, {"pushfail", c.dead}} {
		fmt.Fprintf(&b, "  %s:\n    paths: [%s/**]\n    context: %s\n    image: %s\n    environments:\n"+
			"      production: {branch: main, docker: {container: %s}}\n",
			svc.name, svc.name, svc.name, c.image(svc.registry, svc.name), c.e.container(svc.name))
		c.e.removeContainer(c.e.container(svc.name))
	}
	c.repo.write(".slipway.yml", b.String())
	loop := "CMD [\"sh\", \"-c\", \"trap 'exit 0' TERM; while true; do sleep 1; done\"]\n"
	c.repo.write("web/Dockerfile", fmt.Sprintf("FROM %s\nCOPY version /version\n%s", c.e.base, loop))
	c.repo.write("web/version", "1\n")
	c.repo.write("broken/Dockerfile", fmt.Sprintf("FROM %s\nRUN echo canary build about to fail && exit 7\n", c.e.base))
	c.repo.write("pushfail/Dockerfile", fmt.Sprintf("FROM %s\nCOPY version /version\n%s", c.e.base, loop))
	c.repo.write("pushfail/version", "1\n")
	return c.repo.commit("three services")
}

// writeConfig writes the server's config file: every secret a canary, and the repositories the
// scenario pushes to.
func (c *canaryRig) writeConfig(listen string) {
	c.t.Helper()
	s := c.s
	cfg := fmt.Sprintf(`listen_addr: %q
database_url: %q
log_level: debug
log_format: json
state_dir: %q
workers: 4
webhook:
  secrets: [%q]
queue:
  poll_interval: 200ms
  backoff_base: 100ms
repositories:
  - name: acme/app
    clone_url: %q
    webhook_secret: %q
  - name: other/missing
    clone_url: %q
  - name: tokco/tok
    clone_url: %q
    token: %q
  - name: ghorg/app
orgs:
  - name: ghorg
    webhook_secret: [%q, %q]
github:
  url: %q
policy:
  rules:
    - repo: acme/app
      targets: ["docker:*"]
      images: [%q, %q]
git:
  cache_dir: %q
  token: %q
  allow_insecure_urls: true
docker:
  build_network: host
  stable_for: 1s
registries:
  - host: %q
    username: slipway
    password: %q
    insecure: true
  - host: %q
    username: slipway
    password: %q
    insecure: true
api:
  tokens: [%q]
`, listen, withPassword(c.t, c.d.url, s.dbFile), filepath.Join(c.root, "state"), s.hookFile,
		c.repo.dir, s.repoHook, filepath.Join(c.root, "missing.git"), c.tokURL, s.repoToken,
		s.orgHookOld, s.orgHook, c.githubURL, c.registry+"/**", c.dead+"/**",
		filepath.Join(c.root, "git-cache"), s.gitFile, c.registry, s.regPass, c.dead, s.deadPass, s.apiFile)
	if err := os.WriteFile(c.configPath, []byte(cfg), 0o600); err != nil {
		c.t.Fatal(err)
	}
	c.config = cfg
}

// startupErrors runs slipway serve on broken copies of the config file, the YAML going wrong right
// next to the secrets, and returns what each printed before it exited. The copies live outside
// root: they hold the canaries.
func (c *canaryRig) startupErrors() []canarySource {
	c.t.Helper()
	s := c.s
	cases := []struct{ label, old, new string }{
		{"an unclosed list", fmt.Sprintf("tokens: [%q]", s.apiFile), fmt.Sprintf("tokens: [%q", s.apiFile)},
		{"a secret given as a mapping", fmt.Sprintf("webhook_secret: %q", s.repoHook), fmt.Sprintf("webhook_secret: {%q: %q}", s.repoHook, s.orgHookOld)},
		{"a key given twice", fmt.Sprintf("password: %q\n", s.regPass), fmt.Sprintf("password: %q\n    password: %q\n", s.regPass, s.deadPass)},
		{"an unknown key after a secret", fmt.Sprintf("token: %q\n", s.repoToken), fmt.Sprintf("token: %q\n    tokn: %q\n", s.repoToken, s.gitFile)},
		{"a database URL that is not postgres://", "database_url: \"postgres:", "database_url: \"mysql:"},
		{"a bad indentation under a secret", fmt.Sprintf("    token: %q\n", s.repoToken), fmt.Sprintf("    token: %q\n   webhook_secret: %q\n", s.repoToken, s.hookFile)},
	}
	dir := c.t.TempDir()
	var out []canarySource
	for i, tc := range cases {
		if !strings.Contains(c.config, tc.old) {
			c.t.Fatalf("config has no %q to break", c.masker().mask([]byte(tc.old)))
		}
		path := filepath.Join(dir, fmt.Sprintf("broken-%d.yml", i))
		if err := os.WriteFile(path, []byte(strings.Replace(c.config, tc.old, tc.new, 1)), 0o600); err != nil {
			c.t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // only stops a hung test
		cmd := exec.CommandContext(ctx, binary(c.t), "serve")
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "TMPDIR=" + dir, "SLIPWAY_CONFIG=" + path}
		text, err := cmd.CombinedOutput()
		cancel()
		if err == nil || len(text) == 0 {
			c.t.Errorf("slipway serve with %s: %v, output %q; want an error", tc.label, err, c.masker().mask(text))
		}
		out = append(out, canarySource{"start-up error output with " + tc.label, text})
	}
	return out
}

func withPassword(t testing.TB, raw, password string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), password)
	return u.String()
}

// start runs slipway serve as deploy/slipway.service does: the config file, and the secrets the
// unit keeps in /etc/slipway/env in the environment. Nothing else of the test's environment but
// DOCKER_HOST goes in; PATH finds the git wrapper first.
func (c *canaryRig) start() *server {
	c.t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(c.t))
	c.writeConfig(addr)
	cmd := exec.Command(binary(c.t), "serve")
	cmd.Env = []string{
		"PATH=" + filepath.Join(c.root, "bin") + string(os.PathListSeparator) + os.Getenv("PATH"),
		"HOME=" + filepath.Join(c.root, "home"),
		"TMPDIR=" + filepath.Join(c.root, "tmp"),
		"LANG=C.UTF-8",
		"DOCKER_HOST=" + os.Getenv("DOCKER_HOST"),
		"SLIPWAY_CONFIG=" + c.configPath,
		"SLIPWAY_DOCKER_BINARY=" + filepath.Join(c.root, "bin", "docker"),
		"SLIPWAY_DATABASE_URL=" + withPassword(c.t, c.d.url, c.s.dbEnv),
		"SLIPWAY_WEBHOOK_SECRET=" + c.s.hookEnv,
		"SLIPWAY_API_TOKENS=" + c.s.apiEnv,
		"SLIPWAY_GIT_TOKEN=" + c.s.gitEnv,
	}
	s := &server{t: c.t, cmd: cmd, URL: "http://" + addr, logs: &testenv.SyncBuffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = s.logs, s.logs
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	go func() { s.done <- cmd.Wait() }()
	c.t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-s.done
		}
		if c.t.Failed() {
			c.t.Logf("slipway logs, canaries masked:\n%s", c.masker().mask([]byte(s.logs.String())))
		}
	})
	c.srv = s
	deadline := time.Now().Add(2 * time.Minute) // only stops a hung test
	for {
		if code, _ := c.call("GET /readyz (start-up)", http.MethodGet, "/readyz", "", nil, nil); code == http.StatusOK {
			return s
		}
		select {
		case err := <-s.done:
			c.t.Fatalf("slipway exited before ready: %v\n%s", err, c.masker().mask([]byte(s.logs.String())))
		default:
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("slipway not ready in time")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
