package web

import (
	"fmt"
	"net/http/httptest"
	"testing"
	"time"
)

// Many addresses cannot grow the limiter without bound: it tracks at most AuthClients.
func TestAuthLimiterBounded(t *testing.T) {
	a := newAuthLimiter(Limits{AuthFailureBurst: 1, AuthFailureEvery: time.Hour, AuthClients: 10})
	for i := range 1000 {
		if !a.fail(fmt.Sprintf("10.0.%d.%d", i/256, i%256)) {
			t.Fatalf("client %d: its first failure was refused", i)
		}
		if len(a.clients) > 10 {
			t.Fatalf("%d clients tracked, limit 10", len(a.clients))
		}
	}
}

func TestClientAddr(t *testing.T) {
	for remote, want := range map[string]string{
		"192.0.2.7:4000":              "192.0.2.7",
		"[::ffff:192.0.2.7]:4000":     "192.0.2.7",
		"[2001:db8:1:2:3:4:5:6]:4000": "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::1]:1":    "2001:db8:1:2::/64",
		"not an address":              "not an address",
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = remote
		if got := clientAddr(r); got != want {
			t.Errorf("clientAddr(%q) = %q, want %q", remote, got, want)
		}
	}
}
