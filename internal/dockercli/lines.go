package dockercli

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
	"unicode/utf8"
)

// MaxLine bounds one logged line. A build step or a container that prints megabytes without a
// newline (a minified bundle, a base64 blob) would otherwise hold it all in memory and write it
// as one row of the log table.
const MaxLine = 16 << 10

// lineWriter splits what a process writes into lines and hands each one to emit. It keeps at most
// max bytes of the current line; the rest is counted and dropped. It is not safe for concurrent
// use: each output stream gets its own.
type lineWriter struct {
	emit     func(string)
	max      int
	collapse bool // drop a line identical to the one before it
	buf      []byte
	dropped  int // bytes of the current line beyond max
	last     string
	emitted  bool
}

func newLineWriter(max int, collapse bool, emit func(string)) *lineWriter {
	return &lineWriter{emit: emit, max: max, collapse: collapse}
}

func (w *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.add(p)
			break
		}
		w.add(p[:i])
		w.flush()
		p = p[i+1:]
	}
	return n, nil
}

func (w *lineWriter) add(seg []byte) {
	room := w.max - len(w.buf)
	if len(seg) > room {
		w.buf = append(w.buf, seg[:room]...)
		w.dropped += len(seg) - room
		return
	}
	w.buf = append(w.buf, seg...)
}

// flush emits the current line. Close calls it for output that does not end in a newline.
func (w *lineWriter) flush() {
	line := w.buf
	if w.dropped == 0 {
		// A progress line redrawn with "\r" (docker's "Sending build context") shows, as on a
		// terminal, what was written last.
		line = bytes.TrimRight(line, "\r")
		if i := bytes.LastIndexByte(line, '\r'); i >= 0 {
			line = line[i+1:]
		}
	} else {
		// Cut on a rune boundary, so the kept part stays valid UTF-8.
		for range utf8.UTFMax - 1 {
			if r, size := utf8.DecodeLastRune(line); r != utf8.RuneError || size != 1 {
				break
			}
			line = line[:len(line)-1]
		}
	}
	s := sanitize(string(line))
	if w.dropped > 0 {
		s += fmt.Sprintf("… [line truncated, %d bytes]", len(w.buf)+w.dropped)
	}
	w.buf, w.dropped = w.buf[:0], 0
	if w.collapse && w.emitted && s == w.last {
		return
	}
	w.last, w.emitted = s, true
	w.emit(s)
}

// Close emits a last line that had no newline.
func (w *lineWriter) Close() error {
	if len(w.buf) > 0 || w.dropped > 0 {
		w.flush()
	}
	return nil
}

// sanitize makes a line storable as PostgreSQL text: valid UTF-8 and no NUL bytes.
func sanitize(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}

// tail keeps the last few non-blank lines of output for an error message: the full output is in
// the logs, the error says why in a few lines.
type tail struct {
	mu    sync.Mutex
	lines []string
	n     int
}

const (
	tailLines   = 20
	tailLineCap = 512
)

func (t *tail) add(line string) {
	if strings.TrimSpace(line) == "" {
		return
	}
	if len(line) > tailLineCap {
		cut := tailLineCap
		for cut > 0 && !utf8.RuneStart(line[cut]) {
			cut--
		}
		line = line[:cut] + "…"
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.lines) < tailLines {
		t.lines = append(t.lines, line)
	} else {
		t.lines[t.n%tailLines] = line
	}
	t.n++
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.lines) < tailLines {
		return strings.Join(t.lines, "\n")
	}
	ordered := append(append([]string(nil), t.lines[t.n%tailLines:]...), t.lines[:t.n%tailLines]...)
	return strings.Join(ordered, "\n")
}

// LineWriter returns a writer that splits what is written into lines of at most MaxLine bytes,
// storable as PostgreSQL text, and hands each to emit; Close emits a last unterminated line. It is
// for output read through the Engine API (a container's logs), which arrives as a byte stream too.
func LineWriter(emit func(string)) io.WriteCloser { return newLineWriter(MaxLine, false, emit) }

// Stream is the LogFunc stream the targets write their account of a rollout to.
const Stream = "deploy"
