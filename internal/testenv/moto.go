package testenv

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"testing"
	"time"
)

// Moto starts moto, the AWS emulator in the machine's Python, on a free port for t and returns
// its URL, stopped when t ends. env adds to its environment (MOTO_ECS_SERVICE_RUNNING=1, say).
// Without moto the test skips, or fails with CI=true: there the harness installs it.
func Moto(t testing.TB, env ...string) string {
	t.Helper()
	if err := exec.Command("python3", "-c", "import moto.server").Run(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("moto is not installed (python3 -c 'import moto.server': %v): the test harness installs it", err)
		}
		t.Skipf("moto is not installed (python3 -c 'import moto.server': %v): run the tests through `make test`", err)
	}
	cmd := exec.Command("python3", "-m", "moto.server", "-H", "127.0.0.1", "-p", "0")
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting moto: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	// Werkzeug names the port it bound: the signal that moto serves.
	ready := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`Running on (http://127\.0\.0\.1:\d+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				ready <- m[1]
				break
			}
		}
		close(ready)
		_, _ = io.Copy(io.Discard, stderr)
	}()
	select {
	case url, ok := <-ready:
		if !ok {
			t.Fatal("moto exited before it served")
		}
		return url
	case <-time.After(2 * time.Minute): // a hang guard: moto starts in seconds
		t.Fatal("moto did not start")
	}
	return ""
}

// ResetMoto clears all of moto's state, between tests that share one server.
func ResetMoto(t testing.TB, url string) {
	t.Helper()
	resp, err := http.Post(url+"/moto-api/reset", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("resetting moto: %s", resp.Status)
	}
}
