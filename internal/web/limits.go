package web

import (
	"cmp"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"
	"golang.org/x/time/rate"
)

// Limits bound what a client can make the server hold before it has proved who it is: how long
// it may take to send a request, how much of the webhook's bodies (read before their signature
// can be checked) may be in memory at once, how often it may fail to authenticate to the API.
// A zero field takes its default.
type Limits struct {
	ReadHeaderTimeout time.Duration // default 10s
	// ReadTimeout bounds reading a whole request, body included: long enough for a
	// maximum-size webhook body on a slow link (25 MiB at 256 KiB/s takes 100 s). Default 2m.
	ReadTimeout    time.Duration
	IdleTimeout    time.Duration // a keep-alive connection waiting for its next request; default 1m
	MaxHeaderBytes int           // default 64 KiB

	// WebhookMaxBody is the webhook's size limit (webhook.max_body_bytes); default 25 MiB.
	WebhookMaxBody int64
	// WebhookBodyBudget is how many bytes of webhook bodies may be in flight at once. A request
	// reserves its Content-Length (WebhookMaxBody when it declares none) before anything is
	// read, and gets 503 when the budget cannot cover it. Default 64 MiB, and never below
	// WebhookMaxBody.
	WebhookBodyBudget int64
	// A webhook body must keep arriving: by WebhookReadGrace after the request's headers plus
	// the time what has arrived takes at WebhookMinRate (bytes per second), and never later
	// than ReadTimeout. Defaults 5s and 256 KiB/s.
	WebhookReadGrace time.Duration
	WebhookMinRate   int64

	// A client address may fail API authentication AuthFailureBurst times, then once per
	// AuthFailureEvery; beyond that it gets 429 whatever it sends. AuthClients caps the
	// addresses tracked. Defaults 10, 6s (10 a minute), 10000.
	AuthFailureBurst int
	AuthFailureEvery time.Duration
	AuthClients      int
}

func (l Limits) withDefaults() Limits {
	l.ReadHeaderTimeout = cmp.Or(l.ReadHeaderTimeout, 10*time.Second)
	l.ReadTimeout = cmp.Or(l.ReadTimeout, 2*time.Minute)
	l.IdleTimeout = cmp.Or(l.IdleTimeout, time.Minute)
	l.MaxHeaderBytes = cmp.Or(l.MaxHeaderBytes, 64<<10)
	l.WebhookMaxBody = cmp.Or(l.WebhookMaxBody, 25<<20)
	l.WebhookBodyBudget = max(cmp.Or(l.WebhookBodyBudget, 64<<20), l.WebhookMaxBody)
	l.WebhookReadGrace = cmp.Or(l.WebhookReadGrace, 5*time.Second)
	l.WebhookMinRate = cmp.Or(l.WebhookMinRate, 256<<10)
	l.AuthFailureBurst = cmp.Or(l.AuthFailureBurst, 10)
	l.AuthFailureEvery = cmp.Or(l.AuthFailureEvery, 6*time.Second)
	l.AuthClients = cmp.Or(l.AuthClients, 10000)
	return l
}

// NewServer is the HTTP server for h, with the timeouts of l: a client that sends its headers
// or its body too slowly, or keeps an idle connection, is disconnected.
func NewServer(h http.Handler, l Limits) *http.Server {
	l = l.withDefaults()
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		ReadTimeout:       l.ReadTimeout,
		IdleTimeout:       l.IdleTimeout,
		MaxHeaderBytes:    l.MaxHeaderBytes,
	}
}

// bodyBudget admits a request only when its body fits in what is left of a budget of bytes in
// flight, and holds the reservation until the handler returns, so that bodies read before they
// are authenticated cannot take more memory than the budget however many arrive. The body must
// keep arriving, too (see progressBody), so that a slow sender holds its reservation no longer
// than a fast one would.
func bodyBudget(l Limits) func(http.Handler) http.Handler {
	sem := semaphore.NewWeighted(l.WebhookBodyBudget)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n := r.ContentLength
			if n < 0 || n > l.WebhookMaxBody {
				n = l.WebhookMaxBody // the most the handler reads
			}
			if !sem.TryAcquire(n) {
				w.Header().Set("Retry-After", "5")
				w.Header().Set("Connection", "close") // the body is not read
				writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "too many webhook bodies in flight, retry later"})
				return
			}
			defer sem.Release(n)
			b := &progressBody{ReadCloser: r.Body, rc: http.NewResponseController(w), start: time.Now(),
				grace: l.WebhookReadGrace, rate: l.WebhookMinRate, limit: l.ReadTimeout}
			b.extend()
			r.Body = b
			next.ServeHTTP(w, r)
		})
	}
}

// progressBody moves the connection's read deadline as the body arrives: grace after the start,
// plus the time what has arrived takes at rate bytes a second, never past limit. A sender that
// stalls, or trickles, is cut off within grace of falling behind the rate.
type progressBody struct {
	io.ReadCloser
	rc    *http.ResponseController
	start time.Time
	grace time.Duration
	rate  int64
	limit time.Duration // the server's ReadTimeout
	read  int64
}

func (b *progressBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.read += int64(n)
		b.extend()
	}
	return n, err
}

func (b *progressBody) extend() {
	d := min(b.grace+time.Duration(b.read)*time.Second/time.Duration(b.rate), b.limit)
	// A ResponseWriter without a connection (a test's) cannot; the server's ReadTimeout holds then.
	_ = b.rc.SetReadDeadline(b.start.Add(d))
}

// authLimiter keeps a token bucket of failed API authentications per client address, for at
// most max addresses.
type authLimiter struct {
	every   time.Duration
	burst   int
	max     int
	mu      sync.Mutex
	clients map[string]*authClient
}

type authClient struct {
	failures *rate.Limiter
	reported bool // its being limited was logged, once until its failures are allowed again
}

func newAuthLimiter(l Limits) *authLimiter {
	return &authLimiter{every: l.AuthFailureEvery, burst: l.AuthFailureBurst, max: l.AuthClients,
		clients: map[string]*authClient{}}
}

// limited reports whether client has no failures left, and whether that is news to log. A
// limited client is refused before its token is looked at, so that guessing tells it nothing.
func (a *authLimiter) limited(client string) (limited, news bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	c, ok := a.clients[client]
	if !ok || c.failures.Tokens() >= 1 {
		return false, false
	}
	news, c.reported = !c.reported, true
	return true, news
}

// fail counts a failure of client and reports whether it was within its allowance.
func (a *authLimiter) fail(client string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	c, ok := a.clients[client]
	if !ok {
		if len(a.clients) >= a.max {
			a.evict()
		}
		c = &authClient{failures: rate.NewLimiter(rate.Every(a.every), a.burst)}
		a.clients[client] = c
	}
	if !c.failures.Allow() {
		return false
	}
	c.reported = false
	return true
}

// evict forgets the clients whose bucket has refilled, which lose nothing by it, and when none
// has, others (the map's order is random) until there is room: the memory stays bounded, and
// an attacker with many addresses can at worst reset some buckets early.
func (a *authLimiter) evict() {
	for k, c := range a.clients {
		if c.failures.Tokens() >= float64(a.burst) {
			delete(a.clients, k)
		}
	}
	for k := range a.clients {
		if len(a.clients) < a.max {
			break
		}
		delete(a.clients, k)
	}
}

// retryAfter is the Retry-After of a 429: when the next failure is allowed.
func (a *authLimiter) retryAfter() string {
	return strconv.Itoa(int(max(a.every.Round(time.Second), time.Second) / time.Second))
}

// clientAddr is the address a request came from, as the limiter counts it: the peer's IP (a
// proxy in front of Slipway counts as one client), an IPv6 one by its /64, which one host
// usually holds whole.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// logAuthFailure records a failed API authentication: who, what, why; never the token.
func logAuthFailure(logger *slog.Logger, r *http.Request, client, reason string) {
	logger.WarnContext(r.Context(), "api authentication failed", "client_addr", client, "method", r.Method,
		"path", truncate(r.URL.Path, 200), "reason", reason)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
