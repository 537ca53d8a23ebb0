package pipeline

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/ast"
	"github.com/slipway-dev/slipway/internal/typo"
)

// position is a 1-based line and column in the source.
type position struct{ Line, Column int }

// decoder turns the YAML tree into a File by hand rather than through yaml.Unmarshal: that way
// every node's position is at hand for error messages, every problem is collected instead of the
// first, and anchors, aliases and tags can be refused where they stand.
type decoder struct {
	errs ErrorList
	// pos maps a key path to where its value is (or, for a mapping value, where its key is, the
	// line a reader looks at for "this environment is missing ...").
	pos map[string]position
}

func nodePos(n ast.Node) position {
	if n == nil {
		return position{}
	}
	tk := n.GetToken()
	if tk == nil || tk.Position == nil {
		return position{}
	}
	return position{tk.Position.Line, tk.Position.Column}
}

func (d *decoder) errorf(at position, path, format string, args ...any) {
	d.errs = append(d.errs, &Error{Line: at.Line, Column: at.Column, Path: path, Msg: fmt.Sprintf(format, args...), subject: path})
}

// lookup finds the position of path or of its nearest recorded ancestor.
func (d *decoder) lookup(path string) position {
	for {
		if p, ok := d.pos[path]; ok {
			return p
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return d.pos[""]
		}
		path = path[:i]
	}
}

var bareKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// child is the path of key under parent; odd keys are quoted so the path stays unambiguous.
func child(parent, key string) string {
	if !bareKey.MatchString(key) {
		key = strconv.Quote(key)
	}
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func index(parent string, i int) string {
	return fmt.Sprintf("%s[%d]", parent, i)
}

// entry is one key of a mapping.
type entry struct {
	key   string
	path  string
	at    position // the key's position
	value ast.Node
}

// unsupported reports YAML features the file format refuses, and whether n is one of them.
func (d *decoder) unsupported(n ast.Node, path string) bool {
	switch n.(type) {
	case *ast.AnchorNode:
		d.errorf(nodePos(n), path, "YAML anchors (&name) are not supported")
	case *ast.AliasNode:
		d.errorf(nodePos(n), path, "YAML aliases (*name) are not supported")
	case *ast.TagNode:
		d.errorf(nodePos(n), path, "YAML tags (!tag) are not supported")
	case *ast.MergeKeyNode:
		d.errorf(nodePos(n), path, "YAML merge keys (<<) are not supported")
	default:
		return false
	}
	return true
}

// mapping returns the entries of a mapping node, reporting duplicate and non-scalar keys. ok is
// false when n is not a mapping at all.
func (d *decoder) mapping(n ast.Node, path string) (entries []entry, ok bool) {
	if d.unsupported(n, path) {
		return nil, false
	}
	var values []*ast.MappingValueNode
	switch m := n.(type) {
	case *ast.MappingNode:
		values = m.Values
	case *ast.MappingValueNode:
		values = []*ast.MappingValueNode{m}
	default:
		d.errorf(nodePos(n), path, "must be a mapping, not %s", describe(n))
		return nil, false
	}
	seen := map[string]position{}
	for _, mv := range values {
		key, at, ok := d.key(mv.Key, path)
		if !ok {
			continue
		}
		p := child(path, key)
		if first, dup := seen[key]; dup {
			d.errorf(at, p, "duplicate key (first defined on line %d)", first.Line)
			continue
		}
		seen[key] = at
		entries = append(entries, entry{key: key, path: p, at: at, value: mv.Value})
	}
	return entries, true
}

func (d *decoder) key(k ast.MapKeyNode, parent string) (string, position, bool) {
	var n ast.Node = k
	if mk, ok := k.(*ast.MappingKeyNode); ok { // explicit "? key"
		n = mk.Value
	}
	at := nodePos(n)
	if n == nil || d.unsupported(n, parent) {
		return "", at, false
	}
	s, ok := scalarText(n)
	if !ok {
		d.errorf(at, parent, "keys must be plain strings, not %s", describe(n))
		return "", at, false
	}
	return s, at, true
}

// fields checks entries against the keys a mapping allows and records positions; it returns the
// known entries by key.
func (d *decoder) fields(entries []entry, allowed ...string) map[string]entry {
	known := make(map[string]entry, len(entries))
	for _, e := range entries {
		if !slices.Contains(allowed, e.key) {
			msg := "unknown key"
			if s := typo.Closest(e.key, allowed, 2); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			} else {
				msg += fmt.Sprintf(" (allowed: %s)", strings.Join(allowed, ", "))
			}
			d.errorf(e.at, e.path, "%s", msg)
			continue
		}
		d.record(e)
		known[e.key] = e
	}
	return known
}

// record remembers where an entry is: its value for scalars and lists, its key for mappings.
func (d *decoder) record(e entry) {
	switch e.value.(type) {
	case *ast.MappingNode, *ast.MappingValueNode, nil:
		d.pos[e.path] = e.at
	default:
		d.pos[e.path] = nodePos(e.value)
	}
}

// str decodes a string value. Numbers and booleans are refused: "1.20" written bare would become
// 1.2, and a branch called 2024 should be quoted to be unambiguous.
func (d *decoder) str(n ast.Node, path string) (string, bool) {
	if d.unsupported(n, path) {
		return "", false
	}
	var s string
	switch v := n.(type) {
	case *ast.StringNode:
		s = v.Value
	case *ast.LiteralNode:
		s = v.Value.Value
	default:
		d.errorf(nodePos(n), path, "must be a string, not %s%s", describe(n), quoteHint(n))
		return "", false
	}
	if s == "" {
		d.errorf(nodePos(n), path, "must not be empty")
		return "", false
	}
	return s, true
}

// value decodes a scalar whose text is what matters (an environment variable, a build argument,
// a command argument), keeping numbers as written: 1.20 stays "1.20".
func (d *decoder) value(n ast.Node, path string) (string, bool) {
	if d.unsupported(n, path) {
		return "", false
	}
	s, ok := scalarText(n)
	if !ok {
		d.errorf(nodePos(n), path, "must be a string, number or boolean, not %s", describe(n))
		return "", false
	}
	return s, true
}

// sequence returns the items of a list.
func (d *decoder) sequence(n ast.Node, path string) ([]ast.Node, bool) {
	if d.unsupported(n, path) {
		return nil, false
	}
	seq, ok := n.(*ast.SequenceNode)
	if !ok {
		d.errorf(nodePos(n), path, "must be a list, not %s", describe(n))
		return nil, false
	}
	for i, item := range seq.Values {
		d.pos[index(path, i)] = nodePos(item)
	}
	return seq.Values, true
}

// strings decodes a list of strings.
func (d *decoder) strings(n ast.Node, path string) ([]string, bool) {
	items, ok := d.sequence(n, path)
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(items))
	ok = true
	for i, item := range items {
		// A broken item keeps its place (as ""), so later indices still match the source.
		s, good := d.str(item, index(path, i))
		out = append(out, s)
		ok = ok && good
	}
	return out, ok
}

// values decodes a list of scalars kept as written.
func (d *decoder) values(n ast.Node, path string) ([]string, bool) {
	items, ok := d.sequence(n, path)
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(items))
	ok = true
	for i, item := range items {
		s, good := d.value(item, index(path, i))
		out = append(out, s)
		ok = ok && good
	}
	return out, ok
}

// stringMap decodes a mapping of names to scalars kept as written.
func (d *decoder) stringMap(n ast.Node, path string) (map[string]string, bool) {
	entries, ok := d.mapping(n, path)
	if !ok {
		return nil, false
	}
	out := make(map[string]string, len(entries))
	for _, e := range entries {
		d.record(e)
		if s, ok := d.value(e.value, e.path); ok {
			out[e.key] = s
		}
	}
	return out, true
}

// scalarText is a scalar's text: the decoded value for strings, the source text otherwise.
func scalarText(n ast.Node) (string, bool) {
	switch v := n.(type) {
	case *ast.StringNode:
		return v.Value, true
	case *ast.LiteralNode:
		return v.Value.Value, true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode:
		return v.GetToken().Value, true
	}
	return "", false
}

func describe(n ast.Node) string {
	switch v := n.(type) {
	case nil, *ast.NullNode:
		return "null (is a value missing?)"
	case *ast.StringNode, *ast.LiteralNode:
		return "a string"
	case *ast.IntegerNode:
		return "a number"
	case *ast.FloatNode:
		return "a number"
	case *ast.InfinityNode, *ast.NanNode:
		return "a special float (.inf or .nan; quote it for a string)"
	case *ast.BoolNode:
		return "a boolean"
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	default:
		return v.Type().String()
	}
}

// quoteHint helps with the classic YAML surprises: unquoted numbers, booleans and "8080:80"
// inside [...], which goccy/go-yaml reads as a mapping.
func quoteHint(n ast.Node) string {
	switch v := n.(type) {
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode:
		return fmt.Sprintf(` (quote it: "%s")`, v.GetToken().Value)
	case *ast.MappingNode:
		if len(v.Values) == 1 {
			return quoteHint(v.Values[0])
		}
	case *ast.MappingValueNode:
		_, isNull := v.Value.(*ast.NullNode)
		if v.Key != nil && v.Key.GetToken() != nil && v.Value != nil && v.Value.GetToken() != nil && !isNull {
			return fmt.Sprintf(` (quote it: "%s:%s")`, v.Key.GetToken().Value, v.Value.GetToken().Value)
		}
	}
	return ""
}
