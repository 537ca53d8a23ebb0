package pipeline

import (
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// hostileFile is a pipeline file built to hurt the server, and what Parse's error must say.
type hostileFile struct {
	name string
	data string
	want string
}

func hostileFiles() []hostileFile {
	repeatLines := func(n int, line func(i int) string) string {
		var b strings.Builder
		for i := range n {
			b.WriteString(line(i))
		}
		return b.String()
	}
	return []hostileFile{
		{"billion laughs", `services:
  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
  b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
  c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
  d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
  e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
  f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
  g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
  h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
  i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
`, "YAML anchors"},
		{"alias to a mapping, many times", "services:\n  a: &a {image: x/a, environments: {p: {branch: main, swarm: {service: a}}}}\n" +
			repeatLines(150, func(i int) string { return "  s" + strconv.Itoa(i) + ": *a\n" }), "YAML aliases"},
		{"self-referencing alias", "services: &a\n  a: *a\n", "YAML anchors"},
		{"deep flow nesting", "services: " + strings.Repeat("[", 10000) + strings.Repeat("]", 10000), "more than 64 nested"},
		{"deep flow nesting over the token limit", "services: " + strings.Repeat("[", 100000) + strings.Repeat("]", 100000), "YAML tokens"},
		{"deep flow mapping nesting", "services: " + strings.Repeat("{a: ", 5000) + "1" + strings.Repeat("}", 5000), "more than 64 nested"},
		{"deep block nesting", "services:\n" + repeatLines(1400, func(i int) string { return strings.Repeat(" ", i+1) + "a:\n" }), "services.a.a: unknown key"},
		{"huge block mapping", "services:\n" + repeatLines(20000, func(i int) string { return "  s" + strconv.Itoa(i) + ": x\n" }), "more than 1000 lines at one indentation level"},
		{"many block mappings at the limit", "services:\n" + repeatLines(16, func(j int) string {
			return "  s" + strconv.Itoa(j) + ":\n    build_args:\n" + repeatLines(999, func(i int) string { return "      K" + strconv.Itoa(i) + ": v\n" })
		}), "build_args: 999 entries; the limit is 200"},
		{"huge flow mapping", "services: {" + repeatLines(20000, func(i int) string { return "s" + strconv.Itoa(i) + ": x," }) + "}", "YAML tokens"},
		{"flow mapping under the token limit", "services: {" + repeatLines(12000, func(i int) string { return "s" + strconv.Itoa(i) + ": x," }) + "}", "12000 services; the limit is 200"},
		{"many documents", strings.Repeat("---\nservices: {}\n", 400), "only one YAML document"},
		{"very long scalar", "services:\n  a:\n    image: x/" + strings.Repeat("a", MaxFileSize-100) + "\n", "image reference is longer than 255 bytes"},
		{"very long key", "services:\n  " + strings.Repeat("k", MaxFileSize-100) + ": {}\n", "service name must match"},
		{"very long branch", "services:\n  a: {image: x/a, environments: {p: {branch: " + strings.Repeat("b", 10000) + ", swarm: {service: a}}}}\n", "longer than 255"},
		{"long line of aliases", "a: &a x\nb: [" + strings.Repeat("*a,", 100000) + "]\n", "YAML tokens"},
		{"invalid UTF-8 in a key", "services:\n  \xc3\x28: {}\n", "2:3: invalid UTF-8"},
		{"overlong UTF-8 encoding of /", "services:\n  a: {image: x/a, dockerfile: \"..\xc0\xafetc\"}\n", "invalid UTF-8"},
		{"raw NUL byte", "services:\n  a\x00: {}\n", "character U+0000 is not allowed"},
		{"escaped NUL", "services:\n  a: {image: x/a, context: \"a\\x00b\", environments: {p: {branch: main, swarm: {service: a}}}}\n", "must not contain NUL"},
		{"dockerfile escaping the repository", "services:\n  a: {image: x/a, dockerfile: ../../etc/passwd, environments: {p: {branch: main, swarm: {service: a}}}}\n", "must stay inside the repository"},
		{"right-to-left override in a path", "services:\n  a: {image: x/a, context: \"a\u202eb\", environments: {p: {branch: main, swarm: {service: a}}}}\n", "character U+202E is not allowed"},
		{"invisible character in a path", "services:\n  a: {image: x/a, context: \"a\u200bb\", environments: {p: {branch: main, swarm: {service: a}}}}\n", "invisible formatting characters"},
		{"too big", strings.Repeat("#", MaxFileSize+1), "the limit is"},
	}
}

// TestHostileInputs: files built to hurt the server are refused cheaply, with a message. What an
// exponential or quadratic blow-up costs is minutes and gigabytes; the bounds are on the work it
// does, counted as heap allocations, which a busy machine or the race detector leave unchanged
// (a wall-clock bound did not). The count must stay linear in the input; the bytes may not, since
// goccy/go-yaml allocates quadratically in the keys of one block mapping (see checkSiblings), but
// must stay far below what a blow-up takes. BenchmarkParseHostile has the timings.
func TestHostileInputs(t *testing.T) {
	for _, tt := range hostileFiles() {
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			f, err := Parse(".slipway.yml", []byte(tt.data))
			runtime.ReadMemStats(&after)
			if err == nil {
				t.Fatalf("Parse accepted it: %+v", f)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error does not mention %q:\n%.1000s", tt.want, err)
			}
			mallocs, bytes := after.Mallocs-before.Mallocs, after.TotalAlloc-before.TotalAlloc
			if limit := 16*uint64(len(tt.data)) + 50_000; mallocs > limit {
				t.Errorf("%d allocations for %d bytes of input; the limit is %d", mallocs, len(tt.data), limit)
			}
			if bytes > 512<<20 {
				t.Errorf("allocated %d MiB", bytes>>20)
			}
		})
	}
}

// BenchmarkParseHostile times what TestHostileInputs bounds (with -benchmem, the allocations too).
func BenchmarkParseHostile(b *testing.B) {
	for _, tt := range hostileFiles() {
		b.Run(tt.name, func(b *testing.B) {
			data := []byte(tt.data)
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := Parse(".slipway.yml", data); err == nil {
					b.Fatal("Parse accepted it")
				}
			}
		})
	}
}
