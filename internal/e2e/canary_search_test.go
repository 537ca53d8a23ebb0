package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// canarySource is one place searched: what it is, and its bytes.
type canarySource struct {
	label string
	data  []byte
}

// canaryNeedle is one form a canary can take: its random part as written, or the value inside
// base64 (three alignments, two alphabets), as in a Docker config, an X-Registry-Auth header or an
// HTTP Basic header.
type canaryNeedle struct {
	canary int
	form   string
	text   []byte
}

type canaryMasker struct {
	canaries []canary
	needles  []canaryNeedle
}

func newCanaryMasker(cs []canary) *canaryMasker {
	m := &canaryMasker{canaries: cs}
	for i, c := range cs {
		// The random part alone also finds a value cut short or with its prefix changed.
		m.needles = append(m.needles, canaryNeedle{i, "value", []byte(c.value[strings.LastIndexByte(c.value, '-')+1:])})
		seen := map[string]bool{}
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
			for off := range 3 {
				// Encoded after off other bytes, the characters made of the value's bytes alone.
				s := enc.EncodeToString(append(make([]byte, off), c.value...))
				first, last := (off+2)/3, (off+len(c.value))/3
				if b64 := s[4*first : 4*last]; !seen[b64] {
					seen[b64] = true
					m.needles = append(m.needles, canaryNeedle{i, "base64", []byte(b64)})
				}
			}
		}
	}
	return m
}

func (c *canaryRig) masker() *canaryMasker { return newCanaryMasker(c.s.list()) }

// mask replaces every canary in b with its name.
func (m *canaryMasker) mask(b []byte) []byte {
	for i, c := range m.canaries {
		b = bytes.ReplaceAll(b, []byte(c.value), []byte(m.label(canaryNeedle{canary: i, form: "value"})))
	}
	for _, n := range m.needles {
		b = bytes.ReplaceAll(b, n.text, []byte(m.label(n)))
	}
	return b
}

func (m *canaryMasker) label(n canaryNeedle) string {
	if n.form == "base64" {
		return "[base64 of canary " + m.canaries[n.canary].name + "]"
	}
	return "[canary " + m.canaries[n.canary].name + "]"
}

// canaryHit is every occurrence of one canary in one place.
type canaryHit struct {
	canary, source string
	count          int
	context        string // around the first, every canary masked
}

// search looks for every form of every canary in every source.
func (m *canaryMasker) search(sources []canarySource) []canaryHit {
	var hits []canaryHit
	for _, src := range sources {
		byCanary := map[int]*canaryHit{}
		for _, n := range m.needles {
			for at := 0; ; {
				i := bytes.Index(src.data[at:], n.text)
				if i < 0 {
					break
				}
				i += at
				at = i + len(n.text)
				h := byCanary[n.canary]
				if h == nil {
					h = &canaryHit{canary: m.canaries[n.canary].name, source: src.label, context: m.context(src.data, i, n)}
					byCanary[n.canary] = h
				}
				h.count++
			}
		}
		for _, i := range slices.Sorted(maps.Keys(byCanary)) {
			hits = append(hits, *byCanary[i])
		}
	}
	return hits
}

// context is the text around the needle at i, every canary in it masked, quoted. It masks a wide
// window and keeps its middle, so that no part of a canary cut by the window's edge shows.
func (m *canaryMasker) context(data []byte, i int, n canaryNeedle) string {
	const wide, keep = 400, 60
	before := m.mask(bytes.Clone(data[max(0, i-wide):i]))
	after := m.mask(bytes.Clone(data[i+len(n.text) : min(len(data), i+len(n.text)+wide)]))
	before, after = before[max(0, len(before)-keep):], after[:min(len(after), keep)]
	return strconv.Quote(string(before) + m.label(n) + string(after))
}

// call makes one HTTP request to the server and keeps the answer (status, headers, body) to be
// searched. A request that gets no answer returns 0.
func (c *canaryRig) call(label, method, path, token string, header http.Header, body []byte) (int, []byte) {
	req, err := http.NewRequest(method, c.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Errorf("%s: reading the answer: %v", label, err)
	}
	var all bytes.Buffer
	fmt.Fprintf(&all, "%s\n", resp.Status)
	_ = resp.Header.Write(&all)
	all.Write(raw)
	c.responses = append(c.responses, canarySource{"HTTP answer to " + label, all.Bytes()})
	return resp.StatusCode, raw
}

// canaryChild is one recorded docker or git child.
type canaryChild struct {
	kind string // docker or git
	file string
	argv []string
	env  []string
}

func (c *canaryRig) children() []canaryChild {
	c.t.Helper()
	entries, err := os.ReadDir(c.recordDir)
	if err != nil {
		c.t.Fatal(err)
	}
	var out []canaryChild
	for _, e := range entries {
		name := e.Name()
		if strings.HasSuffix(name, ".env") {
			continue
		}
		argv, err1 := os.ReadFile(filepath.Join(c.recordDir, name))
		env, err2 := os.ReadFile(filepath.Join(c.recordDir, name+".env"))
		if err1 != nil || err2 != nil {
			c.t.Fatalf("reading the record of child %s: %v %v", name, err1, err2)
		}
		kind, _, _ := strings.Cut(name, ".")
		out = append(out, canaryChild{kind: kind, file: name,
			argv: strings.Split(strings.TrimSuffix(string(argv), "\x00"), "\x00"),
			env:  strings.Split(strings.TrimSuffix(string(env), "\x00"), "\x00")})
	}
	return out
}

var gitAuthHeader = regexp.MustCompile(`^(GIT_CONFIG_VALUE_\d+=Authorization: Basic )(\S+)$`)

// childSources turns the records into sources. A git token is meant to reach git: in the
// environment, as the Basic header of a fetch from the one clone URL it is configured for. Each
// such entry is counted in sent and left out; the same token anywhere else, or for another
// URL, stays in and is found.
func (c *canaryRig) childSources(children []canaryChild) (sources []canarySource, sent map[string]int) {
	tokens := map[string]string{ // "x-access-token:TOKEN" → the URL it may go to
		"x-access-token:" + c.s.gitEnv:    c.ghorgURL,
		"x-access-token:" + c.s.repoToken: c.tokURL,
	}
	sent = map[string]int{}
	m := c.masker()
	for _, ch := range children {
		summary := string(m.mask([]byte(strings.Join(argvSummary(ch.argv), " "))))
		env := slices.Clone(ch.env)
		if ch.kind == "git" {
			for i, kv := range env {
				g := gitAuthHeader.FindStringSubmatch(kv)
				if g == nil {
					continue
				}
				raw, err := base64.StdEncoding.DecodeString(g[2])
				if target, ok := tokens[string(raw)]; err == nil && ok && slices.Contains(ch.argv, target) {
					env[i] = g[1] + "[the token of " + target + "]"
					sent[target]++
				}
			}
		}
		label := fmt.Sprintf("%s child %s (%s)", ch.kind, ch.file, summary)
		sources = append(sources,
			canarySource{label + " argv", []byte(strings.Join(ch.argv, "\x00"))},
			canarySource{label + " environment", []byte(strings.Join(env, "\x00"))})
	}
	return sources, sent
}

// argvSummary is what names a child in a report: its first three arguments that are not options
// (the subcommand, then a URL, a reference or a directory).
func argvSummary(argv []string) []string {
	var out []string
	for i := 1; i < len(argv) && len(out) < 3; i++ {
		switch a := argv[i]; {
		case a == "-c":
			i++ // and its value
		case !strings.HasPrefix(a, "-"):
			out = append(out, a)
		}
	}
	return out
}

// leftoverFiles reads every file under the rig's root but the config file and the records (searched
// as children), and every name there.
func (c *canaryRig) leftoverFiles() []canarySource {
	c.t.Helper()
	var sources []canarySource
	var names []string
	err := filepath.WalkDir(c.root, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path == c.configPath || path == c.recordDir {
			if e.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		rel, _ := filepath.Rel(c.root, path)
		names = append(names, rel)
		switch {
		case e.Type().IsRegular():
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			sources = append(sources, canarySource{"file " + rel, data})
		case e.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			sources = append(sources, canarySource{"symlink " + rel, []byte(target)})
		}
		return nil
	})
	if err != nil {
		c.t.Fatal(err)
	}
	return append(sources, canarySource{"names of the files under the server's dirs", []byte(strings.Join(names, "\n"))})
}

// databaseDump is pg_dump of the server's database: schema and every row.
func (c *canaryRig) databaseDump(pgBin string) canarySource {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, filepath.Join(pgBin, "pg_dump"), "--no-owner", "--dbname="+c.d.url).Output()
	if err != nil {
		c.t.Fatalf("pg_dump: %v", err)
	}
	if !bytes.Contains(out, []byte("COPY public.runs")) || !bytes.Contains(out, []byte("COPY public.deployment_logs")) {
		c.t.Fatalf("pg_dump holds no runs or deployment logs:\n%.2000s", c.masker().mask(out))
	}
	return canarySource{"pg_dump of the database", out}
}

// dockerObjects is docker image inspect and docker history of every image of the test, and docker
// inspect of every container on the engine (the deployed ones, the failed build's).
func (c *canaryRig) dockerObjects() (sources []canarySource, images []string) {
	c.t.Helper()
	for _, ref := range strings.Fields(c.e.mustDocker("images", "--format", "{{.Repository}}:{{.Tag}}")) {
		if strings.Contains(ref, "/e2e-"+c.e.id+"/") {
			images = append(images, ref)
		}
	}
	for _, ref := range images {
		sources = append(sources,
			canarySource{"docker image inspect " + ref, []byte(c.e.mustDocker("image", "inspect", ref))},
			canarySource{"docker history --no-trunc " + ref, []byte(c.e.mustDocker("history", "--no-trunc", ref))})
	}
	if ids := strings.Fields(c.e.mustDocker("ps", "--all", "--quiet")); len(ids) > 0 {
		// A container removed meanwhile (another test's) fails the command; the rest still prints.
		out, _ := c.e.docker(append([]string{"inspect"}, ids...)...)
		sources = append(sources, canarySource{"docker inspect of every container", []byte(out)})
	}
	return sources, images
}

// harnessLogs returns, at the end of the test, what the harness's PostgreSQL, dockerd and
// registry wrote to their logs since mark was called.
func harnessLogs(t *testing.T) (mark func() []canarySource) {
	dir := os.Getenv("SLIPWAY_TEST_SERVICES_DIR")
	if dir == "" {
		return func() []canarySource { return nil }
	}
	names := []string{"pg.log", "dockerd.log", "registry.log"}
	start := map[string]int64{}
	for _, n := range names {
		if fi, err := os.Stat(filepath.Join(dir, n)); err == nil {
			start[n] = fi.Size()
		}
	}
	return func() []canarySource {
		var out []canarySource
		for _, n := range names {
			f, err := os.Open(filepath.Join(dir, n))
			if err != nil {
				continue
			}
			_, err = f.Seek(start[n], io.SeekStart)
			var data []byte
			if err == nil {
				data, err = io.ReadAll(f)
			}
			f.Close()
			if err != nil {
				t.Errorf("reading the harness's %s: %v", n, err)
				continue
			}
			out = append(out, canarySource{"the harness's " + n + " (written during the test)", data})
		}
		return out
	}
}
