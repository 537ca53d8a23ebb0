package web_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/testenv"
	"github.com/slipway-dev/slipway/internal/web"
)

// hang bounds a test that would otherwise hang; it never decides an outcome.
const hang = 2 * time.Minute

// readingHook reads the whole body as the webhook handler does, then answers 401: every request
// of these tests is an attacker's, with a bad signature. The first hold requests it lets in
// signal entered and wait for release before answering.
func readingHook(hold int, entered chan<- struct{}, release <-chan struct{}) http.Handler {
	var mu sync.Mutex
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, "reading body: "+err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		wait := hold > 0
		hold--
		mu.Unlock()
		if wait {
			entered <- struct{}{}
			<-release
		}
		http.Error(w, "signature does not match", http.StatusUnauthorized)
	})
}

func routerWith(t *testing.T, hook http.Handler, l web.Limits, logs io.Writer) http.Handler {
	return newTestRouter(t, testenv.Store(t), web.Deps{Webhook: hook, Limits: l}, logs)
}

func post(router http.Handler, body io.Reader, length int64) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/webhooks/github", body)
	req.ContentLength = length
	w := httptest.NewRecorder()
	router.ServeHTTP(w, req)
	return w
}

// Attack (issue 7, item 5): bodies are read before their signature is checked, so parallel
// maximum-size bodies with bad signatures held 1.25 GB. Each request reserves its declared size
// (the maximum when it declares none) from a fixed budget before anything is read, and is turned
// away with 503 when the budget is spent.
func TestWebhookBodyBudget(t *testing.T) {
	const maxBody, budget = 1000, 3000
	entered, release := make(chan struct{}), make(chan struct{})
	router := routerWith(t, readingHook(3, entered, release), web.Limits{WebhookMaxBody: maxBody, WebhookBodyBudget: budget}, io.Discard)

	// Two maximum-size bodies and one of unknown length (chunked: it may be as large as the
	// maximum) fill the budget while their handlers hold them.
	var wg sync.WaitGroup
	codes := make(chan int, 3)
	for _, length := range []int64{maxBody, maxBody, -1} {
		wg.Go(func() { codes <- post(router, bytes.NewReader(make([]byte, maxBody)), length).Code })
		<-entered
	}
	for name, length := range map[string]int64{"max-size": maxBody, "small": 10, "unknown length": -1} {
		w := post(router, bytes.NewReader(make([]byte, max(length, 10))), length)
		if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
			t.Errorf("%s body past the budget: %d (Retry-After %q), want 503 with Retry-After", name, w.Code, w.Header().Get("Retry-After"))
		}
	}
	close(release)
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != http.StatusUnauthorized {
			t.Errorf("a body within the budget got %d", c)
		}
	}
	// Released: the budget takes bodies again. An empty body costs nothing.
	router = routerWith(t, readingHook(0, nil, nil), web.Limits{WebhookMaxBody: maxBody, WebhookBodyBudget: budget}, io.Discard)
	if w := post(router, bytes.NewReader(make([]byte, maxBody)), maxBody); w.Code != http.StatusUnauthorized {
		t.Errorf("after release: %d", w.Code)
	}
}

// The same budget holds under 100 parallel maximum-size bodies, counted at the handler: never
// more than the budget's worth of bodies is inside it at once.
func TestWebhookBodyBudgetUnderFlood(t *testing.T) {
	const maxBody, budget, clients = 1 << 10, 4 << 10, 100
	var (
		mu             sync.Mutex
		inFlight, peak int64
		settled        atomic.Int64 // requests inside the handler or refused
		gate           = make(chan struct{})
	)
	settle := func() {
		if settled.Add(1) == clients {
			close(gate)
		}
	}
	hook := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		inFlight += r.ContentLength
		peak = max(peak, inFlight)
		mu.Unlock()
		settle()
		<-gate // every request is in here or refused: the peak is reached
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		inFlight -= r.ContentLength
		mu.Unlock()
		w.WriteHeader(http.StatusUnauthorized)
	})
	router := routerWith(t, hook, web.Limits{WebhookMaxBody: maxBody, WebhookBodyBudget: budget}, io.Discard)
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			if w := post(router, bytes.NewReader(make([]byte, maxBody)), maxBody); w.Code == http.StatusServiceUnavailable {
				settle()
			}
		})
	}
	wg.Wait()
	if peak > budget {
		t.Errorf("%d bytes of bodies in the handler at once, budget %d", peak, budget)
	}
}

// Attack (issue 7, item 5): a body sent one byte at a time was never cut off. Each case opens a
// connection, stalls, and waits for the server to close it; the timeouts are small here, and the
// test waits on the connection, not on the clock.
func TestSlowClientsCutOff(t *testing.T) {
	cases := []struct {
		name   string
		limits web.Limits
		send   string // then the client stalls
	}{
		{"slow headers", web.Limits{ReadHeaderTimeout: 50 * time.Millisecond},
			"POST /webhooks/github HTTP/1.1\r\nHost: x\r\n"},
		{"slow webhook body (the per-request deadline, well inside ReadTimeout)",
			web.Limits{ReadTimeout: time.Hour, WebhookReadGrace: 50 * time.Millisecond, WebhookMinRate: 1 << 30},
			"POST /webhooks/github HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"},
		{"webhook body trickled a byte at a time", web.Limits{ReadTimeout: time.Hour, WebhookReadGrace: 50 * time.Millisecond, WebhookMinRate: 1 << 20},
			"POST /webhooks/github HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"},
		{"slow chunked webhook body", web.Limits{ReadTimeout: time.Hour, WebhookReadGrace: 50 * time.Millisecond, WebhookMinRate: 1 << 30},
			"POST /webhooks/github HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{\r\n"},
		{"slow body elsewhere (ReadTimeout)", web.Limits{ReadTimeout: 50 * time.Millisecond},
			"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"},
		{"idle keep-alive connection", web.Limits{IdleTimeout: 50 * time.Millisecond},
			"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.limits.WebhookMaxBody = 1 << 20
			srv := web.NewServer(routerWith(t, readingHook(0, nil, nil), c.limits, io.Discard), c.limits)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			go func() { _ = srv.Serve(ln) }()
			t.Cleanup(func() { _ = srv.Close() })

			conn, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			// A server quicker than this write (on a loaded machine) has hung up already: fine.
			_, _ = io.WriteString(conn, c.send)
			if strings.Contains(c.name, "trickled") {
				// One byte every few milliseconds, until the server hangs up.
				go func() {
					tick := time.NewTicker(5 * time.Millisecond)
					defer tick.Stop()
					for range tick.C {
						if _, err := conn.Write([]byte{' '}); err != nil {
							return
						}
					}
				}()
			}
			_ = conn.SetReadDeadline(time.Now().Add(hang))
			got, err := io.ReadAll(conn) // until the server closes the connection
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("the server kept the stalled connection open for %s (read %q)", hang, got)
			}
		})
	}
}

type notReady struct{ err error }

func (n notReady) Ready(context.Context) error { return n.err }

// Issue 7, item 11: /readyz and / showed anonymous clients the database's user, name and address
// (the driver's error text). They say "not ready"; the cause goes to the log.
func TestReadinessShowsNothingOfTheDatabase(t *testing.T) {
	cause := errors.New(`database unreachable: failed to connect to user=slipway_owner database=slipway_prod: 10.20.30.40:5432 (db.internal): dial error`)
	logs := &bytes.Buffer{}
	router := newTestRouter(t, testenv.Store(t), web.Deps{Ready: notReady{cause}}, logs)
	for _, target := range []string{"/readyz"} {
		w := httptest.NewRecorder()
		router.ServeHTTP(w, httptest.NewRequest(http.MethodGet, target, nil))
		body := w.Body.String()
		for _, s := range []string{"slipway_owner", "slipway_prod", "10.20.30.40", "db.internal", "5432"} {
			if strings.Contains(body, s) {
				t.Errorf("%s shows %q: %s", target, s, body)
			}
		}
		if !strings.Contains(body, "not ready") {
			t.Errorf("%s does not say not ready: %s", target, body)
		}
	}
	w := httptest.NewRecorder()
	router.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if w.Code != http.StatusServiceUnavailable {
		t.Errorf("/readyz: %d, want 503", w.Code)
	}
	if !strings.Contains(logs.String(), "slipway_prod") {
		t.Errorf("the cause is not in the log: %s", logs)
	}
}
