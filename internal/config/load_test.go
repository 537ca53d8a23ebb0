package config

import (
	"fmt"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Attack (issue 7, item 4): a mistake in the config file must not print the file. The decoder's
// own errors quote the lines around the problem, where the database password and tokens sit, and
// some quote the value itself; what remains is file:line:col, the key path and the reason.
func TestFileErrorsShowNoSecrets(t *testing.T) {
	const (
		dbPass   = "CANARYdbpass1"
		token    = "CANARYapitoken1234567"
		regPass  = "CANARYregpass1"
		webhook  = "CANARYhooksecret1"
		gitToken = "CANARYgittoken1"
	)
	canaries := []string{dbPass, token, regPass, webhook, gitToken}
	// around puts every secret on the lines before and after the problem.
	around := func(problem string) string {
		return "database_url: postgres://u:" + dbPass + "@db/slipway\n" +
			"api:\n  tokens: [" + token + "]\n" +
			problem +
			"registries:\n  - host: r.example.com\n    password: " + regPass + "\n" +
			"webhook:\n  secrets: [" + webhook + "]\n"
	}
	cases := []struct {
		name string
		file string
		want string // file position and what the message must name, as a regexp after the file name
	}{
		{"type mismatch", around("workers: many\n"), `:4:10: workers: `},
		{"unknown key", around("workerz: 3\n"), `:4:1: workerz: unknown key`},
		{"bad duration", around("queue:\n  lease: soon\n"), `:5:10: queue\.lease: invalid duration "soon"`},
		{"unclosed list", around("repositories: [acme/x\n"), `:5:1: `},
		{"unclosed quote", around("listen_addr: \"127.0.0.1:9000\n"), `:4:\d+: `},
		{"secret of the wrong type", around("git:\n  token: {value: " + gitToken + "}\n"), `:5:\d+: git\.token: `},
		{"secret list of the wrong type", "api:\n  tokens: " + token + "\n", `:2:11: api\.tokens: must be a list, not a string`},
		{"bad value in a list of secrets", "orgs:\n  - name: acme\n    webhook_secret: {a: " + webhook + "}\n", `:3:\d+: orgs\[0\]\.webhook_secret: `},
		{"duplicate key", around("workers: 3\nworkers: 4\n"), `:5:1: workers: `},
		{"overflow", around("workers: 99999999999999999999999\n"), `:4:10: workers: `},
		{"tab indentation", "git:\n\ttoken: " + gitToken + "\n", `:2:\d+: `},
		{"alias named like the secret", around("git:\n  token: *" + gitToken + "\n"), `:5:\d+: git\.token: `},
		{"directive quoting the file", "%YAML " + dbPass + "\n---\nworkers: 3\n", `:1:\d+: `},
		{"secret as a key", "webhook:\n  secrets:\n    " + webhook + ": x\n", `:3:\d+: webhook\.secrets: `},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			file := writeFile(t, c.file)
			_, err := Load(file, []string{"SLIPWAY_WEBHOOK_SECRET=from-the-env-1"})
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			t.Log(msg)
			for _, s := range canaries {
				if strings.Contains(msg, s) {
					t.Errorf("error echoes the secret %s:\n%s", s, msg)
				}
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error is several lines (source shown?):\n%s", msg)
			}
			if !regexp.MustCompile(regexp.QuoteMeta(file) + c.want).MatchString(msg) {
				t.Errorf("error %q does not match %s%s", msg, file, c.want)
			}
		})
	}
}

// Issue 7, item 11: an empty file (or one of comments only) keeps every default, and a missing
// key is the one error reported; so does a section whose keys are all commented out.
func TestEmptyFileKeepsDefaults(t *testing.T) {
	want, err := Load("", []string{base})
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{"", "\n", "# nothing here yet\n", "---\n", "---\n# only a comment\n", "~\n", "null\n",
		"queue:\n  # lease: 45s\nwebhook:\n"} {
		t.Run(strings.TrimSpace(body), func(t *testing.T) {
			file := writeFile(t, body)
			got, err := Load(file, []string{base})
			if err != nil {
				t.Fatalf("%q: %v", body, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%q lost defaults:\n got %+v\nwant %+v", body, got, want)
			}
			if got.Queue.Lease.D() != 30*time.Second || got.Webhook.MaxBodyBytes != 25<<20 {
				t.Errorf("%q lost defaults: %+v", body, got)
			}
			_, err = Load(file, nil)
			if err == nil || strings.Count(err.Error(), "\n") != 0 || !strings.Contains(err.Error(), "database_url") {
				t.Errorf("%q without a database: want the one error naming database_url, got %v", body, err)
			}
		})
	}
}

// A second document would be silently ignored: refuse it.
func TestSecondDocumentRefused(t *testing.T) {
	file := writeFile(t, "workers: 3\n---\nworkers: 4\n")
	_, err := Load(file, []string{base})
	if err == nil || !strings.Contains(err.Error(), file+":2:1:") {
		t.Fatalf("want an error at the second document, got %v", err)
	}
}

// The policy's images (issue 7, item 11) are a key of the file like any other, checked at start.
func TestPolicyImagesInFile(t *testing.T) {
	rules := "policy:\n  rules:\n    - repo: acme/*\n      targets: ['docker:*']\n      images: [%s]\n"
	cfg, err := Load(writeFile(t, fmt.Sprintf(rules, "'registry.example.com/acme/**'")), []string{base})
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Policy.CheckImage("acme/api", "evil.example.net/acme/api"); err == nil {
		t.Error("an image on another registry host was allowed")
	}
	if _, err := Load(writeFile(t, fmt.Sprintf(rules, "'acme/*'")), []string{base}); err == nil || !strings.Contains(err.Error(), "policy") {
		t.Errorf("an image pattern without a host: %v", err)
	}
}

// Issue 10, item 3: a mistake in the file is named by its key path as written in the file
// (never a Go field), with what the key wants.
func TestFileErrorsNameTheYAMLKey(t *testing.T) {
	cases := []struct{ name, file, want string }{
		{"duration without a unit", "queue: {lease: 30}\n", `:1:16: queue.lease: invalid duration "30": give a unit, like 30s, 5m or 1h`},
		{"duration as a word", "queue:\n  lease: soon\n", `:2:10: queue.lease: invalid duration "soon" (like 30s, 5m or 1h30m)`},
		{"duration as a list", "queue: {lease: [1]}\n", `:1:16: queue.lease: must be a duration like 30s or 5m, not a list`},
		{"duration as a mapping", "git: {timeout: {}}\n", `:1:16: git.timeout: must be a duration like 30s or 5m, not a mapping`},
		{"section as a number", "queue: 5\n", `:1:8: queue: must be a mapping, not an integer`},
		{"list as a string", "repositories: [{name: acme/x, branches: main}]\n", `:1:41: repositories[0].branches: must be a list, not a string`},
		{"list item as a string", "repositories: [acme/x]\n", `:1:16: repositories[0]: must be a mapping, not a string`},
		{"integer with a fraction", "workers: 1.5\n", `:1:10: workers: must be an integer, not a number with a fraction`},
		{"nested integer with a fraction", "webhook:\n  max_body_bytes: 2048.5\n", `:2:19: webhook.max_body_bytes: must be an integer, not a number with a fraction`},
		{"integer as a word", "workers: many\n", `:1:10: workers: must be an integer, not a string`},
		{"boolean as a word", "aws: {ecr: {create_repositories: maybe}}\n", `:1:34: aws.ecr.create_repositories: must be a boolean, not a string`},
		{"boolean in a list item", "registries: [{host: r, insecure: maybe}]\n", `:1:34: registries[0].insecure: must be a boolean, not a string`},
		{"string as a list", "aws: {region: [1]}\n", `:1:15: aws.region: must be a string, not a list`},
		{"policy key", "policy: {rules: 5}\n", `:1:17: policy.rules: must be a list, not an integer`},
	}
	// Go's names for the same keys: none may show.
	goNames := regexp.MustCompile(`Queue|Lease|Workers|MaxBodyBytes|Repositories|Branches|CreateRepositories|Insecure|Region|Rules|config\.|reflect|Unmarshaler`)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			file := writeFile(t, c.file)
			_, err := Load(file, []string{base})
			if err == nil {
				t.Fatal("accepted")
			}
			if want := "config: " + file + c.want; err.Error() != want {
				t.Errorf("got  %s\nwant %s", err, want)
			}
			if m := goNames.FindString(err.Error()); m != "" {
				t.Errorf("error names Go's %q: %s", m, err)
			}
		})
	}
}

// Issue 10, item 3: a file that cannot be read is blamed on where its name came from.
func TestConfigFileUnreadable(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope.yml")
	cases := []struct {
		name, flag string
		env        []string
		want       string
	}{
		{"flag names a missing file", missing, nil, "config: --config " + missing + ": no such file"},
		{"flag wins over the variable", missing, []string{"SLIPWAY_CONFIG=" + writeFile(t, "")}, "config: --config " + missing + ": no such file"},
		{"variable names a missing file", "", []string{"SLIPWAY_CONFIG=" + missing}, "config: SLIPWAY_CONFIG=" + missing + ": no such file"},
		{"flag names a directory", dir, nil, "config: --config " + dir + ": is a directory, not a file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Load(c.flag, append([]string{base}, c.env...))
			if err == nil || err.Error() != c.want {
				t.Errorf("got  %v\nwant %s", err, c.want)
			}
		})
	}
}
