package source

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/internal/testenv"
)

func TestChangedPaths(t *testing.T) {
	t.Parallel()
	src := testenv.NewGitRepo(t)
	src.Write("keep.txt", "keep")
	src.Write("modify.txt", "before")
	src.Write("delete.txt", "bye")
	src.Write("old name.txt", "moving, same content so git would call it a rename")
	base := src.Commit("base")

	src.Write("modify.txt", "after")
	src.Write("added.txt", "new")
	src.Remove("delete.txt")
	src.Git("mv", "old name.txt", "new name.txt")
	src.Write("with space and\nnewline.txt", "odd")
	src.Write("ünïcode/文件.txt", "utf-8")
	head := src.Commit("head")

	c := newTestCache(t, Config{})
	repo := Repo{FullName: "o/r", CloneURL: fileURL(src)}

	for _, tc := range []struct {
		name          string
		before, after string
		want          []string
		wantAll       bool
		wantErr       error
	}{
		{
			name: "modify add delete rename", before: base, after: head,
			want: []string{
				"added.txt", "delete.txt", "modify.txt", "new name.txt", "old name.txt",
				"with space and\nnewline.txt", "ünïcode/文件.txt",
			},
		},
		{name: "same commit", before: head, after: head, want: nil},
		{name: "new branch", before: zeroSHA, after: head, wantAll: true},
		{name: "unknown before", before: strings.Repeat("1", 40), after: head, wantAll: true},
		{name: "unknown after", before: base, after: strings.Repeat("2", 40), wantErr: ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			paths, all, err := c.ChangedPaths(t.Context(), repo, tc.before, tc.after)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ChangedPaths: %v", err)
			}
			if all != tc.wantAll {
				t.Errorf("all = %v, want %v", all, tc.wantAll)
			}
			slices.Sort(paths)
			if !slices.Equal(paths, tc.want) {
				t.Errorf("paths = %q\nwant    %q", paths, tc.want)
			}
		})
	}
}
