package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// Issue 10, item 4: --help and -h answer on every command with its own flags, exit status 0.
func TestCommandHelp(t *testing.T) {
	cases := []struct {
		args    []string
		want    []string // in stdout
		notWant []string
	}{
		{[]string{"--help"}, []string{"usage: slipway <command>", "serve", "migrate", "doctor", "version"}, nil},
		{[]string{"-h"}, []string{"usage: slipway <command>"}, nil},
		{[]string{"help"}, []string{"usage: slipway <command>"}, nil},
		{[]string{"serve", "--help"}, []string{"usage: slipway serve [flags]", "run the workers", "--config FILE", "--listen-addr HOST:PORT", "--workers N", "--migrate true|false"}, nil},
		{[]string{"serve", "-h"}, []string{"usage: slipway serve [flags]"}, nil},
		{[]string{"migrate", "--help"}, []string{"usage: slipway migrate [flags]", "Apply the database migrations", "--config FILE"}, []string{"listen-addr", "workers", "--migrate"}},
		{[]string{"migrate", "-h"}, []string{"usage: slipway migrate [flags]"}, []string{"listen-addr"}},
		{[]string{"migrate", "--config", "x.yml", "-help"}, []string{"usage: slipway migrate [flags]"}, nil},
		{[]string{"doctor", "--help"}, []string{"usage: slipway doctor [flags]", "Check the configuration", "--config FILE"}, []string{"listen-addr"}},
		{[]string{"doctor", "-h"}, []string{"usage: slipway doctor [flags]"}, nil},
		{[]string{"version", "--help"}, []string{"usage: slipway version\n", "Print the version."}, []string{"--config"}},
		{[]string{"help", "migrate"}, []string{"usage: slipway migrate [flags]"}, []string{"listen-addr"}},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			// No environment: help must answer before any configuration is loaded.
			err := run(context.Background(), c.args, nil, &stdout, &stderr)
			if code := exitCode(err); code != 0 {
				t.Fatalf("exit status %d (%v), want 0; stderr:\n%s", code, err, stderr.String())
			}
			for _, w := range c.want {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("help lacks %q:\n%s", w, stdout.String())
				}
			}
			for _, w := range c.notWant {
				if strings.Contains(stdout.String(), w) {
					t.Errorf("help shows %q, another command's flag:\n%s", w, stdout.String())
				}
			}
			if stderr.Len() > 0 {
				t.Errorf("stderr is not empty:\n%s", stderr.String())
			}
		})
	}
}

// Issue 10, item 4: the version, and exit status 2 with the commands for what slipway does not
// understand.
func TestCommandLine(t *testing.T) {
	old := version
	version = "v1.2.3-test"
	t.Cleanup(func() { version = old })
	cases := []struct {
		args       []string
		code       int
		stdout     string // contained
		stderr     []string
		errMessage string
	}{
		{[]string{"--version"}, 0, "slipway v1.2.3-test\n", nil, ""},
		{[]string{"-version"}, 0, "slipway v1.2.3-test\n", nil, ""},
		{[]string{"version"}, 0, "slipway v1.2.3-test\n", nil, ""},
		{nil, 2, "", []string{"commands:", "serve", "migrate", "doctor"}, "no command given"},
		{[]string{"deploy"}, 2, "", []string{"commands:", "serve", "migrate", "doctor", "version"}, `unknown command "deploy"`},
		{[]string{"--verbose"}, 2, "", []string{"commands:"}, `unknown command "--verbose"`},
		{[]string{"migrate", "--listen-addr", ":1"}, 2, "", []string{"usage: slipway migrate"}, "migrate: flag provided but not defined: -listen-addr"},
		{[]string{"serve", "--workers", "many"}, 2, "", []string{"usage: slipway serve"}, `serve: invalid value "many" for flag -workers`},
		{[]string{"doctor", "now"}, 2, "", []string{"usage: slipway doctor"}, `doctor: unexpected argument "now"`},
		{[]string{"version", "extra"}, 2, "", []string{"usage: slipway version"}, `version: unexpected argument "extra"`},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), c.args, nil, &stdout, &stderr)
			if code := exitCode(err); code != c.code {
				t.Errorf("exit status %d (%v), want %d", code, err, c.code)
			}
			if c.stdout != "" && stdout.String() != c.stdout {
				t.Errorf("stdout %q, want %q", stdout.String(), c.stdout)
			}
			for _, w := range c.stderr {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr.String())
				}
			}
			if c.errMessage != "" && (err == nil || !strings.Contains(err.Error(), c.errMessage)) {
				t.Errorf("error %v, want %q", err, c.errMessage)
			}
		})
	}
}

// Issue 10, item 3: a misspelt variable is named with the right one, on stderr when the load
// fails and in the log when it succeeds; its value never shows.
func TestUnknownVariableWarned(t *testing.T) {
	var stderr bytes.Buffer
	_, _, err := loadConfig("migrate", nil, []string{"SLIPWAY_DATABSE_URL=postgres://u:CANARYpw@db/x"}, &stderr)
	if err == nil || !strings.Contains(err.Error(), "database_url") {
		t.Fatalf("load without a database URL: %v", err)
	}
	want := "slipway: warning: SLIPWAY_DATABSE_URL is not a known setting; did you mean SLIPWAY_DATABASE_URL?\n"
	if stderr.String() != want {
		t.Errorf("stderr %q, want %q", stderr.String(), want)
	}

	stderr.Reset()
	_, _, err = loadConfig("migrate", nil, []string{"SLIPWAY_DATABASE_URL=postgres://u:CANARYpw@db/x", "SLIPWAY_WORKER=3"}, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr.String(), `"level":"WARN","msg":"SLIPWAY_WORKER is not a known setting; did you mean SLIPWAY_WORKERS?"`) {
		t.Errorf("no warning in the log:\n%s", stderr.String())
	}
	if strings.Contains(stderr.String(), "CANARY") {
		t.Errorf("a value is shown:\n%s", stderr.String())
	}
}

// Issue 10, item 3: a --config file that is not there is blamed on the flag.
func TestMissingConfigFlag(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"migrate", "--config", "/nonexistent/slipway.yml"}, []string{"SLIPWAY_CONFIG=/etc/other.yml"}, &stdout, &stderr)
	if want := "config: --config /nonexistent/slipway.yml: no such file"; err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
	if exitCode(err) != 1 {
		t.Errorf("exit status %d, want 1", exitCode(err))
	}
}
