package source

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/slipway-dev/slipway/internal/testenv"
)

func TestReadFile(t *testing.T) {
	t.Parallel()
	src := testenv.NewGitRepo(t)
	src.Write(".slipway.yml", "old")
	old := src.Commit("old")
	src.Write(".slipway.yml", "services: {}\n")
	src.Write("deploy/ünï côdé.yml", "nested")
	src.Write("big.txt", string(make([]byte, 2048)))
	src.Write("*", "star")
	if err := os.Symlink(".slipway.yml", filepath.Join(src.Dir, "link.yml")); err != nil {
		t.Fatal(err)
	}
	head := src.Commit("head")

	c := newTestCache(t, Config{MaxFileSize: 1024})
	repo := Repo{FullName: "o/r", CloneURL: fileURL(src)}

	for _, tc := range []struct {
		name, sha, path string
		want            string
		wantErr         error // nil with wantAnyErr means "some other error"
		wantAnyErr      bool
	}{
		{name: "at head", sha: head, path: ".slipway.yml", want: "services: {}\n"},
		{name: "at older commit", sha: old, path: ".slipway.yml", want: "old"},
		{name: "nested unicode with space", sha: head, path: "deploy/ünï côdé.yml", want: "nested"},
		{name: "glob character is literal", sha: head, path: "*", want: "star"},
		{name: "absent", sha: head, path: "missing.yml", wantErr: ErrNotFound},
		{name: "absent at older commit", sha: old, path: "big.txt", wantErr: ErrNotFound},
		{name: "absent in existing dir", sha: head, path: "deploy/missing.yml", wantErr: ErrNotFound},
		{name: "unknown commit", sha: "0123456789012345678901234567890123456789", path: ".slipway.yml", wantErr: ErrNotFound},
		{name: "too large", sha: head, path: "big.txt", wantErr: ErrTooLarge},
		{name: "directory", sha: head, path: "deploy", wantErr: ErrNotRegular},
		{name: "symlink", sha: head, path: "link.yml", wantErr: ErrNotRegular},
		{name: "parent escape", sha: head, path: "../etc/passwd", wantAnyErr: true},
		{name: "absolute", sha: head, path: "/etc/passwd", wantAnyErr: true},
		{name: "empty", sha: head, path: "", wantAnyErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.ReadFile(t.Context(), repo, tc.sha, tc.path)
			switch {
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
			case tc.wantAnyErr:
				if err == nil || errors.Is(err, ErrNotFound) {
					t.Fatalf("err = %v, want an error other than ErrNotFound", err)
				}
			case err != nil:
				t.Fatalf("ReadFile: %v", err)
			case string(got) != tc.want:
				t.Errorf("content = %q, want %q", got, tc.want)
			}
		})
	}
}
