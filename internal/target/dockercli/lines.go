package dockercli

import (
	"strings"
	"unicode/utf8"
)

// MaxLine is the longest line, in bytes, handed to a LogFunc; the rest of a longer line is dropped
// and marked, so one runaway line (a minified file echoed by a container) cannot fill the log.
const MaxLine = 4096

const truncated = " …[line truncated]"

// LineWriter is an io.Writer that hands each complete line to a function, with line endings
// removed, longer lines capped at MaxLine, invalid UTF-8 and NUL bytes (which PostgreSQL text
// rejects) replaced. Both \n and \r end a line, since docker redraws progress with \r.
// It is not safe for concurrent use: give each output stream its own.
type LineWriter struct {
	// Collapse drops a line identical to the one before it.
	Collapse bool

	emit    func(string)
	buf     []byte
	skip    bool // the current line overflowed: drop bytes until its end
	afterCR bool // the last line ended with \r
	last    string
	emitted bool
}

// NewLineWriter returns a LineWriter calling emit for each line.
func NewLineWriter(emit func(line string)) *LineWriter {
	return &LineWriter{emit: emit}
}

func (w *LineWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := indexEOL(p)
		if i < 0 {
			w.add(p)
			break
		}
		w.add(p[:i])
		w.end(p[i])
		p = p[i+1:]
	}
	return n, nil
}

// Flush emits a last line that had no line ending.
func (w *LineWriter) Flush() {
	if len(w.buf) > 0 || w.skip {
		w.end('\n')
	}
}

func (w *LineWriter) add(p []byte) {
	if w.skip {
		return
	}
	if room := MaxLine - len(w.buf); len(p) > room {
		w.buf = append(w.buf, p[:room]...)
		w.skip = true
		return
	}
	w.buf = append(w.buf, p...)
}

func (w *LineWriter) end(eol byte) {
	empty := len(w.buf) == 0 && !w.skip
	line := clean(w.buf, w.skip)
	w.buf, w.skip = w.buf[:0], false
	afterCR := w.afterCR
	w.afterCR = eol == '\r'
	// The \n of a \r\n ending is not a line of its own.
	if empty && eol == '\n' && afterCR {
		return
	}
	if w.Collapse && w.emitted && line == w.last {
		return
	}
	w.last, w.emitted = line, true
	w.emit(line)
}

func clean(b []byte, cut bool) string {
	s := string(b)
	if cut {
		// Do not leave half a UTF-8 sequence at the cut.
		for range utf8.UTFMax - 1 {
			if r, size := utf8.DecodeLastRuneInString(s); r != utf8.RuneError || size != 1 {
				break
			}
			s = s[:len(s)-1]
		}
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	if cut {
		s += truncated
	}
	return s
}

func indexEOL(p []byte) int {
	for i, c := range p {
		if c == '\n' || c == '\r' {
			return i
		}
	}
	return -1
}
