package pipeline

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// The schema in web/static/ and Parse describe the same format. These tests keep them in step: every
// example in the docs passes both, and every file in a set of bad ones fails both.

const schemaPath = "../../web/static/pipeline.schema.json"

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(schemaPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatalf("reading %s: %v", schemaPath, err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("pipeline.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("pipeline.schema.json")
	if err != nil {
		t.Fatalf("compiling %s: %v", schemaPath, err)
	}
	return sch
}

// schemaValidate checks YAML text against the schema the way an editor would: YAML to JSON
// values, then validation.
func schemaValidate(sch *jsonschema.Schema, src string) error {
	var v any
	if err := yaml.Unmarshal([]byte(src), &v); err != nil {
		return err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return err
	}
	return sch.Validate(inst)
}

var yamlBlockRE = regexp.MustCompile("(?ms)^```yaml[ \t]*\n(.*?)^```")

// yamlBlocks returns the ```yaml blocks of a Markdown file; with onlyPipelines, just those whose
// first line that is not blank or a comment starts with "services:".
func yamlBlocks(t *testing.T, name string, onlyPipelines bool) []string {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	for _, m := range yamlBlockRE.FindAllStringSubmatch(string(data), -1) {
		if onlyPipelines && !startsWithServices(m[1]) {
			continue
		}
		blocks = append(blocks, m[1])
	}
	return blocks
}

func startsWithServices(block string) bool {
	for _, line := range strings.Split(block, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		return strings.HasPrefix(line, "services:")
	}
	return false
}

func TestDocExamplesValidate(t *testing.T) {
	sch := compileSchema(t)
	type example struct{ where, src string }
	var examples []example
	for i, b := range yamlBlocks(t, "README.md", false) {
		examples = append(examples, example{"internal/pipeline/README.md block " + strconv.Itoa(i+1), b})
	}
	if len(examples) < 2 {
		t.Fatalf("found %d yaml blocks in internal/pipeline/README.md, want the minimal and the full example", len(examples))
	}
	// The README is written separately; hold it to the same standard once it has examples.
	if _, err := os.Stat("../../README.md"); err == nil {
		for i, b := range yamlBlocks(t, "../../README.md", true) {
			examples = append(examples, example{"README.md pipeline block " + strconv.Itoa(i+1), b})
		}
	}
	example0, err := os.ReadFile("testdata/example.slipway.yml")
	if err != nil {
		t.Fatal(err)
	}
	examples = append(examples, example{"testdata/example.slipway.yml", string(example0)})
	for _, ex := range examples {
		t.Run(ex.where, func(t *testing.T) {
			if err := schemaValidate(sch, ex.src); err != nil {
				t.Errorf("schema rejects it: %v\n%s", err, ex.src)
			}
			if _, err := Parse(filepath.Base(ex.where), []byte(ex.src)); err != nil {
				t.Errorf("Parse rejects it: %v\n%s", err, ex.src)
			}
		})
	}
}

// Both accept these.
var goodFiles = map[string]string{
	"all optional fields": `services:
  a:
    paths: [a/**, "**/*.proto", libs/]
    dockerfile: build/Dockerfile
    context: .
    build_args: {V: 1.20, DEBUG: true, EMPTY: ""}
    target: runtime
    image: localhost:5000/team/a
    environments:
      prod: {branch: main, ecs: {service: a, container: app}}
      test:
        branch: "release/**"
        docker:
          container: a-test
          ports: ["8080:80", "127.0.0.1:9090:90/udp", 7000]
          env: {PORT: 8080, NAME: a}
          network: bridge
          health_timeout: 1m30s
          command: [sleep, 3600]
      swarm: {branch: "feature/*", swarm: {service: a_test}}
`,
	"ipv6 registry": `services:
  a:
    image: "[::1]:5000/a"
    environments: {p: {branch: main, swarm: {service: a}}}
`,
}

// Both reject these. Problems only Parse can see (YAML anchors, ** inside a segment, port
// numbers over 65535, durations over 1h, "a/../b") are covered by TestParseErrors.
var badFiles = map[string]string{
	"empty services":        "services: {}\n",
	"no services":           "other: 1\n",
	"unknown top-level key": "version: 1\nservices:\n  a: {image: x/a, environments: {p: {branch: main, swarm: {service: a}}}}\n",
	"unknown service key":   "services:\n  a: {image: x/a, dockerfil: D, environments: {p: {branch: main, swarm: {service: a}}}}\n",
	"unknown target key":    "services:\n  a: {image: x/a, environments: {p: {branch: main, swarm: {service: a, replicas: 2}}}}\n",
	"bad service name":      "services:\n  A: {image: x/a, environments: {p: {branch: main, swarm: {service: a}}}}\n",
	"bad environment name":  "services:\n  a: {image: x/a, environments: {'p p': {branch: main, swarm: {service: a}}}}\n",
	"missing image":         "services:\n  a: {environments: {p: {branch: main, swarm: {service: a}}}}\n",
	"image with tag":        "services:\n  a: {image: 'x/a:1.0', environments: {p: {branch: main, swarm: {service: a}}}}\n",
	"image with port tag":   "services:\n  a: {image: 'localhost:5000/a:1.0', environments: {p: {branch: main, swarm: {service: a}}}}\n",
	"image with digest":     "services:\n  a: {image: 'x/a@sha256:abcd', environments: {p: {branch: main, swarm: {service: a}}}}\n",
	"image uppercase path":  "services:\n  a: {image: x/A, environments: {p: {branch: main, swarm: {service: a}}}}\n",
	"image as number":       "services:\n  a: {image: 42, environments: {p: {branch: main, swarm: {service: a}}}}\n",
	"missing environments":  "services:\n  a: {image: x/a}\n",
	"empty environments":    "services:\n  a: {image: x/a, environments: {}}\n",
	"missing branch":        "services:\n  a: {image: x/a, environments: {p: {swarm: {service: a}}}}\n",
	"empty branch":          "services:\n  a: {image: x/a, environments: {p: {branch: '', swarm: {service: a}}}}\n",
	"branch with space":     "services:\n  a: {image: x/a, environments: {p: {branch: 'my branch', swarm: {service: a}}}}\n",
	"branch number":         "services:\n  a: {image: x/a, environments: {p: {branch: 2024, swarm: {service: a}}}}\n",
	"no target":             "services:\n  a: {image: x/a, environments: {p: {branch: main}}}\n",
	"two targets":           "services:\n  a: {image: x/a, environments: {p: {branch: main, swarm: {service: a}, docker: {container: ab}}}}\n",
	"ecs missing container": "services:\n  a: {image: x/a, environments: {p: {branch: main, ecs: {cluster: c, service: s}}}}\n",
	"ecs cluster arn":       "services:\n  a: {image: x/a, environments: {p: {branch: main, ecs: {cluster: 'arn:aws:ecs:r:1:cluster/c', service: s, container: c}}}}\n",
	"swarm missing service": "services:\n  a: {image: x/a, environments: {p: {branch: main, swarm: {}}}}\n",
	"docker no container":   "services:\n  a: {image: x/a, environments: {p: {branch: main, docker: {ports: ['80']}}}}\n",
	"docker bad port":       "services:\n  a: {image: x/a, environments: {p: {branch: main, docker: {container: ab, ports: ['eighty']}}}}\n",
	"docker port mapping":   "services:\n  a: {image: x/a, environments: {p: {branch: main, docker: {container: ab, ports: [8080:80]}}}}\n",
	"docker bad duration":   "services:\n  a: {image: x/a, environments: {p: {branch: main, docker: {container: ab, health_timeout: 30}}}}\n",
	"docker bad env name":   "services:\n  a: {image: x/a, environments: {p: {branch: main, docker: {container: ab, env: {'A-B': x}}}}}\n",
	"docker env null":       "services:\n  a: {image: x/a, environments: {p: {branch: main, docker: {container: ab, env: {A: }}}}}\n",
	"docker command string": "services:\n  a: {image: x/a, environments: {p: {branch: main, docker: {container: ab, command: 'sleep 1'}}}}\n",
	"dockerfile escapes":    "services:\n  a: {image: x/a, dockerfile: ../../etc/passwd, environments: {p: {branch: main, swarm: {service: a}}}}\n",
	"context absolute":      "services:\n  a: {image: x/a, context: /etc, environments: {p: {branch: main, swarm: {service: a}}}}\n",
	"context backslash":     "services:\n  a: {image: x/a, context: 'a\\b', environments: {p: {branch: main, swarm: {service: a}}}}\n",
	"context dot-dot":       "services:\n  a: {image: x/a, context: 'a/..', environments: {p: {branch: main, swarm: {service: a}}}}\n",
	"path escapes":          "services:\n  a: {image: x/a, paths: [../**], environments: {p: {branch: main, swarm: {service: a}}}}\n",
	"paths empty":           "services:\n  a: {image: x/a, paths: [], environments: {p: {branch: main, swarm: {service: a}}}}\n",
	"paths not a list":      "services:\n  a: {image: x/a, paths: 'a/**', environments: {p: {branch: main, swarm: {service: a}}}}\n",
	"build arg bad name":    "services:\n  a: {image: x/a, build_args: {'1X': y}, environments: {p: {branch: main, swarm: {service: a}}}}\n",
	"build arg list":        "services:\n  a: {image: x/a, build_args: [X=y], environments: {p: {branch: main, swarm: {service: a}}}}\n",
	"bad stage":             "services:\n  a: {image: x/a, target: 'run time', environments: {p: {branch: main, swarm: {service: a}}}}\n",
	"null context":          "services:\n  a: {image: x/a, context: null, environments: {p: {branch: main, swarm: {service: a}}}}\n",
	"services is a list":    "services: [a]\n",
	"top level list":        "- services\n",
}

func TestSchemaAndParseAgree(t *testing.T) {
	sch := compileSchema(t)
	for name, src := range goodFiles {
		t.Run("good/"+name, func(t *testing.T) {
			if err := schemaValidate(sch, src); err != nil {
				t.Errorf("schema rejects it: %v", err)
			}
			if _, err := Parse("f", []byte(src)); err != nil {
				t.Errorf("Parse rejects it: %v", err)
			}
		})
	}
	for name, src := range badFiles {
		t.Run("bad/"+name, func(t *testing.T) {
			if err := schemaValidate(sch, src); err == nil {
				t.Errorf("schema accepts it:\n%s", src)
			}
			if _, err := Parse("f", []byte(src)); err == nil {
				t.Errorf("Parse accepts it:\n%s", src)
			}
		})
	}
}
