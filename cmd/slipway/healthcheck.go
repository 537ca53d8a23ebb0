package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/slipway-dev/slipway/internal/config"
)

// healthcheck asks the server on this host whether it is ready: the container image's
// HEALTHCHECK. It reads the listen address only, so that it works whatever secrets the server
// was given; any failure is exit status 1 (Docker's "unhealthy") with one line saying why.
func healthcheck(ctx context.Context, args, env []string, _, stderr io.Writer) error {
	fs, s := newFlagSet("healthcheck", stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if s.timeout <= 0 {
		return errors.New("healthcheck: --timeout must be positive")
	}
	addr, err := config.ListenAddr(s.config, s.env(env))
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	target, err := dialAddr(addr)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	return checkReady(ctx, target, s.timeout)
}

// dialAddr is where to reach a server listening on addr: a wildcard host (":8080", "0.0.0.0",
// "::", which Go listens on for IPv4 too) over IPv4 loopback.
func dialAddr(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("listen address %q is not host:port", addr)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	n, err := net.LookupPort("tcp", port) // serve listens on ":http" too
	if err != nil || n == 0 {
		return "", fmt.Errorf("listen address %q has no port", addr)
	}
	return net.JoinHostPort(host, strconv.Itoa(n)), nil
}

// checkReady is healthy on 200 from /readyz only: a redirect or any other status is not ready.
func checkReady(ctx context.Context, hostPort string, timeout time.Duration) error {
	client := &http.Client{
		Timeout: timeout,
		// No proxy (HTTP_PROXY is for the server's own calls out) and no connection kept.
		Transport:     &http.Transport{Proxy: nil, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+hostPort+"/readyz", nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	req.Header.Set("User-Agent", "slipway-healthcheck")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: no answer from %s: %s", hostPort, dialProblem(err, timeout))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: /readyz on %s answered %s", hostPort, resp.Status)
	}
	return nil
}

// dialProblem is the cause of a failed request in a few words, without the URL around it.
func dialProblem(err error, timeout time.Duration) string {
	if ne, ok := errors.AsType[net.Error](err); (ok && ne.Timeout()) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("timed out after %s", timeout)
	}
	if ue, ok := errors.AsType[*url.Error](err); ok {
		err = ue.Err
	}
	if oe, ok := errors.AsType[*net.OpError](err); ok {
		err = oe.Err
	}
	return err.Error()
}
