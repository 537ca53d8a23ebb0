package config

import (
	"encoding"
	"errors"
	"fmt"
	"io/fs"
	"reflect"
	"regexp"
	"strings"
	"syscall"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// FileError is a problem in the configuration file: where it is (line and column from 1, 0
// when unknown), the key path and the reason. It never carries the file's text: the YAML
// decoder's own messages print the lines around the problem, where the database password and
// the tokens sit, and some quote the value itself.
type FileError struct {
	File         string
	Line, Column int
	Path         string // like queue.lease or repositories[0].name; "" when the file does not parse
	Reason       string
}

func (e *FileError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, e.Column)
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Reason)
	return b.String()
}

// decodeFile reads the YAML file name over the values already in cfg (the defaults). A file
// that holds nothing (empty, comments only, a lone `---` or null) changes nothing.
func decodeFile(name string, data []byte, cfg *Config) error {
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		// The parser refuses a key given twice; parsed again without that check the tree
		// gives the key path, and which values are secret.
		if again, err2 := parser.ParseBytes(data, 0, parser.AllowDuplicateMapKey()); err2 == nil {
			e := fileError(name, documents(again), err)
			e.Reason = "key given twice"
			return e
		}
		return fileError(name, nil, err)
	}
	var body ast.Node
	for _, doc := range f.Docs {
		if doc.Body == nil || doc.Body.Type() == ast.NullType {
			continue
		}
		if body != nil {
			e := &FileError{File: name, Reason: "holds a second YAML document (---); the configuration is one"}
			e.Line, e.Column = position(doc.Start)
			if e.Line == 0 {
				e.Line, e.Column = position(doc.Body.GetToken())
			}
			return e
		}
		body = doc.Body
	}
	if body == nil {
		return nil
	}
	if at := fraction(body, reflect.TypeFor[Config]()); at != nil {
		// The decoder would truncate 1.5 to 1 without a word.
		e := &FileError{File: name, Reason: "must be an integer, not a number with a fraction"}
		e.Line, e.Column = position(at.GetToken())
		e.Path = keyPath(at)
		return e
	}
	if err := yaml.NodeToValue(body, cfg, yaml.Strict()); err != nil {
		return fileError(name, body, err)
	}
	return nil
}

// readProblem says why a config file cannot be read, in a few words.
func readProblem(err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "no such file"
	case errors.Is(err, fs.ErrPermission):
		return "permission denied"
	case errors.Is(err, syscall.EISDIR):
		return "is a directory, not a file"
	}
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		return pe.Err.Error()
	}
	return err.Error()
}

// fraction finds a number with a fraction given to an integer key under n, decoded into t.
func fraction(n ast.Node, t reflect.Type) ast.Node {
	n = unwrap(n)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n == nil || customDecoded(t) {
		return nil
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if n.Type() == ast.FloatType {
			return n
		}
	case reflect.Struct:
		for _, mv := range mappingValues(n) {
			if f, ok := fieldByKey(t, mv.Key); ok {
				if at := fraction(mv.Value, f.Type); at != nil {
					return at
				}
			}
		}
	case reflect.Slice:
		if seq, ok := n.(*ast.SequenceNode); ok {
			for _, v := range seq.Values {
				if at := fraction(v, t.Elem()); at != nil {
					return at
				}
			}
		}
	}
	return nil
}

func keyPath(n ast.Node) string {
	return strings.TrimPrefix(strings.TrimPrefix(n.GetPath(), "$"), ".")
}

// documents returns the body of the first document of f, nil when there is none.
func documents(f *ast.File) ast.Node {
	for _, doc := range f.Docs {
		if doc.Body != nil {
			return doc.Body
		}
	}
	return nil
}

// fileError turns an error of the YAML parser (body nil) or decoder into a FileError. With the
// tree at hand the values of secret keys are kept out of the message; without it (the file does
// not parse) every quoted text is.
func fileError(name string, body ast.Node, err error) *FileError {
	e := &FileError{File: name}
	var at ast.Node
	if yerr, ok := errors.AsType[yaml.Error](err); ok {
		e.Line, e.Column = position(yerr.GetToken())
		e.Reason = reason(yerr)
		if body != nil {
			at = nodeAt(body, yerr.GetToken())
		}
	} else {
		// Errors of UnmarshalText (durations) carry no position: find the value that fails alone.
		e.Reason = err.Error()
		if body != nil {
			if at = locate(body, reflect.TypeFor[Config](), e.Reason); at != nil {
				e.Line, e.Column = position(at.GetToken())
			}
		}
	}
	if at != nil {
		e.Path = keyPath(at)
		if e.Reason == notUnmarshaler {
			// Durations are the only keys of the file that decode from text.
			e.Reason = "must be a duration like 30s or 5m, not " + nodeKind(unwrap(at).Type())
		}
	}
	if body == nil {
		e.Reason = quoted.ReplaceAllString(e.Reason, `"…"`)
		return e
	}
	var secrets []string
	secretValues(body, reflect.TypeFor[Config](), &secrets)
	for _, s := range secrets {
		if len(s) < 4 {
			continue
		}
		if i := strings.Index(e.Path, s); i >= 0 {
			// A secret written as a key: the path ends above it.
			e.Path = strings.TrimRight(e.Path[:i], `."'[`)
		}
		e.Reason = strings.ReplaceAll(e.Reason, s, "[redacted]")
	}
	return e
}

var quoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)

// reason says what is wrong in the words of the file, never quoting a value the decoder would.
func reason(err yaml.Error) string {
	switch e := err.(type) {
	case *yaml.TypeError:
		return fmt.Sprintf("must be %s, not %s", yamlKind(e.DstType), yamlKind(e.SrcType))
	case *yaml.OverflowError:
		return fmt.Sprintf("is too large for %s", yamlKind(e.DstType))
	case *yaml.UnknownFieldError:
		return "unknown key"
	case *yaml.DuplicateKeyError:
		return "key given twice"
	case *yaml.UnexpectedNodeTypeError:
		return fmt.Sprintf("must be %s, not %s", nodeKind(e.Expected), nodeKind(e.Actual))
	default:
		return err.GetMessage()
	}
}

// notUnmarshaler is the decoder's message for a list or mapping given to a key that decodes
// from text.
const notUnmarshaler = "does not implemented Unmarshaler"

// nodeKind names a YAML node type as yamlKind names Go types.
func nodeKind(t ast.NodeType) string {
	switch t {
	case ast.NullType:
		return "null"
	case ast.BoolType:
		return "a boolean"
	case ast.IntegerType:
		return "an integer"
	case ast.FloatType, ast.InfinityType, ast.NanType:
		return "a number"
	case ast.StringType, ast.LiteralType:
		return "a string"
	case ast.MappingType, ast.MappingValueType:
		return "a mapping"
	case ast.SequenceType:
		return "a list"
	default:
		return "a " + t.YAMLName()
	}
}

// yamlKind names a Go type as a reader of the file knows it.
func yamlKind(t reflect.Type) string {
	if t == nil {
		return "a value"
	}
	if t.Implements(reflect.TypeFor[encoding.TextUnmarshaler]()) || reflect.PointerTo(t).Implements(reflect.TypeFor[encoding.TextUnmarshaler]()) {
		return "a string"
	}
	switch t.Kind() {
	case reflect.Pointer:
		return yamlKind(t.Elem())
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping"
	default:
		return "a value"
	}
}

func position(tk *token.Token) (line, column int) {
	if tk == nil || tk.Position == nil {
		return 0, 0
	}
	return tk.Position.Line, tk.Position.Column
}

// nodeAt finds the innermost node at tk's position, for its key path. (By position, not by
// token: the tree may come from a second parse.)
func nodeAt(body ast.Node, tk *token.Token) ast.Node {
	line, col := position(tk)
	if line == 0 {
		return nil
	}
	var found ast.Node
	walk(body, func(n ast.Node) {
		if l, c := position(n.GetToken()); l == line && c == col {
			found = n
		}
	})
	return found
}

// walk calls fn for every node under n, n first.
func walk(n ast.Node, fn func(ast.Node)) { ast.Walk(visitor(fn), n) }

type visitor func(ast.Node)

func (v visitor) Visit(n ast.Node) ast.Visitor {
	if n != nil {
		v(n)
	}
	return v
}

// locate finds the value under n, decoded into type t, that fails alone with the error text
// want: the position of an error that came without one.
func locate(n ast.Node, t reflect.Type, want string) ast.Node {
	n = unwrap(n)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if !customDecoded(t) {
		switch t.Kind() {
		case reflect.Struct:
			for _, mv := range mappingValues(n) {
				if f, ok := fieldByKey(t, mv.Key); ok {
					if at := locate(mv.Value, f.Type, want); at != nil {
						return at
					}
				}
			}
			return nil
		case reflect.Slice:
			if seq, ok := n.(*ast.SequenceNode); ok {
				for _, v := range seq.Values {
					if at := locate(v, t.Elem(), want); at != nil {
						return at
					}
				}
				return nil
			}
		}
	}
	if err := yaml.NodeToValue(n, reflect.New(t).Interface(), yaml.Strict()); err != nil && err.Error() == want {
		return n
	}
	return nil
}

// secretValues collects every scalar the file gives to keys of type Secret (keys written under
// them included), so that no message repeats one.
func secretValues(n ast.Node, t reflect.Type, out *[]string) {
	n = unwrap(n)
	if n == nil {
		return
	}
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t == reflect.TypeFor[Secret]() {
		walk(n, func(n ast.Node) {
			if s, ok := n.(ast.ScalarNode); ok {
				*out = append(*out, fmt.Sprint(s.GetValue()))
			}
		})
		return
	}
	if seq, ok := n.(*ast.SequenceNode); ok {
		for _, v := range seq.Values {
			secretValues(v, t, out)
		}
		return
	}
	if t.Kind() != reflect.Struct {
		return
	}
	for _, mv := range mappingValues(n) {
		if f, ok := fieldByKey(t, mv.Key); ok {
			secretValues(mv.Value, f.Type, out)
		}
	}
}

func unwrap(n ast.Node) ast.Node {
	for {
		switch v := n.(type) {
		case *ast.AnchorNode:
			n = v.Value
		case *ast.TagNode:
			n = v.Value
		default:
			return n
		}
	}
}

func mappingValues(n ast.Node) []*ast.MappingValueNode {
	switch m := n.(type) {
	case *ast.MappingNode:
		return m.Values
	case *ast.MappingValueNode:
		return []*ast.MappingValueNode{m}
	}
	return nil
}

// fieldByKey is the field of struct type t that the YAML key decodes into.
func fieldByKey(t reflect.Type, key ast.MapKeyNode) (reflect.StructField, bool) {
	name := key.GetToken().Value
	for i := range t.NumField() {
		f := t.Field(i)
		if tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); tag == name && f.IsExported() {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// customDecoded reports whether values of t decode themselves rather than field by field.
func customDecoded(t reflect.Type) bool {
	p := reflect.PointerTo(t)
	return p.Implements(reflect.TypeFor[encoding.TextUnmarshaler]()) ||
		p.Implements(reflect.TypeFor[yaml.BytesUnmarshaler]()) ||
		p.Implements(reflect.TypeFor[yaml.InterfaceUnmarshaler]())
}
