package repofs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestWalkOrder: the same paths in the same order as filepath.WalkDir, links reported as links.
func TestWalkOrder(t *testing.T) {
	checkout := t.TempDir()
	for _, name := range []string{"b/z", "b/a", "a", "B", "c/d/e", "a.b", "a-b"} {
		write(t, filepath.Join(checkout, "ctx", name), name)
	}
	symlink(t, "/dev/zero", filepath.Join(checkout, "ctx", "zero"))
	symlink(t, "../../secret", filepath.Join(checkout, "ctx", "b", "out"))
	symlink(t, "b", filepath.Join(checkout, "ctx", "blink"))
	if err := os.Mkdir(filepath.Join(checkout, "ctx", "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	symlink(t, "ctx", filepath.Join(checkout, "ctxlink"))

	var want []string
	err := filepath.WalkDir(filepath.Join(checkout, "ctx"), func(p string, d fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(filepath.Join(checkout, "ctx"), p)
		if rel != "." {
			want = append(want, rel+" "+d.Type().String())
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	d, err := Open(checkout)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, start := range []string{"ctx", "ctxlink"} {
		var got []string
		err = d.Walk(start, Limits{}, func(e Entry) error {
			got = append(got, e.Path+" "+e.Info.Mode().Type().String())
			switch {
			case e.Info.Mode()&fs.ModeSymlink != 0:
				if e.Target == "" {
					t.Errorf("%s: no link text", e.Path)
				}
			case e.Info.Mode().IsRegular():
				f, err := e.Open()
				if err != nil {
					return err
				}
				defer f.Close()
				b, err := io.ReadAll(f)
				if err != nil || string(b) != e.Path {
					t.Errorf("%s holds %q, %v", e.Path, b, err)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("Walk(%s) =\n%s\nwant\n%s", start, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}

func TestWalkRefuses(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, ctx string)
		lim     Limits
		start   string
		wantErr error
		msg     string
	}{
		{"FIFO", func(t *testing.T, ctx string) { fifo(t, filepath.Join(ctx, "a", "fifo")) },
			Limits{}, "ctx", ErrNotRegular, `"ctx/a/fifo" is a named pipe`},
		{"socket", func(t *testing.T, ctx string) {
			l, err := netListen(filepath.Join(ctx, "s"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
		}, Limits{}, "ctx", ErrNotRegular, `"ctx/s" is a socket`},
		{"start outside", func(t *testing.T, ctx string) { symlink(t, "..", filepath.Join(ctx, "up")) },
			Limits{}, "ctx/up/..", ErrOutside, "leads outside"},
		{"start through a link outside", func(t *testing.T, ctx string) { symlink(t, "/etc", filepath.Join(ctx, "etc")) },
			Limits{}, "ctx/etc", ErrOutside, "leads outside"},
		{"start is a file", func(t *testing.T, ctx string) {}, Limits{}, "ctx/a/f", nil, "not a directory"},
		{"too many entries", func(t *testing.T, ctx string) {
			for i := range 20 {
				write(t, filepath.Join(ctx, "many", fmt.Sprint(i)), "")
			}
		}, Limits{MaxEntries: 10}, "ctx", ErrTooMany, `"ctx" holds more than 10 files and directories`},
		{"too many bytes", func(t *testing.T, ctx string) {
			write(t, filepath.Join(ctx, "b1"), strings.Repeat("x", 60))
			write(t, filepath.Join(ctx, "b2"), strings.Repeat("x", 60))
		}, Limits{MaxBytes: 100}, "ctx", ErrTooLarge, `"ctx" holds more than 100 bytes of files (the limit, reached at "ctx/b2"`},
		{"a terabyte (sparse)", func(t *testing.T, ctx string) {
			f, err := os.Create(filepath.Join(ctx, "tb"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := f.Truncate(1 << 40); err != nil {
				t.Fatal(err)
			}
		}, Limits{}, "ctx", ErrTooLarge, `reached at "ctx/tb", 1099511627776 bytes`},
		{"too deep", func(t *testing.T, ctx string) {
			write(t, filepath.Join(ctx, "1", "2", "3", "4", "f"), "")
		}, Limits{MaxDepth: 3}, "ctx", ErrTooMany, `"ctx/1/2/3/4" is nested more than 3 directories deep`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkout := t.TempDir()
			ctx := filepath.Join(checkout, "ctx")
			write(t, filepath.Join(ctx, "a", "f"), "f")
			tt.setup(t, ctx)
			d, err := Open(checkout)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			err = d.Walk(tt.start, tt.lim, func(e Entry) error {
				if e.Info.Mode().IsRegular() {
					f, err := e.Open()
					if err != nil {
						return err
					}
					defer f.Close()
					_, err = io.Copy(io.Discard, f)
					return err
				}
				return nil
			})
			if err == nil || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("Walk = %v, want %v saying %q", err, tt.wantErr, tt.msg)
			}
			if strings.Contains(err.Error(), checkout) {
				t.Errorf("error %q shows the server's directory", err)
			}
		})
	}
}

// Files the walker is told to skip are never opened, and count only as entries.
func TestWalkSkip(t *testing.T) {
	checkout := t.TempDir()
	write(t, filepath.Join(checkout, "skip", "big"), strings.Repeat("x", 1000))
	write(t, filepath.Join(checkout, "keep"), "k")
	fifo(t, filepath.Join(checkout, "skip", "zfifo")) // never reached: its directory is skipped
	d, err := Open(checkout)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var got []string
	err = d.Walk(".", Limits{MaxBytes: 10}, func(e Entry) error {
		got = append(got, e.Path)
		if e.Path == "skip" {
			return fs.SkipDir
		}
		return nil
	})
	if err != nil || !slices.Equal(got, []string{"keep", "skip"}) {
		t.Errorf("Walk = %v, %v", got, err)
	}
}

func netListen(name string) (net.Listener, error) { return net.Listen("unix", name) }
