package config

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
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
		t.Run(c.name, func(t *testing.T) {
			path := ""
			if c.file != "" {
				path = writeFile(t, c.file)
			}
			_, err := Load(path, append([]string{base}, c.env...))
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not name %q", err, c.want)
			}
			if strings.Contains(err.Error(), "pw@") {
				t.Errorf("error shows the database password: %q", err)
			}
		})
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
		[]string{base, "SLIPWAY_WEBHOOK_SECRET=example-secret"})
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
