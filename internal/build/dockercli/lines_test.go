package dockercli

import (
	"fmt"
	"strings"
	"testing"
)

func TestLineWriter(t *testing.T) {
	long := strings.Repeat("x", 40)
	tests := []struct {
		name   string
		max    int
		writes []string
		want   []string
	}{
		{"one line", 64, []string{"hello\n"}, []string{"hello"}},
		{"split across writes", 64, []string{"hel", "lo\nwor", "ld\n"}, []string{"hello", "world"}},
		{"no final newline", 64, []string{"a\nb"}, []string{"a", "b"}},
		{"crlf", 64, []string{"a\r\n"}, []string{"a"}},
		{"progress redrawn", 64, []string{"Sending 1kB\rSending 2kB\r\r\n"}, []string{"Sending 2kB"}},
		{"empty lines kept", 64, []string{"\n\n"}, []string{"", ""}},
		{"long line cut", 10, []string{long + "\nnext\n"},
			[]string{"xxxxxxxxxx… [line truncated, 40 bytes]", "next"}},
		{"long line over many writes", 10, []string{long[:15], long[15:], "\n"},
			[]string{"xxxxxxxxxx… [line truncated, 40 bytes]"}},
		{"cut inside a rune", 10, []string{"aaaaaaaaa€€\n"},
			[]string{"aaaaaaaaa… [line truncated, 15 bytes]"}},
		{"invalid utf-8 and NUL", 64, []string{"a\xffb\x00c\n"}, []string{"a\uFFFDb\uFFFDc"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			w := newLineWriter(tt.max, func(s string) { got = append(got, s) })
			for _, s := range tt.writes {
				if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			w.Close()
			if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tt.want) {
				t.Errorf("lines = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTail(t *testing.T) {
	tests := []struct {
		name  string
		lines int
		want  string
	}{
		{"few", 3, "l0\nl1\nl2"},
		{"exactly full", tailLines, "l0\nl1\nl2\nl3\nl4\nl5\nl6\nl7\nl8\nl9\nl10\nl11\nl12\nl13\nl14\nl15\nl16\nl17\nl18\nl19"},
		{"wrapped", tailLines + 5, "l5\nl6\nl7\nl8\nl9\nl10\nl11\nl12\nl13\nl14\nl15\nl16\nl17\nl18\nl19\nl20\nl21\nl22\nl23\nl24"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tl tail
			for i := range tt.lines {
				tl.add(fmt.Sprintf("l%d", i))
				tl.add("   ") // blank lines say nothing
			}
			if got := tl.String(); got != tt.want {
				t.Errorf("tail = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTailCapsLongLines(t *testing.T) {
	var tl tail
	tl.add(strings.Repeat("é", tailLineCap))
	got := tl.String()
	if len(got) > tailLineCap+len("…") || !strings.HasSuffix(got, "…") {
		t.Errorf("kept %d bytes, want at most %d ending in …", len(got), tailLineCap+len("…"))
	}
}
