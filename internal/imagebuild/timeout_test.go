package imagebuild

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/dockercli/dockertest"
)

// TestBuildTimeout uses a stand-in docker that never finishes by itself. It prints a line, which
// the error must hold, and says when SIGTERM comes: a docker that the timeout did not stop would
// end only at dockercli's WaitDelay, by SIGKILL, saying nothing.
func TestBuildTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	fake := filepath.Join(t.TempDir(), "docker")
	script := "#!/bin/sh\ntrap 'echo got SIGTERM; exit 143' TERM\necho starting\nsleep 60 & wait\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := New(Config{Engine: dockertest.Engine(t, fake, ""), BuildKit: BuildKitOff, Timeout: timeout}, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "Dockerfile"), "FROM scratch\n", 0o644)
	// The timeout must come after "starting", once the trap is set, however slow the machine.
	// Build's clock starts before docker does, so holding that line for the whole timeout is
	// enough: this orders the two events, it asserts nothing about speed.
	log := func(_, line string) {
		if line == "starting" {
			time.Sleep(timeout)
		}
	}
	err = b.Build(context.Background(), deploy.BuildRequest{Dir: dir, Tags: []string{"x:1"}}, log)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "timed out after 300ms") {
		t.Fatalf("err = %v, want a timeout", err)
	}
	if !strings.Contains(err.Error(), "starting") {
		t.Errorf("err = %v, want the output's last lines", err)
	}
	if !strings.Contains(err.Error(), "got SIGTERM") {
		t.Errorf("err = %v: docker never got SIGTERM, so the timeout did not stop it", err)
	}
}
