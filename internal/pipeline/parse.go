package pipeline

import (
	"bytes"
	"cmp"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/lexer"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// Parse reads a pipeline file. filename is used in error messages only. On failure the error is an
// ErrorList of every problem found (up to a limit), each naming line, column and key path.
func Parse(filename string, data []byte) (*File, error) {
	if len(data) > MaxFileSize {
		return nil, ErrorList{{File: filename, Msg: fmt.Sprintf("file is %d bytes; the limit is %d", len(data), MaxFileSize)}}
	}
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	if e := cmp.Or(checkText(data), checkSiblings(data)); e != nil {
		e.File = filename
		return nil, ErrorList{e}
	}
	doc, e := parseYAML(data)
	if e != nil {
		e.File = filename
		return nil, ErrorList{e}
	}

	d := &decoder{pos: map[string]position{}}
	f := d.file(doc)
	errs := append(d.errs, followUps(validateFile(f), d.errs)...)
	if len(errs) == 0 {
		f.normalize()
		f.name, f.pos = filename, d.pos
		return f, nil
	}
	for _, e := range errs {
		e.File = filename
		if e.Line == 0 {
			// Point at the key the problem is about if it is in the file ("environments: {}"),
			// else at the nearest enclosing key.
			p, ok := d.pos[e.subject]
			if !ok {
				p = d.lookup(e.Path)
			}
			e.Line, e.Column = p.Line, p.Column
		}
	}
	errs.sortByPosition()
	return nil, errs.truncate(filename)
}

// checkText rejects what no pipeline file needs and what confuses positions, readers or downstream
// tools: invalid UTF-8, control characters other than tab and line breaks (YAML forbids them
// too), and bidirectional overrides.
func checkText(data []byte) *Error {
	line, col := 1, 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			return &Error{Line: line, Column: col, Msg: fmt.Sprintf("invalid UTF-8 (byte 0x%02x)", data[i])}
		case r == '\n':
			line, col = line+1, 0
		case r == '\t' || r == '\r':
		case unicode.IsControl(r) || isBidiControl(r) || r == '\ufeff' || r == '\ufffe' || r == '\uffff':
			return &Error{Line: line, Column: col, Msg: fmt.Sprintf("character %U is not allowed", r)}
		}
		i += size
		col++
	}
	return nil
}

// checkSiblings bounds the lines at one indentation level under one parent, which bounds the keys
// of a block mapping: goccy/go-yaml parses those recursively, one stack frame per key, and in time
// and garbage quadratic in their number (16,000 keys: 1.5 s and 1 GB allocated). Blank and
// comment lines do not count.
func checkSiblings(data []byte) *Error {
	type level struct{ indent, lines int }
	var stack []level
	for i, line := range bytes.Split(data, []byte("\n")) {
		text := bytes.TrimLeft(line, " ")
		if t := bytes.TrimSpace(text); len(t) == 0 || t[0] == '#' {
			continue
		}
		indent := len(line) - len(text)
		for len(stack) > 0 && stack[len(stack)-1].indent > indent {
			stack = stack[:len(stack)-1]
		}
		if len(stack) == 0 || stack[len(stack)-1].indent < indent {
			stack = append(stack, level{indent: indent})
		}
		top := &stack[len(stack)-1]
		top.lines++
		if top.lines > maxSiblingLines {
			return &Error{Line: i + 1, Column: indent + 1,
				Msg: fmt.Sprintf("more than %d lines at one indentation level; a pipeline file needs far fewer", maxSiblingLines)}
		}
	}
	return nil
}

// isBidiControl reports the explicit direction overrides and isolates: they make text display in
// an order other than the one it is parsed in ("Trojan Source"), so a reviewer could read a
// different path or branch than the server uses.
func isBidiControl(r rune) bool {
	return (r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069')
}

// parseYAML returns the single document's body. It bounds the token count and flow nesting before
// parsing (see maxTokens), and parses with duplicate keys allowed so that the decoder can report
// them with their key path instead of stopping at the first.
func parseYAML(data []byte) (ast.Node, *Error) {
	tokens, err := protect(func() (token.Tokens, error) { return lexer.Tokenize(string(data)), nil })
	if err != nil {
		return nil, &Error{Msg: err.Error()}
	}
	if len(tokens) > maxTokens {
		return nil, &Error{Msg: fmt.Sprintf("file has more than %d YAML tokens; a pipeline file needs far fewer", maxTokens)}
	}
	depth := 0
	for _, tk := range tokens {
		switch tk.Type {
		case token.SequenceStartType, token.MappingStartType:
			depth++
			if depth > maxFlowDepth {
				return nil, &Error{Line: tk.Position.Line, Column: tk.Position.Column,
					Msg: fmt.Sprintf("more than %d nested [ or {", maxFlowDepth)}
			}
		case token.SequenceEndType, token.MappingEndType:
			depth--
		}
	}
	f, err := protect(func() (*ast.File, error) {
		return parser.Parse(tokens, 0, parser.AllowDuplicateMapKey())
	})
	if err != nil {
		e := &Error{Msg: err.Error()}
		if ye, ok := err.(interface {
			GetToken() *token.Token
			GetMessage() string
		}); ok {
			e.Msg = "invalid YAML: " + ye.GetMessage()
			if tk := ye.GetToken(); tk != nil {
				e.Line, e.Column = tk.Position.Line, tk.Position.Column
			}
		}
		return nil, e
	}
	var body ast.Node
	for _, doc := range f.Docs {
		if doc == nil || doc.Body == nil {
			continue
		}
		if _, ok := doc.Body.(*ast.CommentGroupNode); ok {
			continue
		}
		if body != nil {
			p := nodePos(doc.Body)
			return nil, &Error{Line: p.Line, Column: p.Column, Msg: "only one YAML document is allowed"}
		}
		body = doc.Body
	}
	if body == nil {
		return nil, &Error{Line: 1, Column: 1, Msg: "file is empty; it must define services"}
	}
	return body, nil
}

// protect turns a panic in the YAML library into an error: the input is untrusted, and a worker
// must survive whatever a repository holds.
func protect[T any](f func() (T, error)) (v T, err error) {
	defer func() {
		if r := recover(); r != nil {
			var zero T
			v, err = zero, fmt.Errorf("invalid YAML: the YAML library failed: %v", r)
		}
	}()
	return f()
}

// followUps drops the validation problems that follow from a problem the decoder reported: a
// branch written as a number is one mistake, not also a missing branch.
func followUps(errs, reported ErrorList) ErrorList {
	bad := make(map[string]bool, len(reported))
	for _, r := range reported {
		bad[r.Path] = true
	}
	var out ErrorList
	for _, e := range errs {
		if !under(e.subject, bad) {
			out = append(out, e)
		}
	}
	return out
}

// under reports whether path p or one of its ancestors is in bad.
func under(p string, bad map[string]bool) bool {
	for {
		if bad[p] {
			return true
		}
		if p == "" {
			return false
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			p = ""
		} else {
			p = p[:i]
		}
	}
}
