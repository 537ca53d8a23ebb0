package dockercli

import (
	"slices"
	"strings"
	"testing"
)

func TestLineWriter(t *testing.T) {
	long := strings.Repeat("x", MaxLine+10)
	tests := []struct {
		name     string
		writes   []string
		collapse bool
		want     []string
	}{
		{name: "lines", writes: []string{"a\nb\n"}, want: []string{"a", "b"}},
		{name: "split across writes", writes: []string{"he", "llo\nwor", "ld"}, want: []string{"hello", "world"}},
		{name: "crlf", writes: []string{"a\r\nb\r", "\n"}, want: []string{"a", "b"}},
		{name: "carriage return redraw", writes: []string{"10%\r20%\rdone\n"}, want: []string{"10%", "20%", "done"}},
		{name: "blank lines kept", writes: []string{"a\n\n\nb\n"}, want: []string{"a", "", "", "b"}},
		{name: "long line capped", writes: []string{long + "\nnext\n"}, want: []string{long[:MaxLine] + truncated, "next"}},
		{name: "long line over writes", writes: []string{long[:MaxLine-1], "yyyy", "zzz\nok"}, want: []string{long[:MaxLine-1] + "y" + truncated, "ok"}},
		{name: "cut inside a rune", writes: []string{long[:MaxLine-1] + "é\n"}, want: []string{long[:MaxLine-1] + truncated}},
		{name: "invalid utf-8 and NUL", writes: []string{"a\xffb\x00c\n"}, want: []string{"a\uFFFDb\uFFFDc"}},
		{name: "collapse repeats", collapse: true, writes: []string{"p 0\np 0\np 0\nq\np 0\n"}, want: []string{"p 0", "q", "p 0"}},
		{name: "no collapse by default", writes: []string{"p\np\n"}, want: []string{"p", "p"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			w := NewLineWriter(func(line string) { got = append(got, line) })
			w.Collapse = tt.collapse
			for _, s := range tt.writes {
				if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			w.Flush()
			if !slices.Equal(got, tt.want) {
				t.Errorf("lines:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestSubcommandHidesArguments(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"run", "-d", "-e", "SECRET=x", "img"}, "run"},
		{[]string{"service", "update", "--image", "x", "svc"}, "service update"},
		{[]string{"container", "inspect", "name"}, "container inspect"},
		{nil, ""},
	}
	for _, tt := range tests {
		if got := subcommand(tt.args); got != tt.want {
			t.Errorf("subcommand(%q) = %q, want %q", tt.args, got, tt.want)
		}
	}
}
