package build

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/deploy"
)

// TestBuildTimeout uses a stand-in docker that never finishes.
func TestBuildTimeout(t *testing.T) {
	fake := filepath.Join(t.TempDir(), "docker")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho starting\nexec sleep 60\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := New(Config{DockerBinary: fake, BuildKit: BuildKitOff, Timeout: 300 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "Dockerfile"), "FROM scratch\n", 0o644)
	start := time.Now()
	err = b.Build(context.Background(), deploy.BuildRequest{Dir: dir, Tags: []string{"x:1"}}, nil)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "timed out after 300ms") {
		t.Errorf("err = %v, want a timeout", err)
	}
	if !strings.Contains(err.Error(), "starting") {
		t.Errorf("err = %v, want the output's last lines", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Build took %s to give up", d)
	}
}
