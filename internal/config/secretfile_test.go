package config

import (
	"fmt"
	"io/fs"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// secretFile writes content to a 0600 file of t's temp dir and returns its path.
func secretFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// NAME_FILE=path sets NAME to the file's content, less one line end.
func TestSecretFileValues(t *testing.T) {
	cases := []struct {
		name, content string
		get           func(Config) string
		want          string
	}{
		{"SLIPWAY_DATABASE_URL", "postgres://u:CANARYpw@db/x\n", func(c Config) string { return c.DatabaseURL.Reveal() }, "postgres://u:CANARYpw@db/x"},
		{"SLIPWAY_WEBHOOK_SECRET", "hook-secret-1,hook-secret-2", func(c Config) string { return join(c.Webhook.Secrets) }, "hook-secret-1,hook-secret-2"},
		{"SLIPWAY_WEBHOOK_SECRET", "hook-secret-1\r\n", func(c Config) string { return join(c.Webhook.Secrets) }, "hook-secret-1"},
		{"SLIPWAY_API_TOKENS", "token-one-123\n\n", func(c Config) string { return join(c.API.Tokens) }, "token-one-123"}, // the list drops the blank
		{"SLIPWAY_GIT_TOKEN", "ghp_x\n\n", func(c Config) string { return c.Git.Token.Reveal() }, "ghp_x\n"},              // one line end only
		{"SLIPWAY_GIT_TOKEN", "  spaced  ", func(c Config) string { return c.Git.Token.Reveal() }, "  spaced  "},
		{"SLIPWAY_AUTH_OIDC_CLIENT_SECRET", "oidc-secret\n", func(c Config) string { return c.Auth.OIDC.ClientSecret.Reveal() }, "oidc-secret"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := []string{base, c.name + "_FILE=" + secretFile(t, c.content)}
			if c.name == "SLIPWAY_DATABASE_URL" {
				env = env[1:]
			}
			// Load's first steps: the OIDC secret alone would not validate.
			vars := EnvMap(env)
			cfg := Defaults()
			files, err := readSecretFiles(vars, cfg.secretEnvNames())
			if err != nil {
				t.Fatal(err)
			}
			maps.Copy(vars, files)
			if err := applyEnv(&cfg, vars); err != nil {
				t.Fatal(err)
			}
			if got := c.get(cfg); got != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}

func join(s []Secret) string {
	var out []string
	for _, v := range s {
		out = append(out, v.Reveal())
	}
	return strings.Join(out, ",")
}

// Every rule of NAME_FILE that refuses, through Load: the message names the variable and the
// path, and never the content.
func TestSecretFileErrors(t *testing.T) {
	const canary = "CANARYsecret"
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope")
	empty := secretFile(t, "")
	newline := secretFile(t, "\r\n")
	big := secretFile(t, canary+strings.Repeat("x", 64<<10))
	good := secretFile(t, canary+"-long-enough\n")
	cases := []struct {
		name string
		env  []string
		want string
	}{
		{"both set", []string{base, "SLIPWAY_WEBHOOK_SECRET=" + canary + "-1", "SLIPWAY_WEBHOOK_SECRET_FILE=" + good},
			"config: both SLIPWAY_WEBHOOK_SECRET and SLIPWAY_WEBHOOK_SECRET_FILE are set; keep one"},
		{"both set, one empty", []string{base, "SLIPWAY_GIT_TOKEN=", "SLIPWAY_GIT_TOKEN_FILE=" + good},
			"config: both SLIPWAY_GIT_TOKEN and SLIPWAY_GIT_TOKEN_FILE are set; keep one"},
		{"missing file", []string{base, "SLIPWAY_GIT_TOKEN_FILE=" + missing},
			"config: SLIPWAY_GIT_TOKEN_FILE: cannot read " + missing + ": no such file"},
		{"directory", []string{base, "SLIPWAY_API_TOKENS_FILE=" + dir},
			"config: SLIPWAY_API_TOKENS_FILE: cannot read " + dir + ": is a directory, not a file"},
		{"empty file", []string{"SLIPWAY_DATABASE_URL_FILE=" + empty},
			"config: SLIPWAY_DATABASE_URL_FILE: " + empty + " is empty (is the variable its secret comes from set?)"},
		{"a line end alone", []string{base, "SLIPWAY_AWS_EXTERNAL_ID_FILE=" + newline},
			"config: SLIPWAY_AWS_EXTERNAL_ID_FILE: " + newline + " is empty (is the variable its secret comes from set?)"},
		{"empty path", []string{base, "SLIPWAY_AUTH_OIDC_CLIENT_SECRET_FILE="},
			"config: SLIPWAY_AUTH_OIDC_CLIENT_SECRET_FILE: is empty: give the path of the file holding the secret"},
		{"too large", []string{base, "SLIPWAY_API_TOKENS_FILE=" + big},
			"config: SLIPWAY_API_TOKENS_FILE: " + big + " is larger than 64 KiB: the file holds the secret alone"},
		{"PGPASSWORD both set", []string{base, "PGPASSWORD=x", "PGPASSWORD_FILE=" + good},
			"config: both PGPASSWORD and PGPASSWORD_FILE are set; keep one"},
		{"PGPASSWORD_FILE and a password in the URL", []string{base, "PGPASSWORD_FILE=" + good},
			"config: PGPASSWORD_FILE: database_url (SLIPWAY_DATABASE_URL) holds a password already; keep one"},
		{"PGPASSWORD_FILE and a password in the query", []string{"SLIPWAY_DATABASE_URL=postgres://u@db/x?password=" + canary, "PGPASSWORD_FILE=" + good},
			"config: PGPASSWORD_FILE: database_url (SLIPWAY_DATABASE_URL) holds a password already; keep one"},
		{"registry password missing", []string{base, "SLIPWAY_CONFIG=" + writeFile(t, "registries:\n  - host: r.example.com\n    username: u\n    password_env: ACME_PW\n"), "ACME_PW_FILE=" + missing},
			"config: ACME_PW_FILE: cannot read " + missing + ": no such file"},
		{"registry password unset", []string{base, "SLIPWAY_CONFIG=" + writeFile(t, "registries:\n  - host: r.example.com\n    username: u\n    password_env: ACME_PW\n")},
			"config: registries[0].password_env: environment variable ACME_PW is not set (nor ACME_PW_FILE)"},
		{"two at once", []string{base, "SLIPWAY_GIT_TOKEN_FILE=" + missing, "SLIPWAY_API_TOKENS_FILE=" + empty},
			"config: SLIPWAY_API_TOKENS_FILE: " + empty + " is empty (is the variable its secret comes from set?)\n" +
				"SLIPWAY_GIT_TOKEN_FILE: cannot read " + missing + ": no such file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Load("", c.env)
			if err == nil || err.Error() != c.want {
				t.Errorf("got  %v\nwant %s", err, c.want)
			}
			if err != nil && strings.Contains(err.Error(), canary) {
				t.Errorf("the error shows the secret: %v", err)
			}
		})
	}
}

// An unreadable file names the uid that could not read it (in a container the file's owner and
// the process's uid are easily two). Root reads a file of any mode, so the error is made up.
func TestSecretFileUnreadable(t *testing.T) {
	err := &fs.PathError{Op: "open", Path: "/run/secrets/x", Err: fs.ErrPermission}
	want := fmt.Sprintf("permission denied (as uid %d)", os.Getuid())
	if got := secretFileProblem(err); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if os.Getuid() == 0 {
		return
	}
	p := secretFile(t, "x")
	if err := os.Chmod(p, 0); err != nil {
		t.Fatal(err)
	}
	_, err2 := Load("", []string{base, "SLIPWAY_GIT_TOKEN_FILE=" + p})
	if want := "config: SLIPWAY_GIT_TOKEN_FILE: cannot read " + p + ": " + want; err2 == nil || err2.Error() != want {
		t.Errorf("got %v, want %s", err2, want)
	}
}

// The variables registries[].password_env name take a file too, and need not start SLIPWAY_.
func TestRegistryPasswordFile(t *testing.T) {
	file := writeFile(t, "registries:\n"+
		"  - {host: a.example.com, username: u, password_env: SLIPWAY_REGISTRY_PASSWORD_A}\n"+
		"  - {host: b.example.com, username: u, password_env: B_PASSWORD}\n"+
		"  - {host: c.example.com, username: u, password_env: C_PASSWORD}\n")
	cfg, err := Load(file, []string{base,
		"SLIPWAY_REGISTRY_PASSWORD_A_FILE=" + secretFile(t, "pw-a\n"),
		"B_PASSWORD_FILE=" + secretFile(t, "pw-b"),
		"C_PASSWORD=pw-c",
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range cfg.Registries {
		got = append(got, r.Password.Reveal())
	}
	if want := []string{"pw-a", "pw-b", "pw-c"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

// PGPASSWORD_FILE puts the password into a URL that holds none, encoded so that the driver reads
// back the very bytes of the file.
func TestPGPasswordFile(t *testing.T) {
	const pw = "p@ss:w/rd %20?#&=é "
	cases := []struct{ url, wantUser string }{
		{"postgres://slipway@127.0.0.1:5433/slipway?sslmode=disable", "slipway"},
		{"postgresql://slipway:@db/slipway", "slipway"},
		{"postgres://db.example.com/slipway", ""},
		{"postgres:///slipway?host=/run/postgresql", ""},
	}
	for _, c := range cases {
		t.Run(c.url, func(t *testing.T) {
			cfg, err := Load("", []string{"SLIPWAY_DATABASE_URL=" + c.url, "PGPASSWORD_FILE=" + secretFile(t, pw+"\n")})
			if err != nil {
				t.Fatal(err)
			}
			dsn := cfg.DatabaseURL.Reveal()
			u, err := url.Parse(dsn)
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := u.User.Password(); got != pw {
				t.Errorf("net/url reads password %q, want %q", got, pw)
			}
			if u.User.Username() != c.wantUser {
				t.Errorf("user %q, want %q", u.User.Username(), c.wantUser)
			}
			pc, err := pgconn.ParseConfig(dsn)
			if err != nil {
				t.Fatalf("the driver refuses the URL: %v", err)
			}
			if pc.Password != pw {
				t.Errorf("the driver reads password %q, want %q", pc.Password, pw)
			}
			if c.wantUser != "" && pc.User != c.wantUser {
				t.Errorf("the driver reads user %q, want %q", pc.User, c.wantUser)
			}
			if strings.Contains(cfg.DatabaseURL.String(), "ss") {
				t.Error("the URL prints its password")
			}
		})
	}
}

// A keyword/value database_url cannot take the password from PGPASSWORD_FILE: an error says so,
// rather than a connection refused later for no visible reason.
func TestPGPasswordFileNeedsURL(t *testing.T) {
	wantLoadError(t, "", []string{"SLIPWAY_DATABASE_URL=host=db user=slipway dbname=slipway",
		"PGPASSWORD_FILE=" + secretFile(t, "canary-pw\n")}, "PGPASSWORD_FILE: needs database_url", "canary-pw")
}

// The secrets that may come as files: every variable of a secret key (checked against the
// types of Config, so that a new one cannot be forgotten), the registries' and PGPASSWORD.
func TestSecretEnvNames(t *testing.T) {
	for _, ev := range envVars {
		typ := reflect.TypeFor[Config]()
		for part := range strings.SplitSeq(ev.key, ".") {
			f, ok := fieldByTag(typ, part)
			if !ok {
				t.Fatalf("%s: no key %s", ev.name, ev.key)
			}
			typ = f.Type
		}
		isSecret := typ == reflect.TypeFor[Secret]() || typ == reflect.TypeFor[[]Secret]()
		if isSecret != ev.secret {
			t.Errorf("%s sets %s of type %s; marked secret: %v", ev.name, ev.key, typ, ev.secret)
		}
	}
	cfg := Defaults()
	cfg.Registries = []Registry{{Host: "r", PasswordEnv: "SLIPWAY_REGISTRY_PASSWORD_ACME"}}
	got := cfg.secretEnvNames()
	for _, want := range []string{"SLIPWAY_DATABASE_URL", "SLIPWAY_WEBHOOK_SECRET", "SLIPWAY_API_TOKENS",
		"SLIPWAY_GIT_TOKEN", "SLIPWAY_AWS_EXTERNAL_ID", "SLIPWAY_AUTH_OIDC_CLIENT_SECRET",
		"SLIPWAY_REGISTRY_PASSWORD_ACME", "PGPASSWORD"} {
		if !slices.Contains(got, want) {
			t.Errorf("%s cannot come as a file (secrets: %q)", want, got)
		}
	}
	if slices.Contains(got, "SLIPWAY_LISTEN_ADDR") {
		t.Error("a setting that is no secret comes as a file")
	}
}

// The health check reads the listen address alone: no database URL, no secret.
func TestListenAddr(t *testing.T) {
	file := writeFile(t, "listen_addr: 127.0.0.1:9000\n")
	cases := []struct {
		name, file string
		env        []string
		want, err  string
	}{
		{"default", "", nil, ":8080", ""},
		{"variable", "", []string{"SLIPWAY_LISTEN_ADDR=:9090"}, ":9090", ""},
		{"file", file, nil, "127.0.0.1:9000", ""},
		{"file named by SLIPWAY_CONFIG", "", []string{"SLIPWAY_CONFIG=" + file}, "127.0.0.1:9000", ""},
		{"the variable wins", file, []string{"SLIPWAY_LISTEN_ADDR=[::1]:7000"}, "[::1]:7000", ""},
		{"secrets not read", "", []string{"SLIPWAY_GIT_TOKEN_FILE=/nonexistent", "SLIPWAY_WEBHOOK_SECRET=short"}, ":8080", ""},
		{"no port", "", []string{"SLIPWAY_LISTEN_ADDR=localhost"}, "", `config: listen_addr (SLIPWAY_LISTEN_ADDR): "localhost" is not host:port`},
		{"missing file", "/nonexistent.yml", nil, "", "config: --config /nonexistent.yml: no such file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ListenAddr(c.file, c.env)
			if c.err != "" {
				if err == nil || err.Error() != c.err {
					t.Errorf("got %q, %v; want error %s", got, err, c.err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Errorf("got %q, %v; want %q", got, err, c.want)
			}
		})
	}
}
