package e2e

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/testenv"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Health, readiness and metrics of a real process; the metrics pass promtool's lint.
func TestHealthAndMetrics(t *testing.T) {
	promtool := testenv.RequireBinary(t, "promtool")
	d := newDB(t)
	srv := startServer(t, d.url, "SLIPWAY_REPOSITORIES=acme/app@main")
	if code, body := get(t, srv.URL+"/healthz"); code != 200 || !strings.Contains(body, "ok") {
		t.Errorf("/healthz: %d %s", code, body)
	}
	if code, body := get(t, srv.URL+"/readyz"); code != 200 {
		t.Errorf("/readyz: %d %s", code, body)
	}
	if code, body := get(t, srv.URL+"/pipeline.schema.json"); code != 200 || !strings.Contains(body, `"$schema"`) {
		t.Errorf("/pipeline.schema.json: %d %.200s", code, body)
	}
	// An anonymous browser is sent to the login form.
	if code, body := get(t, srv.URL+"/"); code != 200 || !strings.Contains(body, "Slipway") || !strings.Contains(body, `name="password"`) {
		t.Errorf("/: %d %s", code, body)
	}
	srv.push("acme/app", "main", zeroSHA, strings.Repeat("a", 40), "x")
	srv.push("acme/app", "feature", zeroSHA, strings.Repeat("b", 40), "x")
	code, body := get(t, srv.URL+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		`slipway_webhook_deliveries_total{event="push",outcome="queued"} 1`,
		`slipway_webhook_deliveries_total{event="push",outcome="ignored"} 1`,
		`slipway_queue_depth{kind="deployment",status="queued"}`,
		`slipway_queue_claim_latency_seconds_bucket{kind="run"`,
		`slipway_workers_busy`,
		`go_goroutines`,
		`process_resident_memory_bytes`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader([]byte(body))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// /readyz says not ready while the schema is behind, and the process serves anyway.
func TestReadyzWithoutMigrations(t *testing.T) {
	d := newDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := d.st.Pool().Exec(ctx, `DELETE FROM schema_migrations`); err != nil {
		t.Fatal(err)
	}
	srv := startServerNotReady(t, d.url, "SLIPWAY_MIGRATE_ON_START=false", "SLIPWAY_REPOSITORIES=acme/app")
	// An anonymous client learns only that the server is not ready; the reason is in the log.
	if code, body := get(t, srv.URL+"/readyz"); code != 503 || strings.Contains(body, "migration") {
		t.Errorf("/readyz: %d %s", code, body)
	}
	waitLog(t, srv, "migrations pending")
}

// A bad configuration value stops start-up with a message that names it.
func TestBadConfigNamesTheKey(t *testing.T) {
	cases := []struct{ env, want string }{
		{"SLIPWAY_WORKERS=lots", "SLIPWAY_WORKERS"},
		{"SLIPWAY_LISTEN_ADDR=nonsense", "SLIPWAY_LISTEN_ADDR"},
		{"SLIPWAY_WEBHOOK_SECRET=", "SLIPWAY_WEBHOOK_SECRET"},
		{"SLIPWAY_QUEUE_LEASE=forever", "SLIPWAY_QUEUE_LEASE"},
	}
	for _, c := range cases {
		t.Run(c.env, func(t *testing.T) {
			cmd := exec.Command(binary(t), "serve")
			cmd.Env = []string{"SLIPWAY_DATABASE_URL=postgres://nobody:hunter2@127.0.0.1:1/x", "SLIPWAY_WEBHOOK_SECRET=abcdefghij", c.env}
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatal("started with a bad config")
			}
			if !strings.Contains(string(out), c.want) {
				t.Errorf("message does not name %s: %s", c.want, out)
			}
			if strings.Contains(string(out), "hunter2") || strings.Contains(string(out), "abcdefghij") {
				t.Errorf("a secret reached the output: %s", out)
			}
		})
	}
}
