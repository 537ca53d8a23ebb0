package imagebuild

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/slipway-dev/slipway/internal/dockercli/dockertest"
)

func TestClientMajor(t *testing.T) {
	tests := []struct {
		out     string
		want    int
		wantErr bool
	}{
		{"Docker version 20.10.24+dfsg1, build 297e128\n", 20, false},
		{"Docker version 28.2.2, build e6534b4\n", 28, false},
		{"podman version 4.3.1\n", 4, false},
		{"garbage", 0, true},
	}
	for _, tt := range tests {
		got, err := clientMajor([]byte(tt.out))
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("clientMajor(%q) = %d, %v; want %d (error %v)", tt.out, got, err, tt.want, tt.wantErr)
		}
	}
}

// TestBuildKitAuto drives the detection with a stand-in docker script.
func TestBuildKitAuto(t *testing.T) {
	tests := []struct {
		name    string
		buildx  bool // `docker buildx version` succeeds
		version string
		want    bool
	}{
		{"buildx plugin", true, "Docker version 28.2.2, build e6534b4", true},
		{"old CLI, BuildKit built in", false, "Docker version 20.10.24+dfsg1, build 297e128", true},
		{"new CLI without buildx", false, "Docker version 28.2.2, build e6534b4", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buildxExit := "1"
			if tt.buildx {
				buildxExit = "0"
			}
			fake := filepath.Join(t.TempDir(), "docker")
			script := "#!/bin/sh\nif [ \"$1\" = buildx ]; then exit " + buildxExit + "; fi\necho '" + tt.version + "'\n"
			if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
				t.Fatal(err)
			}
			b, err := New(Config{Engine: dockertest.Engine(t, fake, "")}, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			got, err := b.useBuildKit(context.Background())
			if err != nil || got != tt.want {
				t.Errorf("useBuildKit = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, cfg := range []Config{
		{Engine: dockertest.Engine(t, "/bin/sh", ""), BuildKit: "yes"},
		{Engine: dockertest.Engine(t, "/bin/sh", ""), Timeout: -1},
		{Engine: dockertest.Engine(t, "/nonexistent/docker", "")},
	} {
		if _, err := New(cfg, logger); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}
