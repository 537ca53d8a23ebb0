package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/testenv"
)

// chaosPG is a PostgreSQL cluster of the chaos test's own: the test restarts it, which the
// harness's shared cluster (other packages' tests run on it at the same time) must never see.
type chaosPG struct {
	bin  string
	dir  string // short, under /tmp: it holds the unix socket
	data string
	log  string
	port int
	URL  string
	// as runs a PostgreSQL program as the postgres user when the test runs as root (initdb and
	// the server refuse root).
	as []string
}

// startChaosPG initdbs a cluster in a new directory and starts it on a free port. It is stopped
// and removed at the end of the test.
func startChaosPG(t *testing.T) *chaosPG {
	t.Helper()
	bin := testenv.Require(t, "SLIPWAY_TEST_PG_BIN")
	dir, err := os.MkdirTemp("/tmp", "slwc-pg-")
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	pg := &chaosPG{bin: bin, dir: dir, data: filepath.Join(dir, "data"), log: filepath.Join(dir, "pg.log")}
	t.Cleanup(pg.remove)
	// The postgres user must reach the socket and the data directory inside.
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatalf("harness: %v", err)
	}
	if err := os.Mkdir(pg.data, 0o700); err != nil {
		t.Fatalf("harness: %v", err)
	}
	if err := os.WriteFile(pg.log, nil, 0o644); err != nil {
		t.Fatalf("harness: %v", err)
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("harness: running as root needs a postgres user for initdb: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		for _, p := range []string{dir, pg.data, pg.log} {
			if err := os.Chown(p, uid, gid); err != nil {
				t.Fatalf("harness: %v", err)
			}
		}
		pg.as = []string{"runuser", "-u", "postgres", "--"}
	}
	if out, err := pg.cmd("initdb", "-D", pg.data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
		"--locale=C.UTF-8", "--no-sync"); err != nil {
		t.Fatalf("harness: initdb: %v\n%s", err, out)
	}
	conf := fmt.Sprintf("\n# chaos test\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\n"+
		"max_connections = 200\nlog_min_messages = warning\n", dir)
	if err := appendFile(filepath.Join(pg.data, "postgresql.conf"), conf); err != nil {
		t.Fatalf("harness: %v", err)
	}
	for try := 1; ; try++ {
		pg.port = freePort(t)
		if err := appendFile(filepath.Join(pg.data, "postgresql.conf"), fmt.Sprintf("port = %d\n", pg.port)); err != nil {
			t.Fatalf("harness: %v", err)
		}
		out, err := pg.ctl("start", "-l", pg.log)
		if err == nil {
			break
		}
		if try == 3 {
			log, _ := os.ReadFile(pg.log)
			t.Fatalf("harness: pg_ctl start: %v\n%s\n%s", err, out, log)
		}
	}
	pg.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", pg.port)
	return pg
}

func (pg *chaosPG) cmd(program string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	argv := append(append(append([]string{}, pg.as...), filepath.Join(pg.bin, program)), args...)
	return exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
}

func (pg *chaosPG) ctl(action string, args ...string) ([]byte, error) {
	return pg.cmd("pg_ctl", append([]string{action, "-D", pg.data, "-w", "-t", "60"}, args...)...)
}

// restart is what an operator's `systemctl restart postgresql` does: every connection is cut.
func (pg *chaosPG) restart() error {
	if out, err := pg.ctl("restart", "-m", "fast", "-l", pg.log); err != nil {
		return fmt.Errorf("pg_ctl restart: %w\n%s", err, out)
	}
	return nil
}

func (pg *chaosPG) remove() {
	if _, err := os.Stat(filepath.Join(pg.data, "postmaster.pid")); err == nil {
		_, _ = pg.ctl("stop", "-m", "immediate")
	}
	_ = os.RemoveAll(pg.dir)
}

func appendFile(path, text string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
