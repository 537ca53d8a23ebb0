package source

import (
	"errors"
	"net"
	"sync/atomic"
	"testing"

	"github.com/slipway-dev/slipway/internal/testenv"
)

// Attack (issue 7, item 1): the payload chose the clone URL, so a pusher could point Slipway, and
// its token, at any host or local repository, and read internal ports from the errors. A Pinned
// cache fetches from the configured remote only, whatever URL and token its caller passes.
func TestPinnedFetchesOnlyTheConfiguredRemote(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var dialled atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			dialled.Add(1)
			c.Close()
		}
	}()
	src := testenv.NewGitRepo(t)
	src.Write("a.txt", "configured")
	sha := src.Commit("first")
	var asked []string
	p := Pin(newTestCache(t, Config{}), func(name string) (string, string, error) {
		asked = append(asked, name)
		if name != "acme/app" {
			return "", "", errors.New("repository " + name + " is not configured")
		}
		return src.Dir, "", nil
	})
	hostile := Repo{FullName: "acme/app", CloneURL: "http://" + ln.Addr().String() + "/probe.git", Token: "ghs_CANARY"}
	got, err := p.ReadFile(t.Context(), hostile, sha, "a.txt")
	if err != nil || string(got) != "configured" {
		t.Fatalf("ReadFile = %q, %v; want the configured remote's file", got, err)
	}
	if err := p.Fetch(t.Context(), hostile); err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.ChangedPaths(t.Context(), hostile, zeroSHA, sha); err != nil {
		t.Fatal(err)
	}
	co, err := p.Checkout(t.Context(), hostile, sha)
	if err != nil {
		t.Fatal(err)
	}
	co.Close()
	if n := dialled.Load(); n != 0 {
		t.Errorf("the URL the caller passed was contacted %d times", n)
	}
	err = p.Fetch(t.Context(), Repo{FullName: "other/repo", CloneURL: hostile.CloneURL})
	if !errors.Is(err, ErrInvalidRepo) || dialled.Load() != 0 {
		t.Errorf("unconfigured repository: %v, %d connections; want ErrInvalidRepo and none", err, dialled.Load())
	}
	if len(asked) != 5 {
		t.Errorf("the configuration was asked %d times, want once per call", len(asked))
	}
}
