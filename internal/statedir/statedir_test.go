package statedir

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpenMakesPrivateDirs(t *testing.T) {
	parent := filepath.Join(t.TempDir(), "state", "checkouts")
	d, err := Open(parent)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Dir(parent), parent, d.Path()} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: %v, %v; want mode 0700", p, fi.Mode().Perm(), err)
		}
	}
	tmp, err := d.MkdirTemp("push-")
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(tmp) != d.Path() {
		t.Errorf("MkdirTemp made %s outside %s", tmp, d.Path())
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(d.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s after Close: %v", d.Path(), err)
	}
}

// TestOpenSweeps: what dead processes left goes, what a live one holds and what is not Slipway's
// stay.
func TestOpenSweeps(t *testing.T) {
	parent := t.TempDir()
	live, err := Open(parent)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	liveFile := filepath.Join(live.Path(), "push-1", "config.json")
	left := []string{
		filepath.Join(parent, "slipway-dead", "push-1", "config.json"),   // a dead process's lock, released
		filepath.Join(parent, "slipway-nolock", "push-1", "config.json"), // died before locking
		filepath.Join(parent, "slipway-checkout-123", "src", "main.go"),  // the layout before state dirs
	}
	for _, p := range append(left, liveFile) {
		write(t, p)
	}
	write(t, filepath.Join(parent, "slipway-dead", lockName))
	other := filepath.Join(parent, "not-ours", "file")
	write(t, other)

	d, err := Open(parent)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, p := range left {
		if _, err := os.Stat(filepath.Dir(filepath.Dir(p))); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left by a dead process: %v", p, err)
		}
	}
	for _, p := range []string{liveFile, other} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s removed: %v", p, err)
		}
	}
}

// TestOpenSweepsKilledProcess kills a process holding its directory, as a crash would: while it
// lives its directory stays, once it is dead the next Open removes it.
func TestOpenSweepsKilledProcess(t *testing.T) {
	parent := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHold$")
	cmd.Env = append(os.Environ(), "SLIPWAY_TEST_STATEDIR="+parent)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe() // the helper holds until this closes: with the test, at worst
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var held string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if p, ok := strings.CutPrefix(sc.Text(), "holding "); ok {
			held = p
			break
		}
	}
	if held == "" {
		cmd.Wait()
		t.Fatal("helper did not open its state dir")
	}

	d, err := Open(parent)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	if _, err := os.Stat(filepath.Join(held, "secret")); err != nil {
		t.Errorf("a live process's directory was swept: %v", err)
	}

	cmd.Process.Kill()
	cmd.Wait()
	d, err = Open(parent)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := os.Stat(held); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the killed process's directory is still there: %v", err)
	}
}

func TestHelperHold(t *testing.T) {
	parent := os.Getenv("SLIPWAY_TEST_STATEDIR")
	if parent == "" {
		t.Skip("run by TestOpenSweepsKilledProcess")
	}
	d, err := Open(parent)
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(d.Path(), "secret"))
	fmt.Println("holding " + d.Path())
	os.Stdin.Read(make([]byte, 1)) // until killed
}

func TestOpenRefusesSharedParent(t *testing.T) {
	for _, mode := range []os.FileMode{0o777 | os.ModeSticky, 0o770, 0o722} {
		parent := t.TempDir()
		if err := os.Chmod(parent, mode); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(parent, "slipway-x", "file"))
		if _, err := Open(parent); err == nil || !strings.Contains(err.Error(), "can be written by other users") {
			t.Errorf("Open of a %v dir = %v", mode, err)
		}
		if _, err := os.Stat(filepath.Join(parent, "slipway-x", "file")); err != nil {
			t.Errorf("a refused dir was swept: %v", err)
		}
	}
	if os.Geteuid() == 0 {
		parent := t.TempDir()
		if err := os.Chown(parent, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(parent); err == nil || !strings.Contains(err.Error(), "belongs to uid 65534") {
			t.Errorf("Open of another user's dir = %v", err)
		}
	}
	// A readable parent is fine: what matters is in the 0700 directories under it.
	parent := t.TempDir()
	if err := os.Chmod(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	d, err := Open(parent)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
}

func write(t *testing.T, name string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
}
