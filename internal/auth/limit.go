package auth

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiter keeps a token bucket of failures per key (a client address, a user name), for at most
// max keys.
type limiter struct {
	every time.Duration
	burst int
	max   int
	mu    sync.Mutex
	keys  map[string]*failures
}

type failures struct {
	bucket   *rate.Limiter
	reported bool // its being limited was logged, once until a failure is allowed again
}

func newLimiter(burst int, every time.Duration, max int) *limiter {
	return &limiter{every: every, burst: burst, max: max, keys: map[string]*failures{}}
}

// limited reports whether key has no failures left, and whether that is news to log. A limited
// client is refused before its credentials are looked at, so that guessing tells it nothing.
func (l *limiter) limited(key string) (limited, news bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, ok := l.keys[key]
	if !ok || f.bucket.Tokens() >= 1 {
		return false, false
	}
	news, f.reported = !f.reported, true
	return true, news
}

// fail counts a failure of key.
func (l *limiter) fail(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, ok := l.keys[key]
	if !ok {
		if len(l.keys) >= l.max {
			l.evict()
		}
		f = &failures{bucket: rate.NewLimiter(rate.Every(l.every), l.burst)}
		l.keys[key] = f
	}
	if f.bucket.Allow() {
		f.reported = false
	}
}

// evict forgets the keys whose bucket has refilled, which lose nothing by it, and when none has,
// others (the map's order is random) until there is room: memory stays bounded, and an attacker
// with many addresses can at worst reset some buckets early.
func (l *limiter) evict() {
	for k, f := range l.keys {
		if f.bucket.Tokens() >= float64(l.burst) {
			delete(l.keys, k)
		}
	}
	for k := range l.keys {
		if len(l.keys) < l.max {
			break
		}
		delete(l.keys, k)
	}
}

// retryAfter is the whole seconds until key may fail again (at least 1).
func (l *limiter) retryAfter(key string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	wait := l.every
	if f, ok := l.keys[key]; ok {
		wait = time.Duration((1 - f.bucket.Tokens()) * float64(l.every))
	}
	return max(1, int(math.Ceil(wait.Seconds())))
}

// limitedAddr reports whether client is past its failures, logging it once when it becomes so.
func (s *Service) limitedAddr(ctx context.Context, client, what string) bool {
	limited, news := s.addrFails.limited(limitKey(client))
	if news {
		s.log.WarnContext(ctx, "client rate-limited after failed authentications", "client_addr", client, "what", what)
	}
	return limited
}

// userKey is the key a login name's failures count under.
func userKey(name string) string { return strings.ToLower(truncate(name, 128)) }

// tooMany answers 429: JSON under /api/, text elsewhere.
func (s *Service) tooMany(w http.ResponseWriter, r *http.Request, retryAfter int) {
	w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	msg := "too many failed authentications from this address, retry in " + strconv.Itoa(retryAfter) + " s"
	if wantsJSON(r) {
		writeError(w, http.StatusTooManyRequests, "rate_limited", msg)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusTooManyRequests)
	_, _ = w.Write([]byte(msg + "\n"))
}

func wantsJSON(r *http.Request) bool {
	return strings.HasPrefix(r.URL.Path, "/api/") || strings.Contains(r.Header.Get("Accept"), "application/json")
}

// writeError writes the API's error shape: {"error":{"code":…,"message":…}}.
func writeError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": message}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
