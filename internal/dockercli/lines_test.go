package dockercli

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestLineWriter(t *testing.T) {
	long := strings.Repeat("x", 40)
	full := strings.Repeat("x", MaxLine+10)
	cut := func(n int) string { return fmt.Sprintf("… [line truncated, %d bytes]", n) }
	tests := []struct {
		name     string
		max      int
		collapse bool
		writes   []string
		want     []string
	}{
		{name: "one line", max: 64, writes: []string{"hello\n"}, want: []string{"hello"}},
		{name: "lines", writes: []string{"a\nb\n"}, want: []string{"a", "b"}},
		{name: "split across writes", max: 64, writes: []string{"hel", "lo\nwor", "ld\n"}, want: []string{"hello", "world"}},
		{name: "no final newline", max: 64, writes: []string{"a\nb"}, want: []string{"a", "b"}},
		{name: "crlf", max: 64, writes: []string{"a\r\n"}, want: []string{"a"}},
		{name: "crlf across writes", writes: []string{"a\r\nb\r", "\n"}, want: []string{"a", "b"}},
		{name: "progress redrawn", max: 64, writes: []string{"Sending 1kB\rSending 2kB\r\r\n"}, want: []string{"Sending 2kB"}},
		// A redrawn line shows what was drawn last, whoever draws it.
		{name: "carriage return redraw", writes: []string{"10%\r20%\rdone\n"}, want: []string{"done"}},
		{name: "empty lines kept", max: 64, writes: []string{"\n\n"}, want: []string{"", ""}},
		{name: "blank lines kept", writes: []string{"a\n\n\nb\n"}, want: []string{"a", "", "", "b"}},
		{name: "long line cut", max: 10, writes: []string{long + "\nnext\n"},
			want: []string{"xxxxxxxxxx" + cut(40), "next"}},
		{name: "long line over many writes", max: 10, writes: []string{long[:15], long[15:], "\n"},
			want: []string{"xxxxxxxxxx" + cut(40)}},
		{name: "cut inside a rune", max: 10, writes: []string{"aaaaaaaaa€€\n"},
			want: []string{"aaaaaaaaa" + cut(15)}},
		{name: "cut inside a rune after whole ones", max: 10, writes: []string{"€€€€\n"},
			want: []string{"€€€" + cut(12)}},
		{name: "long line capped at MaxLine", writes: []string{full + "\nnext\n"},
			want: []string{full[:MaxLine] + cut(MaxLine+10), "next"}},
		{name: "MaxLine over writes", writes: []string{full[:MaxLine-1], "yyyy", "zzz\nok"},
			want: []string{full[:MaxLine-1] + "y" + cut(MaxLine+6), "ok"}},
		{name: "MaxLine inside a rune", writes: []string{full[:MaxLine-1] + "é\n"},
			want: []string{full[:MaxLine-1] + cut(MaxLine+1)}},
		{name: "invalid utf-8 and NUL", max: 64, writes: []string{"a\xffb\x00c\n"}, want: []string{"a\uFFFDb\uFFFDc"}},
		{name: "collapse repeats", collapse: true, writes: []string{"p 0\np 0\np 0\nq\np 0\n"}, want: []string{"p 0", "q", "p 0"}},
		{name: "no collapse by default", writes: []string{"p\np\n"}, want: []string{"p", "p"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			w := newLineWriter(cmp.Or(tt.max, MaxLine), tt.collapse, func(s string) { got = append(got, s) })
			for _, s := range tt.writes {
				if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			w.Close()
			if !slices.Equal(got, tt.want) {
				t.Errorf("lines:\n got %q\nwant %q", got, tt.want)
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
