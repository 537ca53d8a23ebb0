package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readyServer answers /readyz with status, and fails the test on any other path.
func readyServer(t *testing.T, status int) (port string) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" || r.Method != http.MethodGet {
			t.Errorf("asked %s %s, want GET /readyz", r.Method, r.URL.Path)
		}
		if status == http.StatusFound {
			http.Redirect(w, r, "/elsewhere", status)
			return
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	_, port, _ = net.SplitHostPort(srv.Listener.Addr().String())
	return port
}

// A port nothing listens on: one that was free a moment ago.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	return port
}

// A server that accepts and never answers, until the test ends.
func silentPort(t *testing.T) string {
	t.Helper()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-release }))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	return port
}

func TestHealthcheck(t *testing.T) {
	ok := readyServer(t, http.StatusOK)
	down := readyServer(t, http.StatusServiceUnavailable)
	moved := readyServer(t, http.StatusFound)
	closed := closedPort(t)
	silent := silentPort(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "slipway.yml")
	if err := os.WriteFile(file, []byte("listen_addr: 127.0.0.1:"+ok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		env  []string
		want string // the error; "" for healthy
	}{
		{"ready", nil, []string{"SLIPWAY_LISTEN_ADDR=127.0.0.1:" + ok}, ""},
		{"port alone", nil, []string{"SLIPWAY_LISTEN_ADDR=:" + ok}, ""},
		{"IPv4 wildcard", nil, []string{"SLIPWAY_LISTEN_ADDR=0.0.0.0:" + ok}, ""},
		{"IPv6 wildcard", nil, []string{"SLIPWAY_LISTEN_ADDR=[::]:" + ok}, ""},
		{"address from the file", []string{"--config", file}, nil, ""},
		{"address from SLIPWAY_CONFIG", nil, []string{"SLIPWAY_CONFIG=" + file}, ""},
		{"the variable wins over the file", nil, []string{"SLIPWAY_CONFIG=" + file, "SLIPWAY_LISTEN_ADDR=:" + down},
			"healthcheck: /readyz on 127.0.0.1:" + down + " answered 503 Service Unavailable"},
		{"no database, broken secrets", nil, []string{"SLIPWAY_LISTEN_ADDR=:" + ok, "SLIPWAY_DATABASE_URL_FILE=/nonexistent",
			"SLIPWAY_WEBHOOK_SECRET=short", "SLIPWAY_WEBHOOK_SECRET_FILE=/nonexistent"}, ""},
		{"not ready", nil, []string{"SLIPWAY_LISTEN_ADDR=:" + down},
			"healthcheck: /readyz on 127.0.0.1:" + down + " answered 503 Service Unavailable"},
		{"redirected", nil, []string{"SLIPWAY_LISTEN_ADDR=:" + moved},
			"healthcheck: /readyz on 127.0.0.1:" + moved + " answered 302 Found"},
		{"nothing listening", nil, []string{"SLIPWAY_LISTEN_ADDR=:" + closed},
			"healthcheck: no answer from 127.0.0.1:" + closed + ": connect: connection refused"},
		{"no answer in time", []string{"--timeout", "50ms"}, []string{"SLIPWAY_LISTEN_ADDR=:" + silent},
			"healthcheck: no answer from 127.0.0.1:" + silent + ": timed out after 50ms"},
		{"no port", nil, []string{"SLIPWAY_LISTEN_ADDR=localhost"},
			`healthcheck: config: listen_addr (SLIPWAY_LISTEN_ADDR): "localhost" is not host:port`},
		{"bad timeout", []string{"--timeout", "0s"}, nil, "healthcheck: --timeout must be positive"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), append([]string{"healthcheck"}, c.args...), c.env, &stdout, &stderr)
			if c.want == "" {
				if err != nil {
					t.Fatalf("unhealthy: %v", err)
				}
			} else {
				if err == nil || err.Error() != c.want {
					t.Fatalf("got  %v\nwant %s", err, c.want)
				}
				if code := exitCode(err); code != 1 {
					t.Errorf("exit status %d, want 1 (Docker's unhealthy)", code)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("more than one line: %q", err)
				}
			}
			if stdout.Len()+stderr.Len() > 0 {
				t.Errorf("printed itself (main prints the error): %q %q", stdout.String(), stderr.String())
			}
		})
	}
}

func TestDialAddr(t *testing.T) {
	cases := []struct{ addr, want, err string }{
		{":8080", "127.0.0.1:8080", ""},
		{"0.0.0.0:8080", "127.0.0.1:8080", ""},
		{"[::]:8080", "127.0.0.1:8080", ""},
		{"[::0]:8080", "127.0.0.1:8080", ""},
		{"127.0.0.1:9000", "127.0.0.1:9000", ""},
		{"[::1]:9000", "[::1]:9000", ""},
		{"10.1.2.3:80", "10.1.2.3:80", ""},
		{"localhost:9000", "localhost:9000", ""},
		{":http", "127.0.0.1:80", ""},
		{"8080", "", `listen address "8080" is not host:port`},
		{":", "", `listen address ":" has no port`},
		{":nope", "", `listen address ":nope" has no port`},
	}
	for _, c := range cases {
		got, err := dialAddr(c.addr)
		if c.err != "" {
			if err == nil || err.Error() != c.err {
				t.Errorf("%s: got %q, %v; want error %s", c.addr, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%s: got %q, %v; want %s", c.addr, got, err, c.want)
		}
	}
}

// Its help names its flags, and loads nothing.
func TestHealthcheckHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"healthcheck", "--help"}, nil, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"usage: slipway healthcheck [flags]", "GET /readyz", "--config FILE", "--timeout DURATION"} {
		if !strings.Contains(stdout.String(), w) {
			t.Errorf("help lacks %q:\n%s", w, stdout.String())
		}
	}
	if strings.Contains(stdout.String(), "--listen-addr") {
		t.Errorf("help shows serve's flags:\n%s", stdout.String())
	}
	var usage bytes.Buffer
	_ = run(context.Background(), []string{"--help"}, nil, &usage, &stderr)
	if !strings.Contains(usage.String(), "healthcheck") {
		t.Errorf("the command list lacks healthcheck:\n%s", usage.String())
	}
}
