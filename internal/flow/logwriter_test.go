package flow

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCleanLine(t *testing.T) {
	cases := []struct {
		name, in string
		check    func(t *testing.T, out string)
	}{
		{"plain", "hello\r\n", func(t *testing.T, out string) {
			if out != "hello" {
				t.Errorf("%q", out)
			}
		}},
		{"nul", "a\x00b", func(t *testing.T, out string) {
			if strings.ContainsRune(out, 0) {
				t.Errorf("NUL kept: %q", out)
			}
		}},
		{"invalid utf8", "a\xffb", func(t *testing.T, out string) {
			if !utf8.ValidString(out) {
				t.Errorf("invalid: %q", out)
			}
		}},
		{"huge", strings.Repeat("é", 3<<20), func(t *testing.T, out string) {
			if len(out) > maxLogLine+64 || !strings.Contains(out, "[line truncated, 6291456 bytes]") || !utf8.ValidString(out) {
				t.Errorf("len %d, tail %q", len(out), out[len(out)-40:])
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.check(t, cleanLine(c.in)) })
	}
}
