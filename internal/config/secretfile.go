package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"strings"
)

// Secrets may come as files (Docker and compose secrets, systemd credentials): NAME_FILE=path
// sets NAME to the file's content, for every variable that holds a secret.
const fileSuffix = "_FILE"

// maxSecretFile bounds what a NAME_FILE reads: a secret is a line, not a file to slurp.
const maxSecretFile = 64 << 10

// secretEnvNames are the variables that hold secrets, each of which may come as NAME_FILE: the
// SLIPWAY_* ones of secret keys, those registries[].password_env name, and PGPASSWORD (the
// database password when database_url holds none).
func (c Config) secretEnvNames() []string {
	var names []string
	for _, ev := range envVars {
		if ev.secret {
			names = append(names, ev.name)
		}
	}
	for _, r := range c.Registries {
		if r.PasswordEnv != "" {
			names = append(names, r.PasswordEnv)
		}
	}
	return append(names, "PGPASSWORD")
}

// readSecretFiles returns the value of each variable of names that vars gives as NAME_FILE, read
// from its file. Errors name the variable and the path, never the content.
func readSecretFiles(vars map[string]string, names []string) (map[string]string, error) {
	out := map[string]string{}
	var errs []error
	for _, name := range names {
		fileVar := name + fileSuffix
		path, ok := vars[fileVar]
		if _, done := out[name]; !ok || done {
			continue
		}
		if _, both := vars[name]; both {
			errs = append(errs, fmt.Errorf("both %s and %s are set; keep one", name, fileVar))
			continue
		}
		v, err := readSecretFile(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", fileVar, err))
			continue
		}
		out[name] = v
	}
	return out, errors.Join(errs...)
}

// readSecretFile reads a secret without the line end an editor or `echo` adds (one "\n" or
// "\r\n"). An empty one is an error: compose makes an empty secret of an unset variable.
func readSecretFile(path string) (string, error) {
	if path == "" {
		return "", errors.New("is empty: give the path of the file holding the secret")
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("cannot read %s: %s", path, secretFileProblem(err))
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return "", fmt.Errorf("cannot read %s: %s", path, secretFileProblem(err))
	}
	if len(data) > maxSecretFile {
		return "", fmt.Errorf("%s is larger than %d KiB: the file holds the secret alone", path, maxSecretFile>>10)
	}
	v := string(data)
	if s, ok := strings.CutSuffix(v, "\r\n"); ok {
		v = s
	} else {
		v = strings.TrimSuffix(v, "\n")
	}
	if v == "" {
		return "", fmt.Errorf("%s is empty (is the variable its secret comes from set?)", path)
	}
	return v, nil
}

func secretFileProblem(err error) string {
	p := readProblem(err)
	if errors.Is(err, fs.ErrPermission) {
		// In a container the file's owner and the process's uid are easily two.
		p += fmt.Sprintf(" (as uid %d)", os.Getuid())
	}
	return p
}

// withPassword puts password into the PostgreSQL URL dsn, which must hold none: PGPASSWORD_FILE,
// read here rather than set in the process's environment for the driver to find. A URL that
// does not parse is left to Validate.
func withPassword(dsn Secret, password string) (Secret, error) {
	const refused = "database_url (SLIPWAY_DATABASE_URL) holds a password already; keep one"
	s := string(dsn)
	scheme := ""
	for _, p := range []string{"postgres://", "postgresql://"} {
		if strings.HasPrefix(s, p) {
			scheme = p
		}
	}
	if scheme == "" {
		// A keyword/value string ("host=db user=slipway") would need its own quoting rules.
		return "", errors.New("needs database_url (SLIPWAY_DATABASE_URL) as a postgres:// URL")
	}
	u, err := url.Parse(s)
	if err != nil {
		return dsn, nil
	}
	if u.Query().Has("password") {
		return "", errors.New(refused)
	}
	// The user information ends at the first "@" before any "/", as the driver reads it.
	rest := s[len(scheme):]
	user := ""
	if i := strings.IndexAny(rest, "@/"); i >= 0 && rest[i] == '@' {
		var pass string
		user, pass, _ = strings.Cut(rest[:i], ":")
		if pass != "" {
			return "", errors.New(refused)
		}
		rest = rest[i+1:]
	}
	return Secret(scheme + user + ":" + escapeAll(password) + "@" + rest), nil
}

// escapeAll percent-encodes every byte but the unreserved ones of RFC 3986, which any URL
// reader decodes alike.
func escapeAll(s string) string {
	var b strings.Builder
	for i := range len(s) {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
