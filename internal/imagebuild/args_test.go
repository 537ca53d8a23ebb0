package imagebuild

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/internal/deploy"
)

func TestBuildArgs(t *testing.T) {
	p := buildPaths{context: "/co/svc", dockerfile: "/co/svc/Dockerfile"}
	tests := []struct {
		name     string
		req      deploy.BuildRequest
		network  string
		buildKit bool
		want     []string
		wantErr  string
	}{
		{
			name: "minimal classic",
			want: []string{"build", "--file=/co/svc/Dockerfile", "--force-rm", "/co/svc"},
		},
		{
			name: "everything, sorted, buildkit",
			req: deploy.BuildRequest{
				Stage:     "prod",
				BuildArgs: map[string]string{"B": "2", "A": "1 two", "C": "-x=y"},
				Labels:    map[string]string{"z": "last", "org.opencontainers.image.revision": "abc"},
				Tags:      []string{"reg/app:abc", "reg/app:latest"},
			},
			network:  "host",
			buildKit: true,
			want: []string{"build", "--file=/co/svc/Dockerfile", "--progress=plain", "--target=prod",
				"--network=host", "--build-arg=A=1 two", "--build-arg=B=2", "--build-arg=C=-x=y",
				"--label=org.opencontainers.image.revision=abc", "--label=z=last",
				"--tag=reg/app:abc", "--tag=reg/app:latest", "/co/svc"},
		},
		{name: "build arg name with =", req: deploy.BuildRequest{BuildArgs: map[string]string{"A=B": "x"}}, wantErr: "build arg"},
		{name: "empty label name", req: deploy.BuildRequest{Labels: map[string]string{"": "x"}}, wantErr: "label"},
		{name: "empty tag", req: deploy.BuildRequest{Tags: []string{""}}, wantErr: "tag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := buildArgs(tt.req, p, tt.network, tt.buildKit)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("args =\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func TestResolvePaths(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "co")
	mustWrite(t, filepath.Join(dir, "svc", "Dockerfile"), "FROM scratch\n", 0o644)
	mustWrite(t, filepath.Join(dir, "Dockerfile.root"), "FROM scratch\n", 0o644)
	mustWrite(t, filepath.Join(root, "secret"), "x\n", 0o600)
	mustSymlink(t, "../secret", filepath.Join(dir, "escape"))
	mustSymlink(t, root, filepath.Join(dir, "outdir"))
	mustSymlink(t, "svc", filepath.Join(dir, "svclink"))

	tests := []struct {
		name           string
		ctx, file      string
		wantCtx, wantF string
		wantErr        string
	}{
		{name: "defaults", wantCtx: dir, wantF: filepath.Join(dir, "Dockerfile"), wantErr: "no such file"},
		{name: "context default dockerfile", ctx: "svc", wantCtx: filepath.Join(dir, "svc"), wantF: filepath.Join(dir, "svc", "Dockerfile")},
		{name: "dockerfile outside context", ctx: "svc", file: "Dockerfile.root", wantCtx: filepath.Join(dir, "svc"), wantF: filepath.Join(dir, "Dockerfile.root")},
		{name: "symlink inside", ctx: "svclink", wantCtx: filepath.Join(dir, "svc"), wantF: filepath.Join(dir, "svc", "Dockerfile")},
		{name: "dotdot context", ctx: "../", wantErr: "not a path inside"},
		{name: "absolute dockerfile", file: "/etc/passwd", wantErr: "not a path inside"},
		{name: "dockerfile symlink out", file: "escape", wantErr: "outside the checkout"},
		{name: "context symlink out", ctx: "outdir", file: "Dockerfile.root", wantErr: "outside the checkout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := resolvePaths(deploy.BuildRequest{Dir: dir, Context: tt.ctx, Dockerfile: tt.file})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.context != tt.wantCtx || p.dockerfile != tt.wantF {
				t.Errorf("got %+v, want context %s dockerfile %s", p, tt.wantCtx, tt.wantF)
			}
		})
	}
	if _, err := resolvePaths(deploy.BuildRequest{Dir: "relative"}); err == nil {
		t.Error("relative Dir accepted")
	}
}

func mustWrite(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // WriteFile's mode passes through the umask
		t.Fatal(err)
	}
}

func mustSymlink(t *testing.T, target, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
}
