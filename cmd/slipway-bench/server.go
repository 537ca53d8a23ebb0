package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// server is a `slipway serve` this process started.
type server struct {
	url    string
	secret string
	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has exited
	err    error         // its exit error, once exited is closed
	log    string
}

// buildServer builds ./cmd/slipway of the module at src into dir.
func buildServer(ctx context.Context, src, dir string) (string, error) {
	bin := filepath.Join(dir, "slipway")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/slipway")
	cmd.Dir = src
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("failed to build slipway: %w\n%s", err, out)
	}
	return bin, nil
}

// startServer starts bin serve on a free loopback port with one worker and waits for /readyz.
// Everything it writes stays under dir: its log (warnings and errors only), its git cache.
func startServer(ctx context.Context, bin, dbURL, repo, dir string) (*server, error) {
	secret, err := randomHex(16)
	if err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "server.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("failed to create server log: %w", err)
	}
	defer logf.Close() // the child has its own descriptor
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(withoutSlipwayVars(os.Environ()),
		"SLIPWAY_DATABASE_URL="+dbURL,
		"SLIPWAY_LISTEN_ADDR="+addr,
		"SLIPWAY_WEBHOOK_SECRET="+secret,
		"SLIPWAY_REPOSITORIES="+repo,
		"SLIPWAY_WORKERS=1",
		"SLIPWAY_LOG_LEVEL=warn",
		// Planning fetches the pushed repository; its cache must not land in /var/lib/slipway.
		"SLIPWAY_GIT_CACHE_DIR="+filepath.Join(dir, "git"),
		"SLIPWAY_GIT_WORK_DIR="+filepath.Join(dir, "git-work"),
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Should this process die without stopping it, the kernel stops the server.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("failed to start %s serve: %w", bin, err)
	}
	s := &server{url: "http://" + addr, secret: secret, cmd: cmd, exited: make(chan struct{}), log: logPath}
	go func() { s.err = cmd.Wait(); close(s.exited) }()
	if err := s.waitReady(ctx, 60*time.Second); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

func (s *server) pid() int { return s.cmd.Process.Pid }

func (s *server) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/readyz", nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.exited:
			return fmt.Errorf("server exited before it was ready (%v); its log:\n%s", s.err, s.logTail(20))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("server not ready after %s; its log:\n%s", timeout, s.logTail(20))
		}
	}
}

// stop sends SIGTERM, as a service manager would, and kills the server if it has not exited
// within a while (its HTTP shutdown allows 10s).
func (s *server) stop() error {
	select {
	case <-s.exited:
		return s.err
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		return s.err
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
		return errors.New("server did not stop within 20s of SIGTERM: killed")
	}
}

// logTail returns the last n lines the server logged.
func (s *server) logTail(n int) string {
	b, err := os.ReadFile(s.log)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// logLines counts the lines the server logged (at warn or above).
func (s *server) logLines() int {
	b, err := os.ReadFile(s.log)
	if err != nil || len(b) == 0 {
		return 0
	}
	return bytes.Count(b, []byte("\n"))
}

// freeAddr returns a loopback address nothing listens on now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("failed to find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// withoutSlipwayVars drops SLIPWAY_* so that nothing from the caller's shell (a config file, other
// repositories) changes the server under test.
func withoutSlipwayVars(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "SLIPWAY_") {
			out = append(out, kv)
		}
	}
	return out
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("failed to read random bytes: %w", err)
	}
	return hex.EncodeToString(b), nil
}
