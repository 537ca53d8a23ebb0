package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/slipway-dev/slipway/internal/config"
	"github.com/slipway-dev/slipway/internal/store"
	"github.com/slipway-dev/slipway/internal/testenv"
	"github.com/slipway-dev/slipway/migrations"
)

// line is one check of doctor's report.
type line struct{ status, name, detail, hint string }

// runDoctor runs `slipway doctor --config file` and returns its exit status, its output and its
// checks by name (registries can have several).
func runDoctor(t *testing.T, file string, env ...string) (int, string, map[string][]line) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // a hang guard only
	defer cancel()
	var stdout, stderr bytes.Buffer
	err := run(ctx, []string{"doctor", "--config", file}, env, &stdout, &stderr)
	out := stdout.String()
	t.Logf("slipway doctor:\n%s%s", out, stderr.String())
	checks := map[string][]line{}
	var last *line
	for l := range strings.Lines(out) {
		l = strings.TrimRight(l, "\n")
		switch {
		case len(l) > 18 && strings.Contains("PASS FAIL WARN SKIP", l[:4]):
			ln := line{status: l[:4], name: strings.TrimSpace(l[6:18]), detail: l[18:]}
			checks[ln.name] = append(checks[ln.name], ln)
			last = &checks[ln.name][len(checks[ln.name])-1]
		case strings.HasPrefix(strings.TrimSpace(l), "hint: ") && last != nil:
			last.hint = strings.TrimPrefix(strings.TrimSpace(l), "hint: ")
		}
	}
	return exitCode(err), out, checks
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "slipway.yml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const hookSecret = "CANARYhooksecret1"

// migrated is a fresh database with every migration of this build applied (the test template
// may lag behind a migration added since).
func migrated(t *testing.T) string {
	t.Helper()
	dsn := testenv.DatabaseURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute) // a hang guard
	defer cancel()
	st, err := store.Open(ctx, dsn, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ms, err := store.LoadMigrations(migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Migrate(ctx, ms); err != nil {
		t.Fatalf("migrating the test database: %v", err)
	}
	return dsn
}

// Issue 10, item 4: on a host with everything (the harness's PostgreSQL, dockerd and registry)
// every check passes, and doctor exits 0.
func TestDoctorPasses(t *testing.T) {
	dsn := migrated(t)
	dockerHost := testenv.Require(t, "DOCKER_HOST")
	registry := testenv.Require(t, "SLIPWAY_TEST_REGISTRY")
	docker := testenv.Require(t, "SLIPWAY_TEST_DOCKER_CLI")
	testenv.RequireBinary(t, "git")
	file := writeConfig(t, fmt.Sprintf(`
database_url: %q
webhook: {secrets: [%s]}
git: {cache_dir: %s}
docker: {binary: %s, host: %q}
registries:
  - host: %q
`, dsn, hookSecret, filepath.Join(t.TempDir(), "git"), docker, dockerHost, registry))

	code, out, checks := runDoctor(t, file, "SLIPWAY_DATABSE_URL=postgres://u:CANARYpw@x/y")
	if code != 0 {
		t.Errorf("exit status %d, want 0", code)
	}
	for name, want := range map[string]string{
		"config": "PASS", "database": "PASS", "migrations": "PASS", "docker": "PASS", "engine": "PASS",
		"registry": "PASS", "git": "PASS", "git cache": "PASS", "aws": "SKIP", "environment": "WARN",
	} {
		if got := checks[name]; len(got) != 1 || got[0].status != want {
			t.Errorf("%s: %+v, want one %s line", name, got, want)
		}
	}
	if b := checks["buildkit"]; len(b) != 1 || b[0].status == "FAIL" {
		t.Errorf("buildkit: %+v, want PASS or WARN (the classic builder still works)", b)
	}
	for name, want := range map[string]string{
		"engine":      "API 1.",
		"docker":      "Docker version",
		"migrations":  "all ",
		"environment": "did you mean SLIPWAY_DATABASE_URL?",
	} {
		if got := checks[name]; len(got) == 0 || !strings.Contains(got[0].detail, want) {
			t.Errorf("%s: %+v, want %q in it", name, got, want)
		}
	}
	if strings.Contains(out, "CANARY") {
		t.Errorf("doctor shows a secret:\n%s", out)
	}
}

// Issue 10, item 4: each broken thing fails its own line with a hint, the checks that need it
// are skipped, and doctor exits 1.
func TestDoctorFails(t *testing.T) {
	const dbPass = "CANARYdbpass"
	unreachable := "postgres://slipway:" + dbPass + "@127.0.0.1:1/slipway?connect_timeout=10"
	cases := []struct {
		name   string
		config func(t *testing.T) string
		want   map[string]string // check → status
		detail map[string]string // check → text in its line
		hint   map[string]string // check → text in its hint
	}{
		{
			name:   "broken config",
			config: func(*testing.T) string { return "database_url: " + unreachable + "\nqueue: {lease: 30}\n" },
			want:   map[string]string{"config": "FAIL", "database": "SKIP", "migrations": "SKIP", "registry": "SKIP", "aws": "SKIP"},
			detail: map[string]string{"config": `queue.lease: invalid duration "30": give a unit`},
			hint:   map[string]string{"config": "fix the key"},
		},
		{
			name:   "no webhook secret",
			config: func(*testing.T) string { return "database_url: " + unreachable + "\n" },
			want:   map[string]string{"config": "FAIL"},
			detail: map[string]string{"config": "webhook.secrets (SLIPWAY_WEBHOOK_SECRET): at least one secret is required"},
			hint:   map[string]string{"config": "slipway serve refuses to start"},
		},
		{
			name: "unreachable database",
			config: func(*testing.T) string {
				return "database_url: " + unreachable + "\nwebhook: {secrets: [" + hookSecret + "]}\n"
			},
			want:   map[string]string{"config": "PASS", "database": "FAIL", "migrations": "SKIP"},
			detail: map[string]string{"database": "connecting to database"},
			hint:   map[string]string{"database": "check database_url (SLIPWAY_DATABASE_URL)"},
		},
		{
			name: "migrations pending",
			config: func(t *testing.T) string {
				dsn := migrated(t)
				// The newest migration forgotten: as after an upgrade of slipway.
				conn, err := pgx.Connect(context.Background(), dsn)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close(context.Background())
				if _, err := conn.Exec(context.Background(), "DELETE FROM schema_migrations WHERE version = (SELECT max(version) FROM schema_migrations)"); err != nil {
					t.Fatal(err)
				}
				return fmt.Sprintf("database_url: %q\nwebhook: {secrets: [%s]}\n", dsn, hookSecret)
			},
			want:   map[string]string{"database": "PASS", "migrations": "FAIL"},
			detail: map[string]string{"migrations": "1 of "},
			hint:   map[string]string{"migrations": "run slipway migrate --config "},
		},
		{
			name: "no docker CLI, no engine",
			config: func(*testing.T) string {
				return "database_url: " + unreachable + "\nwebhook: {secrets: [" + hookSecret + "]}\n" +
					"docker: {binary: /nonexistent/docker, host: 'unix:///nonexistent/docker.sock'}\n"
			},
			want:   map[string]string{"docker": "FAIL", "engine": "FAIL", "buildkit": "SKIP"},
			detail: map[string]string{"docker": "/nonexistent/docker not found", "engine": "/nonexistent/docker.sock"},
			hint:   map[string]string{"docker": "docker.binary (SLIPWAY_DOCKER_BINARY)", "engine": "docker.host (SLIPWAY_DOCKER_HOST)"},
		},
		{
			name: "buildkit required without buildx",
			config: func(t *testing.T) string {
				// A docker CLI that knows no buildx: what Debian's docker.io is without docker-buildx.
				fake := filepath.Join(t.TempDir(), "docker")
				script := "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'Docker version 28.0.0, build x'; exit 0; fi\necho \"docker: unknown command: docker $1\" >&2; exit 1\n"
				if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
					t.Fatal(err)
				}
				return "database_url: " + unreachable + "\nwebhook: {secrets: [" + hookSecret + "]}\n" +
					"docker: {binary: " + fake + ", host: 'unix:///nonexistent/docker.sock', buildkit: 'on'}\n"
			},
			want:   map[string]string{"docker": "PASS", "buildkit": "FAIL"},
			detail: map[string]string{"buildkit": "docker.buildkit is on but"},
			hint:   map[string]string{"buildkit": "install the buildx plugin"},
		},
		{
			name: "unwritable git cache",
			config: func(*testing.T) string {
				// /proc takes no directory, not even from root.
				return "database_url: " + unreachable + "\nwebhook: {secrets: [" + hookSecret + "]}\ngit: {cache_dir: /proc/slipway/git}\n"
			},
			want:   map[string]string{"git cache": "FAIL"},
			detail: map[string]string{"git cache": "/proc is not writable"},
			hint:   map[string]string{"git cache": "git.cache_dir (SLIPWAY_GIT_CACHE_DIR)"},
		},
		{
			name: "git cache under a file",
			config: func(t *testing.T) string {
				return "database_url: " + unreachable + "\nwebhook: {secrets: [" + hookSecret + "]}\ngit: {cache_dir: " + writeConfig(t, "") + "/git}\n"
			},
			want:   map[string]string{"git cache": "FAIL"},
			detail: map[string]string{"git cache": "slipway.yml is not a directory"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, checks := runDoctor(t, writeConfig(t, c.config(t)))
			if code != 1 {
				t.Errorf("exit status %d, want 1", code)
			}
			for name, want := range c.want {
				if got := checks[name]; len(got) != 1 || got[0].status != want {
					t.Errorf("%s: %+v, want one %s line", name, got, want)
				}
			}
			for name, want := range c.detail {
				if got := checks[name]; len(got) == 0 || !strings.Contains(got[0].detail, want) {
					t.Errorf("%s: %+v, want %q in it", name, got, want)
				}
			}
			for name, want := range c.hint {
				if got := checks[name]; len(got) == 0 || !strings.Contains(got[0].hint, want) {
					t.Errorf("%s: hint %+v, want %q in it", name, got, want)
				}
			}
			for _, s := range []string{dbPass, hookSecret} {
				if strings.Contains(out, s) {
					t.Errorf("doctor shows a secret (%.6s…)", s)
				}
			}
		})
	}
}

// Issue 10, item 4: a registry's login is tried as a push would (Basic, or a token from the
// realm of a Bearer challenge), and never shown.
func TestDoctorRegistryLogin(t *testing.T) {
	const user, password = "deployer", "CANARYregpass"
	// kind: "open" answers anyone, "basic" wants the login, "bearer" sends to its token realm,
	// "other" is no registry.
	serve := func(kind string) *httptest.Server {
		var srv *httptest.Server
		srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, p, ok := r.BasicAuth()
			good := ok && u == user && p == password
			switch {
			case kind == "other":
				http.NotFound(w, r)
			case kind == "open":
			case kind == "basic" && r.URL.Path == "/v2/" && !good:
				w.Header().Set("WWW-Authenticate", `Basic realm="registry"`)
				w.WriteHeader(http.StatusUnauthorized)
			case kind == "bearer" && r.URL.Path == "/token":
				if !good || r.URL.Query().Get("service") != "reg" {
					w.WriteHeader(http.StatusUnauthorized)
					return
				}
				fmt.Fprint(w, `{"token":"tok-1"}`)
			case kind == "bearer" && r.Header.Get("Authorization") != "Bearer tok-1":
				w.Header().Set("WWW-Authenticate", `Bearer realm="`+srv.URL+`/token",service="reg"`)
				w.WriteHeader(http.StatusUnauthorized)
			}
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	host := func(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }

	cases := []struct {
		name     string
		host     string
		user     string
		password config.Secret
		status   status
		detail   string
		hint     string
	}{
		{"open registry", host(serve("open")), "", "", pass, "no login needed", ""},
		{"basic accepted", host(serve("basic")), user, password, pass, "login accepted", ""},
		{"basic refused", host(serve("basic")), user, "wrong", fail, "refused the login: 401", "registries[2].username"},
		{"login needed, none configured", host(serve("basic")), "", "", fail, "requires a login and none is configured", "registries[2].username"},
		{"token accepted", host(serve("bearer")), user, password, pass, "login accepted", ""},
		{"token refused", host(serve("bearer")), user, "wrong", fail, "refused the login: the token service refused it (401", "registries[2].username"},
		{"not a registry", host(serve("other")), user, password, fail, "answered 404 Not Found", "container registry"},
		{"unreachable", host(closed), user, password, fail, "connection refused", "registries[2].host"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a hang guard
			defer cancel()
			res := checkRegistry(ctx, 2, config.Registry{Host: c.host, Username: c.user, Password: c.password}, nil)
			t.Logf("%s %s / hint: %s", res.status, res.detail, res.hint)
			if res.status != c.status || !strings.Contains(res.detail, c.detail) || !strings.Contains(res.hint, c.hint) {
				t.Errorf("got %s %q (hint %q), want %s %q (hint %q)", res.status, res.detail, res.hint, c.status, c.detail, c.hint)
			}
			if strings.Contains(res.detail+res.hint, password) || strings.Contains(res.detail+res.hint, user) {
				t.Errorf("the login is shown: %s / %s", res.detail, res.hint)
			}
		})
	}
}

// Issue 10, item 4: with aws.region set, doctor asks STS whose the credentials are, through the
// server's own AWS wiring, and names what is missing when it cannot.
func TestDoctorAWS(t *testing.T) {
	const account = "123456789012"
	cases := []struct {
		name       string
		keys, role bool
		deny       bool
		status     status
		detail     string
		hint       string
	}{
		{"keys", true, false, false, pass, "credentials of arn:aws:iam::" + account + ":user/slipway (account " + account + ") in eu-west-1", ""},
		{"role assumed", true, true, false, pass, "assumed-role/slipway-deployer", ""},
		{"no credentials", false, false, false, fail, "no AWS credentials: none of the default chain's sources", "give this host credentials"},
		{"role refused", true, true, true, fail, "sts:AssumeRole on " + roleARN + " refused: AccessDenied", "trust policy"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			awsEnv(t, c.keys)
			sts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_ = r.ParseForm()
				w.Header().Set("Content-Type", "text/xml")
				switch r.PostForm.Get("Action") {
				case "AssumeRole":
					if c.deny {
						w.WriteHeader(http.StatusForbidden)
						fmt.Fprint(w, `<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not authorized to perform: sts:AssumeRole</Message></Error></ErrorResponse>`)
						return
					}
					fmt.Fprintf(w, `<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>%s</AccessKeyId><SecretAccessKey>%s</SecretAccessKey>`+
						`<SessionToken>%s</SessionToken><Expiration>%s</Expiration></Credentials></AssumeRoleResult></AssumeRoleResponse>`,
						assumedKey, assumedSecret, assumedToken, time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
				case "GetCallerIdentity":
					arn := "arn:aws:iam::" + account + ":user/slipway"
					if strings.Contains(r.Header.Get("Authorization"), assumedKey) {
						arn = "arn:aws:sts::" + account + ":assumed-role/slipway-deployer/slipway"
					}
					fmt.Fprintf(w, `<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>%s</Arn><UserId>AIDATEST</UserId>`+
						`<Account>%s</Account></GetCallerIdentityResult></GetCallerIdentityResponse>`, arn, account)
				default:
					http.Error(w, "unexpected STS call", http.StatusBadRequest)
				}
			}))
			t.Cleanup(sts.Close)
			cfg := config.AWS{Region: "eu-west-1", Endpoints: config.AWSEndpoints{STS: sts.URL}}
			if c.role {
				cfg.RoleARN, cfg.ExternalID = roleARN, externalID
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a hang guard
			defer cancel()
			res := checkAWS(ctx, cfg)
			t.Logf("%s %s / hint: %s", res.status, res.detail, res.hint)
			if res.status != c.status || !strings.Contains(res.detail, c.detail) || !strings.Contains(res.hint, c.hint) {
				t.Errorf("got %s %q (hint %q), want %s %q (hint %q)", res.status, res.detail, res.hint, c.status, c.detail, c.hint)
			}
			noSecrets(t, "doctor's aws line", res.detail+res.hint)
		})
	}
}
