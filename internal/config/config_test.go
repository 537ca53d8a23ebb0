package config

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "slipway.yml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const base = "SLIPWAY_DATABASE_URL=postgres://u:pw@localhost/db"

func TestLoad(t *testing.T) {
	file := writeFile(t, `
listen_addr: "127.0.0.1:9000"
workers: 3
webhook:
  secrets: [from-the-file-1]
queue:
  lease: 45s
repositories:
  - name: acme/api
    branches: [main, "release/*"]
policy:
  rules:
    - repo: acme/*
      targets: ["docker:*"]
`)
	cfg, err := Load(file, []string{base, "SLIPWAY_WORKERS=7", "SLIPWAY_WEBHOOK_SECRET=new-secret-1, old-secret-2", "IGNORED=1",
		"SLIPWAY_MIGRATE_ON_START=false"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ListenAddr != "127.0.0.1:9000" {
		t.Errorf("listen_addr from file: %q", cfg.ListenAddr)
	}
	if cfg.Workers != 7 {
		t.Errorf("env must win over the file: workers = %d", cfg.Workers)
	}
	if len(cfg.Webhook.Secrets) != 2 || cfg.Webhook.Secrets[1].Reveal() != "old-secret-2" {
		t.Errorf("secrets: %d", len(cfg.Webhook.Secrets))
	}
	if cfg.Queue.Lease.D() != 45*time.Second || cfg.Queue.PollInterval.D() != 2*time.Second {
		t.Errorf("queue: %+v", cfg.Queue)
	}
	if len(cfg.Policy.Rules) != 1 || cfg.Repositories[0].Branches[1] != "release/*" {
		t.Errorf("policy/repos: %+v %+v", cfg.Policy, cfg.Repositories)
	}
	if err := cfg.ValidateServe(); err != nil {
		t.Error(err)
	}
	if cfg.MigrateFirst() {
		t.Error("SLIPWAY_MIGRATE_ON_START=false ignored")
	}
}

func TestLoadErrorsNameTheKey(t *testing.T) {
	cases := []struct {
		name, file string
		env        []string
		want       string
	}{
		{"unknown key in file", "workerz: 3\n", nil, "workerz"},
		{"bad duration in file", "queue:\n  lease: soon\n", nil, "soon"},
		{"bad workers env", "", []string{"SLIPWAY_WORKERS=many"}, "SLIPWAY_WORKERS"},
		{"workers out of range", "", []string{"SLIPWAY_WORKERS=0"}, "workers (SLIPWAY_WORKERS)"},
		{"missing database", "", []string{"SLIPWAY_DATABASE_URL="}, "database_url"},
		{"not postgres", "", []string{"SLIPWAY_DATABASE_URL=mysql://x"}, "database_url"},
		{"bad repo", "repositories:\n  - name: nope\n", nil, "repositories[0].name"},
		{"bad branch pattern", "repositories:\n  - name: a/b\n    branches: ['[']\n", nil, "repositories[0].branches[0]"},
		{"bad policy", "policy:\n  rules:\n    - repo: a/b\n      targets: ['ecs:*']\n", nil, "policy"},
		{"bad buildkit", "", []string{"SLIPWAY_DOCKER_BUILDKIT=maybe"}, "docker.buildkit"},
		{"bad boolean", "", []string{"SLIPWAY_MIGRATE_ON_START=perhaps"}, "SLIPWAY_MIGRATE_ON_START"},
		{"bad body limit", "", []string{"SLIPWAY_WEBHOOK_MAX_BODY_BYTES=10MB"}, "SLIPWAY_WEBHOOK_MAX_BODY_BYTES"},
		{"short secret", "webhook:\n  secrets: [abc]\n", nil, "webhook.secrets[0]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { wantLoadError(t, c.file, c.env, c.want, "pw@") })
	}
}

// wantLoadError loads file (none when "") with base and env, and wants an error that names want
// and does not show secret.
func wantLoadError(t *testing.T, file string, env []string, want, secret string) {
	t.Helper()
	path := ""
	if file != "" {
		path = writeFile(t, file)
	}
	_, err := Load(path, append([]string{base}, env...))
	if err == nil {
		t.Fatal("accepted")
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not name %q", err, want)
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("error shows a secret (%q): %q", secret, err)
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	cfg, err := Load("", []string{base, "SLIPWAY_WEBHOOK_SECRET=super-secret-value", "SLIPWAY_GIT_TOKEN=ghs_token_value"})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "cfg", cfg)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("config", "cfg", cfg)
	buf.WriteString(fmt.Sprintf("%v %+v %#v", cfg, cfg, cfg))
	for _, s := range []string{"super-secret-value", "ghs_token_value", "u:pw"} {
		if strings.Contains(buf.String(), s) {
			t.Errorf("%q printed", s)
		}
	}
}

func TestMatchPush(t *testing.T) {
	rs := Repos{{Name: "Acme/API", Branches: []string{"main", "release/*"}}, {Name: "acme/web", CloneURL: "file:///x"}}
	cases := []struct {
		repo, branch string
		ok           bool
		clone        string
	}{
		{"acme/api", "main", true, ""},
		{"acme/api", "release/2", true, ""},
		{"acme/api", "release/2/x", false, ""},
		{"acme/api", "dev", false, ""},
		{"acme/web", "anything/at/all", true, "file:///x"},
		{"other/repo", "main", false, ""},
	}
	for _, c := range cases {
		clone, reason, ok := rs.MatchPush(c.repo, c.branch)
		if ok != c.ok || clone != c.clone || (!ok && reason == "") {
			t.Errorf("%s@%s: %q %q %v", c.repo, c.branch, clone, reason, ok)
		}
	}
}

// The example in deploy/ must stay a configuration the server accepts.
func TestExampleConfig(t *testing.T) {
	cfg, err := Load(filepath.Join("..", "..", "deploy", "slipway.example.yml"),
		[]string{base, "SLIPWAY_WEBHOOK_SECRET=example-secret", "SLIPWAY_REGISTRY_PASSWORD_EXAMPLE=example-password"})
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.ValidateServe(); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Repositories) != 2 || len(cfg.Policy.Rules) != 2 {
		t.Errorf("example lost its repositories or policy: %+v", cfg)
	}
}

// Attacks of issue 7 on the configuration: a token sent where it is not configured for, transports
// that read local repositories or send the token in clear, and credentials inside clone URLs.
func TestCloneURLsAndTokens(t *testing.T) {
	const canary = "ghp_CANARY0123456789"
	cases := []struct {
		name     string
		file     string
		env      []string
		wantErr  string // the key the error must name; "" when the configuration is valid
		repo     string // then: Token(repo) must be token
		token    string
		cloneURL string // and the repository's resolved clone URL
	}{
		{name: "credentials in clone_url", file: "repositories:\n  - name: acme/x\n    clone_url: https://" + canary + "@github.com/acme/x.git\n",
			wantErr: "repositories[0].clone_url"},
		{name: "user and password in clone_url", file: "repositories:\n  - name: acme/x\n    clone_url: https://x-access-token:" + canary + "@github.com/acme/x.git\n",
			wantErr: "repositories[0].clone_url"},
		{name: "file clone_url", file: "repositories:\n  - name: acme/x\n    clone_url: file:///srv/git/other.git\n",
			wantErr: "repositories[0].clone_url"},
		{name: "local path clone_url", file: "repositories:\n  - name: acme/x\n    clone_url: /srv/git/other.git\n",
			wantErr: "repositories[0].clone_url"},
		{name: "plain http clone_url", file: "repositories:\n  - name: acme/x\n    clone_url: http://git.internal/acme/x.git\n",
			wantErr: "repositories[0].clone_url"},
		{name: "git.token not sent to another host", file: "repositories:\n  - name: acme/x\n    clone_url: https://git.evil.example/acme/x.git\n",
			env: []string{"SLIPWAY_GIT_TOKEN=" + canary}, repo: "acme/x", token: "", cloneURL: "https://git.evil.example/acme/x.git"},
		{name: "default: github.com with git.token", file: "repositories:\n  - name: Acme/X\n",
			env: []string{"SLIPWAY_GIT_TOKEN=" + canary}, repo: "ACME/x", token: canary, cloneURL: "https://github.com/acme/x.git"},
		{name: "clone_url on github.url's host gets git.token", file: "repositories:\n  - name: acme/x\n    clone_url: https://github.com/acme/fork.git\n",
			env: []string{"SLIPWAY_GIT_TOKEN=" + canary}, repo: "acme/x", token: canary, cloneURL: "https://github.com/acme/fork.git"},
		{name: "GitHub Enterprise base URL", file: "github:\n  url: https://ghe.example.com/\nrepositories:\n  - name: acme/x\n",
			env: []string{"SLIPWAY_GIT_TOKEN=" + canary}, repo: "acme/x", token: canary, cloneURL: "https://ghe.example.com/acme/x.git"},
		{name: "GitHub base URL from the environment", file: "repositories:\n  - name: acme/x\n",
			env: []string{"SLIPWAY_GITHUB_URL=https://ghe.example.com"}, repo: "acme/x", cloneURL: "https://ghe.example.com/acme/x.git"},
		{name: "a repository's own token goes to its own host", file: "repositories:\n  - name: acme/x\n    clone_url: https://git.example.org/x.git\n    token: " + canary + "\n",
			env: []string{"SLIPWAY_GIT_TOKEN=other-token"}, repo: "acme/x", token: canary, cloneURL: "https://git.example.org/x.git"},
		{name: "unconfigured repository: no token", file: "repositories:\n  - name: acme/x\n",
			env: []string{"SLIPWAY_GIT_TOKEN=" + canary}, repo: "acme/y", token: ""},
		{name: "file clone_url allowed explicitly, no token", file: "git:\n  allow_insecure_urls: true\nrepositories:\n  - name: acme/x\n    clone_url: file:///srv/git/x.git\n",
			env: []string{"SLIPWAY_GIT_TOKEN=" + canary}, repo: "acme/x", token: "", cloneURL: "file:///srv/git/x.git"},
		{name: "local path allowed from the environment, no token", file: "repositories:\n  - name: acme/x\n    clone_url: /srv/git/x\n",
			env: []string{"SLIPWAY_GIT_ALLOW_INSECURE_URLS=true", "SLIPWAY_GIT_TOKEN=" + canary}, repo: "acme/x", token: "", cloneURL: "/srv/git/x"},
		{name: "plain http allowed explicitly, no token", file: "git:\n  allow_insecure_urls: true\nrepositories:\n  - name: acme/x\n    clone_url: http://127.0.0.1:8000/x.git\n",
			env: []string{"SLIPWAY_GIT_TOKEN=" + canary}, repo: "acme/x", token: "", cloneURL: "http://127.0.0.1:8000/x.git"},
		{name: "credentials refused even when insecure is allowed", file: "git:\n  allow_insecure_urls: true\nrepositories:\n  - name: acme/x\n    clone_url: http://" + canary + "@127.0.0.1/x.git\n",
			wantErr: "repositories[0].clone_url"},
		{name: "a repository token over plain http", file: "git:\n  allow_insecure_urls: true\nrepositories:\n  - name: acme/x\n    clone_url: http://git.internal/x.git\n    token: " + canary + "\n",
			wantErr: "repositories[0].token"},
		{name: "git.token with a plain http github.url", file: "git:\n  allow_insecure_urls: true\ngithub:\n  url: http://ghe.internal\n",
			env: []string{"SLIPWAY_GIT_TOKEN=" + canary}, wantErr: "git.token"},
		{name: "plain http github.url", file: "github:\n  url: http://ghe.internal\n", wantErr: "github.url"},
		{name: "credentials in github.url", file: "github:\n  url: https://" + canary + "@github.com\n", wantErr: "github.url"},
		{name: "ssh clone_url", file: "repositories:\n  - name: acme/x\n    clone_url: ssh://git@github.com/acme/x.git\n", wantErr: "repositories[0].clone_url"},
		{name: "scp-like clone_url", file: "repositories:\n  - name: acme/x\n    clone_url: git@github.com:acme/x.git\n", wantErr: "repositories[0].clone_url"},
		{name: "https without a host", file: "repositories:\n  - name: acme/x\n    clone_url: https:///x.git\n", wantErr: "repositories[0].clone_url"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Load(writeFile(t, c.file), append([]string{base}, c.env...))
			if c.wantErr != "" {
				if err == nil {
					t.Fatalf("accepted; want an error naming %s", c.wantErr)
				}
				if !strings.Contains(err.Error(), c.wantErr) {
					t.Errorf("error %q does not name %s", err, c.wantErr)
				}
				if strings.Contains(err.Error(), canary) {
					t.Errorf("error echoes the credential: %q", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Token(c.repo); got != c.token {
				t.Errorf("Token(%s) = %q, want %q", c.repo, got, c.token)
			}
			cloneURL, token, err := cfg.Remote(c.repo)
			if c.cloneURL == "" {
				if err == nil {
					t.Errorf("Remote(%s) = %q, want an error: it is not configured", c.repo, cloneURL)
				}
				return
			}
			if err != nil || cloneURL != c.cloneURL || token != c.token {
				t.Errorf("Remote(%s) = %q, %q, %v; want %q, %q", c.repo, cloneURL, token, err, c.cloneURL, c.token)
			}
		})
	}
}

// Attack (issue 7, item 7): names are compared and stored lower-cased.
func TestRepositoryNamesCanonical(t *testing.T) {
	cfg, err := Load(writeFile(t, "repositories:\n  - name: Acme/API\n"), []string{base})
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Repositories[0].Name; got != "acme/api" {
		t.Errorf("name %q, want acme/api", got)
	}
	if _, err := Load(writeFile(t, "repositories:\n  - name: Acme/API\n  - name: acme/api\n"), []string{base}); err == nil {
		t.Error("the same repository listed twice in two cases was accepted")
	}
}

// Which secrets sign a repository's deliveries: its own, else its organisation's, else the global.
func TestWebhookSecrets(t *testing.T) {
	cfg, err := Load(writeFile(t, `
webhook:
  secrets: [global-secret-1, global-secret-2]
orgs:
  - name: ACME
    webhook_secret: acme-org-secret
  - name: rotating
    webhook_secret: [rotating-new, rotating-old]
repositories:
  - name: acme/own
    webhook_secret: acme-own-secret
  - name: acme/shared
  - name: solo/app
  - name: rotating/app
`), []string{base})
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.ValidateServe(); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		subject string
		want    []string
	}{
		{"acme/own", []string{"acme-own-secret"}},
		{"Acme/Own", []string{"acme-own-secret"}},
		{"acme/shared", []string{"acme-org-secret"}},
		{"acme/unlisted", []string{"acme-org-secret"}},
		{"acme", []string{"acme-org-secret"}}, // an organisation's delivery naming no repository
		{"solo/app", []string{"global-secret-1", "global-secret-2"}},
		{"rotating/app", []string{"rotating-new", "rotating-old"}},
		{"", []string{"global-secret-1", "global-secret-2"}},
	}
	for _, c := range cases {
		got := cfg.WebhookSecrets(c.subject)
		var names []string
		for _, s := range got {
			names = append(names, string(s))
		}
		if strings.Join(names, ",") != strings.Join(c.want, ",") {
			t.Errorf("WebhookSecrets(%q) = %v, want %v", c.subject, names, c.want)
		}
	}
	if cfg.Orgs[0].Name != "acme" {
		t.Errorf("organisation name %q not canonical", cfg.Orgs[0].Name)
	}
}

// Without global secrets every repository needs its own or its organisation's; errors name the key
// and never a secret.
func TestWebhookSecretsValidation(t *testing.T) {
	cases := []struct {
		name, file string
		serve      bool // the error comes from ValidateServe
		want       string
	}{
		{"repository without any secret", "orgs:\n  - name: acme\n    webhook_secret: acme-org-secret\nrepositories:\n  - name: acme/x\n  - name: solo/y\n",
			true, "repositories[1].webhook_secret"},
		{"nothing at all", "", true, "webhook.secrets"},
		{"short repository secret", "repositories:\n  - name: a/b\n    webhook_secret: [long-enough, short]\n", false, "repositories[0].webhook_secret[1]"},
		{"short organisation secret", "orgs:\n  - name: a\n    webhook_secret: short\n", false, "orgs[0].webhook_secret[0]"},
		{"organisation without a secret", "orgs:\n  - name: a\n", false, "orgs[0].webhook_secret"},
		{"organisation listed twice", "orgs:\n  - name: Acme\n    webhook_secret: long-enough\n  - name: acme\n    webhook_secret: long-enough\n", false, "orgs[1].name"},
		{"organisation name with a slash", "orgs:\n  - name: a/b\n    webhook_secret: long-enough\n", false, "orgs[0].name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := ""
			if c.file != "" {
				path = writeFile(t, c.file)
			}
			cfg, err := Load(path, []string{base})
			if c.serve {
				if err != nil {
					t.Fatal(err)
				}
				err = cfg.ValidateServe()
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v does not name %s", err, c.want)
			}
			for _, secret := range []string{"acme-org-secret", "long-enough", "short"} {
				if strings.Contains(err.Error(), secret+"]") || strings.Contains(err.Error(), "\""+secret) {
					t.Errorf("error quotes a secret: %v", err)
				}
			}
		})
	}
}

// A rule without images may push to the registries the config names, and no other host: Load
// hands the policy those hosts.
func TestLoadGivesThePolicyItsRegistries(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "slipway.yml")
	body := "registries:\n  - host: Registry.Example.com:5000\naws:\n  region: eu-west-1\n  ecr:\n    registry_override: 127.0.0.1:5001\n"
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(file, []string{"SLIPWAY_DATABASE_URL=postgres://x@localhost/y", "SLIPWAY_WEBHOOK_SECRET=long-enough-secret"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"registry.example.com:5000", "*.dkr.ecr.eu-west-1.amazonaws.com", "127.0.0.1:5001"}
	if !slices.Equal(cfg.Policy.Registries, want) {
		t.Errorf("policy registries %q, want %q", cfg.Policy.Registries, want)
	}
}
