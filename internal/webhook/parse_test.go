package webhook

import (
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	cases := []struct {
		name    string
		event   string
		body    string
		kind    string
		wantErr bool
		check   func(t *testing.T, p Parsed)
	}{
		{name: "unhandled event is not parsed", event: "issues", body: "not even json", kind: KindIgnored},
		{name: "ping", event: "ping", body: `{"zen":"hi","repository":{"full_name":"a/b"}}`, kind: KindPing,
			check: func(t *testing.T, p Parsed) {
				if p.Repo != "a/b" {
					t.Errorf("repo %q", p.Repo)
				}
			}},
		{name: "branch push", event: "push", kind: KindPush,
			body: `{"ref":"refs/heads/feat/x","before":"` + strings.Repeat("a", 40) + `","after":"` + strings.Repeat("b", 40) +
				`","repository":{"full_name":"a/b","clone_url":"https://example.com/a/b.git"},"pusher":{"name":"ann"},"head_commit":{"message":"fix it"}}`,
			check: func(t *testing.T, p Parsed) {
				want := Push{Repo: "a/b", Ref: "refs/heads/feat/x", Branch: "feat/x",
					Before: strings.Repeat("a", 40), After: strings.Repeat("b", 40), Pusher: "ann", Message: "fix it"}
				if *p.Push != want {
					t.Errorf("got %+v", *p.Push)
				}
			}},
		{name: "deleted branch", event: "push", kind: KindPush,
			body: `{"ref":"refs/heads/x","after":"` + zeroSHA + `","repository":{"full_name":"a/b"}}`,
			check: func(t *testing.T, p Parsed) {
				if !p.Push.Deleted {
					t.Error("not marked deleted")
				}
			}},
		{name: "tag", event: "push", kind: KindPush,
			body: `{"ref":"refs/tags/v1","after":"` + strings.Repeat("c", 40) + `","repository":{"full_name":"a/b"}}`,
			check: func(t *testing.T, p Parsed) {
				if p.Push.Tag != "v1" || p.Push.Branch != "" {
					t.Errorf("got %+v", *p.Push)
				}
			}},
		{name: "names canonical, pushed_at read", event: "push", kind: KindPush,
			body: `{"ref":"refs/heads/main","after":"` + strings.Repeat("d", 40) + `","repository":{"full_name":"ACME/Web","pushed_at":1557933657}}`,
			check: func(t *testing.T, p Parsed) {
				if p.Repo != "acme/web" || p.Push.Repo != "acme/web" || p.Push.PushedAt != 1557933657 {
					t.Errorf("got %q %+v", p.Repo, *p.Push)
				}
			}},
		{name: "pushed_at as a date", event: "push", kind: KindPush,
			body: `{"ref":"refs/heads/main","after":"` + strings.Repeat("d", 40) + `","repository":{"full_name":"a/b","pushed_at":"2019-05-15T15:20:57Z"}}`,
			check: func(t *testing.T, p Parsed) {
				if p.Push.PushedAt != 1557933657 {
					t.Errorf("pushed_at %d", p.Push.PushedAt)
				}
			}},
		{name: "ping names canonical", event: "ping", body: `{"zen":"hi","repository":{"full_name":"A/B"}}`, kind: KindPing,
			check: func(t *testing.T, p Parsed) {
				if p.Repo != "a/b" {
					t.Errorf("repo %q", p.Repo)
				}
			}},
		{name: "malformed json", event: "push", body: `{`, wantErr: true},
		{name: "empty object", event: "push", body: `{}`, wantErr: true},
		{name: "uppercase sha", event: "push", body: `{"ref":"refs/heads/x","after":"` + strings.Repeat("A", 40) + `","repository":{"full_name":"a/b"}}`, wantErr: true},
		{name: "wrong type", event: "push", body: `{"ref":1}`, wantErr: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := Parse(c.event, []byte(c.body))
			if c.wantErr {
				if !errors.Is(err, ErrBadPayload) {
					t.Fatalf("err = %v, want ErrBadPayload", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Kind != c.kind {
				t.Errorf("kind %q, want %q", p.Kind, c.kind)
			}
			if c.check != nil {
				c.check(t, p)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "github-webhooks", "*.json"))
	for _, path := range files {
		body, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		event, _, _ := strings.Cut(filepath.Base(path), ".")
		f.Add(event, body)
	}
	f.Add("push", []byte(`{"ref":"refs/heads/a","after":"`+strings.Repeat("1", 40)+`","repository":{"full_name":"x/y"}}`))
	f.Fuzz(func(t *testing.T, event string, body []byte) {
		p, err := Parse(event, body)
		if err != nil {
			if !errors.Is(err, ErrBadPayload) {
				t.Fatalf("error not marked ErrBadPayload: %v", err)
			}
			return
		}
		// The secrets that verified the body were picked by subjectOf: it must name the
		// repository Parse acts on, or one repository's secret could sign another's push.
		if p.Repo != "" && subjectOf("application/json", body) != p.Repo {
			t.Fatalf("subjectOf names %q, Parse %q", subjectOf("application/json", body), p.Repo)
		}
		if p.Kind == KindPush {
			if p.Push == nil || p.Push.Repo == "" || !isSHA(p.Push.After) {
				t.Fatalf("accepted push without repo or sha: %+v", p.Push)
			}
			if p.Push.Branch != "" && p.Push.Tag != "" {
				t.Fatalf("both branch and tag: %+v", p.Push)
			}
		}
	})
}

func TestSubjectOf(t *testing.T) {
	cases := []struct {
		name, mediaType, body, want string
	}{
		{"repository", "application/json", `{"repository":{"full_name":"Acme/App"}}`, "acme/app"},
		{"repository wins over organisation", "application/json", `{"organization":{"login":"other"},"repository":{"full_name":"acme/app"}}`, "acme/app"},
		{"organisation only", "application/json", `{"zen":"hi","organization":{"login":"ACME"}}`, "acme"},
		{"neither", "application/json", `{"zen":"hi"}`, ""},
		{"the last of two keys, as Parse reads it", "application/json", `{"repository":{"full_name":"a/one"},"repository":{"full_name":"a/two"}}`, "a/two"},
		{"a key in another case, as Parse reads it", "application/json", `{"repository":{"full_name":"a/one"},"REPOSITORY":{"FULL_NAME":"a/two"}}`, "a/two"},
		{"not JSON", "application/json", `{"repository":`, ""},
		{"repository of the wrong type", "application/json", `{"repository":"a/b"}`, ""},
		{"form", "application/x-www-form-urlencoded", "payload=" + url.QueryEscape(`{"repository":{"full_name":"a/b"}}`), "a/b"},
		{"form with a bad escape", "application/x-www-form-urlencoded", "payload=%zz", ""},
		{"form without payload", "application/x-www-form-urlencoded", "other=1", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := subjectOf(c.mediaType, []byte(c.body)); got != c.want {
				t.Errorf("subjectOf = %q, want %q", got, c.want)
			}
		})
	}
}
