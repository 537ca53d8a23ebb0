package source

import (
	"strings"
	"testing"
)

func TestScrub(t *testing.T) {
	t.Parallel()
	const token = "ghs_abc/def+ghi"
	for _, tc := range []struct {
		name, token, in, want string
	}{
		{"token", token, "fatal: bad token ghs_abc/def+ghi here", "fatal: bad token [REDACTED] here"},
		{"encoded token", token, "got ghs_abc%2Fdef%2Bghi", "got [REDACTED]"},
		{"basic credential", token, "cred " + basicAuth(token), "cred [REDACTED]"},
		{"any auth header", "", "> Authorization: Bearer xyz.123\n", "> Authorization: Bearer [REDACTED]\n"},
		{"url userinfo", "", "fatal: unable to access 'https://bob:hunter2@example.com/r.git/'",
			"fatal: unable to access 'https://[REDACTED]@example.com/r.git/'"},
		{"url user only", "", "http://bob@example.com/r", "http://[REDACTED]@example.com/r"},
		{"token in url", token, "https://x-access-token:" + token + "@github.com/o/r",
			"https://[REDACTED]@github.com/o/r"},
		{"nothing to do", "", "fatal: repository 'https://example.com/r' not found", "fatal: repository 'https://example.com/r' not found"},
		{"email is not a url", "", "author t@e.com", "author t@e.com"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := newScrubber(tc.token).scrub(tc.in); got != tc.want {
				t.Errorf("scrub(%q)\n got %q\nwant %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestHeadBufferDropsCutLine(t *testing.T) {
	t.Parallel()
	b := &headBuffer{max: 20}
	b.Write([]byte("line one\nsecret-tok"))
	b.Write([]byte("en-continues\n"))
	if got := b.text(); got != "line one\n" {
		t.Errorf("text() = %q, want the complete line only", got)
	}
	if got := newScrubber("secret-token-continues").scrub(b.text()); strings.Contains(got, "secret") {
		t.Errorf("partial secret survived: %q", got)
	}
}
