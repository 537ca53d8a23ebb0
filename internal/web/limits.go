package web

import (
	"cmp"
	"io"
	"net/http"
	"time"

	"golang.org/x/sync/semaphore"
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
				writeError(w, http.StatusServiceUnavailable, "overloaded", "too many webhook bodies in flight, retry later")
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
