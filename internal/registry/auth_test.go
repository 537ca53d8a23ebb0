package registry

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/slipway-dev/slipway/internal/dockercli/dockertest"
	"github.com/slipway-dev/slipway/internal/statedir"
)

func TestParseChallenge(t *testing.T) {
	tests := []struct {
		in         string
		wantScheme string
		want       map[string]string
	}{
		{`Basic realm="Registry Realm"`, "Basic", map[string]string{"realm": "Registry Realm"}},
		{`Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull,push"`,
			"Bearer", map[string]string{"realm": "https://auth.docker.io/token", "service": "registry.docker.io", "scope": "repository:library/alpine:pull,push"}},
		{`Bearer realm="a\"b", Service=plain ,error="insufficient_scope"`,
			"Bearer", map[string]string{"realm": `a"b`, "service": "plain", "error": "insufficient_scope"}},
		{`Basic`, "Basic", map[string]string{}},
		{``, "", map[string]string{}},
	}
	for _, tt := range tests {
		scheme, params := parseChallenge(tt.in)
		if scheme != tt.wantScheme || !maps.Equal(params, tt.want) {
			t.Errorf("parseChallenge(%q) = %q %v, want %q %v", tt.in, scheme, params, tt.wantScheme, tt.want)
		}
	}
}

func TestScheme(t *testing.T) {
	r := &Registry{cfg: Config{Insecure: []string{"10.0.0.5:5000"}}}
	for host, want := range map[string]string{
		"127.0.0.1:5000":          "http",
		"127.1.2.3":               "http",
		"localhost:5000":          "http",
		"[::1]:5000":              "http",
		"10.0.0.5:5000":           "http",
		"10.0.0.5:5001":           "https",
		"registry.example.com":    "https",
		"localhost.example.com":   "https",
		DockerHub:                 "https",
		"127.0.0.1.example.com:1": "https",
	} {
		if got := r.scheme(host); got != want {
			t.Errorf("scheme(%s) = %s, want %s", host, got, want)
		}
	}
}

func TestStatic(t *testing.T) {
	s := Static{"reg.example.com": {"u", "p"}, "docker.io": {"hub", "hp"}}
	for _, tt := range []struct {
		host, user, password string
		ok                   bool
	}{
		{"reg.example.com", "u", "p", true},
		{DockerHub, "hub", "hp", true},
		{"other.example.com", "", "", false},
	} {
		u, p, ok, err := s.Lookup(context.Background(), tt.host)
		if err != nil || u != tt.user || p != tt.password || ok != tt.ok {
			t.Errorf("Lookup(%s) = %q %q %v %v", tt.host, u, p, ok, err)
		}
	}
	for _, got := range []string{Login{"u", "hunter2"}.String(), Login{"u", "hunter2"}.GoString()} {
		if strings.Contains(got, "hunter2") {
			t.Errorf("Login prints its password: %s", got)
		}
	}
}

const testDigest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"

// fakeRegistry answers manifest requests for app:v1 (with a digest header), nohdr:v1 (without
// one) and nothing else, behind the given authentication.
type fakeRegistry struct {
	auth           string // "", "basic" or "bearer"
	user, password string

	mu          sync.Mutex
	tokenScopes []string
}

func (f *fakeRegistry) handler(t *testing.T) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.tokenScopes = append(f.tokenScopes, r.URL.Query().Get("service")+" "+r.URL.Query().Get("scope"))
		f.mu.Unlock()
		if u, p, _ := r.BasicAuth(); u != f.user || p != f.password {
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED"}]}`, http.StatusUnauthorized)
			return
		}
		io.WriteString(w, `{"access_token":"good-token","expires_in":60}`)
	})
	mux.HandleFunc("/v2/", func(w http.ResponseWriter, r *http.Request) {
		for _, typ := range []string{"oci.image.index", "oci.image.manifest", "manifest.list.v2", "distribution.manifest.v2"} {
			if !strings.Contains(r.Header.Get("Accept"), typ) {
				t.Errorf("Accept %q lacks %s", r.Header.Get("Accept"), typ)
			}
		}
		authz := r.Header.Get("Authorization")
		switch f.auth {
		case "basic":
			if u, p, ok := r.BasicAuth(); !ok || u != f.user || p != f.password {
				w.Header().Set("WWW-Authenticate", `Basic realm="fake"`)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
		case "bearer":
			if authz != "Bearer good-token" {
				w.Header().Set("WWW-Authenticate", `Bearer realm="http://`+r.Host+`/token",service="fake-svc",scope="repository:app:pull"`)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
		}
		switch r.URL.Path {
		case "/v2/app/manifests/v1", "/v2/app/manifests/" + testDigest:
			w.Header().Set("Docker-Content-Digest", testDigest)
			w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
		case "/v2/nohdr/manifests/v1":
			if r.Method == http.MethodGet {
				io.WriteString(w, "{}")
			}
		default:
			http.Error(w, `{"errors":[{"code":"MANIFEST_UNKNOWN"}]}`, http.StatusNotFound)
		}
	})
	return mux
}

func TestDigestHTTP(t *testing.T) {
	const secret = "s3cret-pass-word"
	const sumOfEmptyObject = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
	tests := []struct {
		name     string
		auth     string
		creds    Credentials
		ref      string // after "HOST/"
		want     string
		wantOK   bool
		wantErr  string
		wantScop string
	}{
		{name: "anonymous", ref: "app:v1", want: testDigest, wantOK: true},
		{name: "by digest", ref: "app@" + testDigest, want: testDigest, wantOK: true},
		{name: "unknown tag", ref: "app:nope", wantOK: false},
		{name: "unknown repo", ref: "other/app:v1", wantOK: false},
		{name: "no header: hash the body", ref: "nohdr:v1", want: sumOfEmptyObject, wantOK: true},
		{name: "basic", auth: "basic", creds: staticFor("u", secret), ref: "app:v1", want: testDigest, wantOK: true},
		{name: "basic wrong password", auth: "basic", creds: staticFor("u", "wrong-"+secret), ref: "app:v1", wantErr: "refused the credentials"},
		{name: "basic without credentials", auth: "basic", ref: "app:v1", wantErr: "none are configured"},
		{name: "bearer", auth: "bearer", creds: staticFor("u", secret), ref: "app:v1", want: testDigest, wantOK: true,
			wantScop: "fake-svc repository:app:pull"},
		{name: "bearer unknown tag", auth: "bearer", creds: staticFor("u", secret), ref: "app:nope", wantOK: false},
		{name: "bearer wrong password", auth: "bearer", creds: staticFor("u", "wrong-"+secret), ref: "app:v1", wantErr: "token server refused"},
		{name: "bearer without credentials", auth: "bearer", ref: "app:v1", wantErr: "token server refused"},
		{name: "credentials lookup fails", auth: "basic", creds: failingCreds{}, ref: "app:v1", wantErr: "vault down"},
		{name: "bad reference", ref: "App:v1", wantErr: "invalid repository"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := &fakeRegistry{auth: tt.auth, user: "u", password: secret}
			srv := httptest.NewServer(fake.handler(t))
			defer srv.Close()
			host := strings.TrimPrefix(srv.URL, "http://")
			if tt.creds != nil {
				if s, ok := tt.creds.(Static); ok {
					tt.creds = Static{host: s["HOST"]}
				}
			}
			r, err := New(Config{Engine: dockertest.Engine(t, "/bin/true", "")}, tt.creds, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			got, ok, err := r.Digest(context.Background(), host+"/"+tt.ref)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error shows the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("Digest = %q, %v; want %q, %v", got, ok, tt.want, tt.wantOK)
			}
			if tt.wantScop != "" && (len(fake.tokenScopes) == 0 || fake.tokenScopes[0] != tt.wantScop) {
				t.Errorf("token requests %q, want %q", fake.tokenScopes, tt.wantScop)
			}
		})
	}
}

// staticFor is a Static for the test server, whose host is known only once it runs.
func staticFor(user, password string) Static { return Static{"HOST": {user, password}} }

type failingCreds struct{}

func (failingCreds) Lookup(context.Context, string) (string, string, bool, error) {
	return "", "", false, errors.New("vault down")
}

// A realm over plain http to a host that is neither local nor insecure never gets the password.
func TestTokenRealmMustBeHTTPS(t *testing.T) {
	r, err := New(Config{Engine: dockertest.Engine(t, "/bin/true", "")}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	s := &session{r: r, host: "reg.example.com", scope: "repository:app:pull"}
	_, err = s.token(context.Background(), map[string]string{"realm": "http://auth.example.com/token"}, "u", "p", true)
	if err == nil || !strings.Contains(err.Error(), "not https") {
		t.Errorf("err = %v, want a refusal", err)
	}
}

func TestWriteDockerConfig(t *testing.T) {
	state, err := statedir.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer state.Close()
	auth := base64.StdEncoding.EncodeToString([]byte("u:p"))
	for _, tt := range []struct {
		host, auth, want string
	}{
		{"127.0.0.1:5000", auth, `{"auths":{"127.0.0.1:5000":{"auth":"` + auth + `"}}}`},
		{DockerHub, auth, `{"auths":{"https://index.docker.io/v1/":{"auth":"` + auth + `"}}}`},
		{"reg.example.com", "", `{"auths":{}}`},
	} {
		dir, err := writeDockerConfig(state, tt.host, tt.auth)
		if err != nil {
			t.Fatal(err)
		}
		checkDockerConfig(t, dir, tt.want)
		if filepath.Dir(dir) != state.Path() {
			t.Errorf("docker config in %s, not in the state dir %s", dir, state.Path())
		}
	}
}
