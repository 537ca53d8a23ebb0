package pipeline

import (
	"errors"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/deploy"
)

func readExample(t testing.TB) []byte {
	t.Helper()
	data, err := os.ReadFile("testdata/example.slipway.yml")
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestParseExample(t *testing.T) {
	f, err := Parse(".slipway.yml", readExample(t))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := []Service{
		{
			Name:       "api",
			Paths:      []string{"services/api/**", "libs/**"},
			Dockerfile: "services/api/Dockerfile",
			Context:    "services/api",
			BuildArgs:  map[string]string{"GO_VERSION": "1.26"},
			Stage:      "runtime",
			Image:      "123456789012.dkr.ecr.eu-west-1.amazonaws.com/api",
			Environments: []Environment{
				{Name: "production", Branch: "main", ECS: &deploy.ECSService{Cluster: "prod", Service: "api", Container: "api"}},
				{Name: "staging", Branch: "develop", ECS: &deploy.ECSService{Cluster: "staging", Service: "api", Container: "api"}},
			},
		},
		{
			Name:       "web",
			Dockerfile: "Dockerfile",
			Context:    ".",
			Image:      "127.0.0.1:5000/web",
			Environments: []Environment{
				{Name: "demo", Branch: "main", Docker: &deploy.Container{
					Container: "web", Ports: []string{"8081:80"}, Env: map[string]string{"A": "b"},
					Network: "host", HealthTimeout: 30 * time.Second,
				}},
			},
		},
		{
			Name:       "worker",
			Dockerfile: "services/worker/Dockerfile",
			Context:    ".",
			Image:      "registry.example.com/worker",
			Environments: []Environment{
				{Name: "production", Branch: "main", Swarm: &deploy.SwarmService{Service: "worker"}},
			},
		},
	}
	if !reflect.DeepEqual(f.Services, want) {
		t.Errorf("Services =\n%+v\nwant\n%+v", f.Services, want)
	}
	if err := f.Validate(); err != nil {
		t.Errorf("Validate of a parsed file: %v", err)
	}
}

func TestParseNormalizes(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want func(*Service) any
		val  any
	}{
		{"context cleaned", "context: ./services//api/", func(s *Service) any { return s.Context }, "services/api"},
		{"dockerfile defaults under context", "context: services/api", func(s *Service) any { return s.Dockerfile }, "services/api/Dockerfile"},
		{"dockerfile cleaned", "dockerfile: ./build/Dockerfile", func(s *Service) any { return s.Dockerfile }, "build/Dockerfile"},
		{"trailing slash means everything below", "paths: [libs/, ./a/b]", func(s *Service) any { return s.Paths }, []string{"libs/**", "a/b"}},
		{"numbers kept as written", "build_args: {V: 1.20, N: 007, B: true}", func(s *Service) any { return s.BuildArgs }, map[string]string{"V": "1.20", "N": "007", "B": "true"}},
		{"empty build arg", `build_args: {V: ""}`, func(s *Service) any { return s.BuildArgs }, map[string]string{"V": ""}},
		{"literal block", "target: |-\n      runtime", func(s *Service) any { return s.Stage }, "runtime"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "services:\n  a:\n    image: x/a\n    " + tt.yaml + "\n    environments: {p: {branch: main, ecs: {service: s, container: c}}}\n"
			f, err := Parse("f.yml", []byte(src))
			if err != nil {
				t.Fatalf("Parse:\n%s\n%v", src, err)
			}
			if got := tt.want(&f.Services[0]); !reflect.DeepEqual(got, tt.val) {
				t.Errorf("got %#v, want %#v", got, tt.val)
			}
			if got := f.Services[0].Environments[0].ECS.Cluster; got != "default" {
				t.Errorf("ECS cluster default = %q", got)
			}
		})
	}
}

// TestParseErrors checks that each problem is found and reported at the right line, with the key
// path, and that no follow-up noise is reported for the same mistake.
func TestParseErrors(t *testing.T) {
	const head = "services:\n  api:\n    image: x/api\n" // lines 1-3
	const env = "    environments: {prod: {branch: main, swarm: {service: api}}}\n"
	tests := []struct {
		name string
		yaml string
		// want is "line:path: message fragment"; each must be present, and nothing else.
		want []string
	}{
		{"unknown top-level key", "version: 2\n" + head + env, []string{"1:version: unknown key"}},
		{"unknown service key with suggestion", head + "    dockerfil: Dockerfile\n" + env, []string{`4:services.api.dockerfil: unknown key (did you mean "dockerfile"?)`}},
		{"no target", head + "    environments:\n      prod: {branch: main}\n", []string{"5:services.api.environments.prod: exactly one target (ecs, swarm, docker) is required, found 0"}},
		{"two targets", head + "    environments:\n      prod: {branch: main, swarm: {service: a}, docker: {container: ab}}\n", []string{"5:services.api.environments.prod: exactly one target"}},
		{"missing branch", head + "    environments:\n      prod:\n        swarm: {service: a}\n", []string{"5:services.api.environments.prod: branch is required"}},
		{"branch as number", head + "    environments:\n      prod: {branch: 2024, swarm: {service: a}}\n", []string{`5:services.api.environments.prod.branch: must be a string, not a number (quote it: "2024")`}},
		{"bad branch glob", head + "    environments:\n      prod: {branch: 'release/[', swarm: {service: a}}\n", []string{"5:services.api.environments.prod.branch: pattern"}},
		{"branch with refs/heads", head + "    environments:\n      prod: {branch: refs/heads/main, swarm: {service: a}}\n", []string{"5:services.api.environments.prod.branch: give the branch name without refs/heads/"}},
		{"missing image", "services:\n  api:\n" + env, []string{"2:services.api: image is required"}},
		{"image with tag", "services:\n  api:\n    image: x/api:latest\n" + env, []string{"3:services.api.image: image must not include a tag"}},
		{"image with digest", "services:\n  api:\n    image: x/api@sha256:0123\n" + env, []string{"3:services.api.image: image must not include a digest"}},
		{"image uppercase", "services:\n  api:\n    image: x/API\n" + env, []string{"3:services.api.image: \"x/API\" is not an image repository"}},
		{"bad service name", "services:\n  Api_Server!:\n    image: x/api\n" + env, []string{`2:services."Api_Server!": service name must match`}},
		{"bad environment name", head + "    environments:\n      Prod: {branch: main, swarm: {service: a}}\n", []string{"5:services.api.environments.Prod: environment name must match"}},
		{"dockerfile escapes", head + "    dockerfile: ../../etc/passwd\n" + env, []string{"4:services.api.dockerfile: must stay inside the repository"}},
		{"dot-dot inside", head + "    context: a/../b\n" + env, []string{"4:services.api.context: must stay inside the repository"}},
		{"absolute context", head + "    context: /srv\n" + env, []string{"4:services.api.context: must be relative to the repository root"}},
		{"backslash", head + "    dockerfile: 'build\\Dockerfile'\n" + env, []string{"4:services.api.dockerfile: must use / as separator"}},
		{"NUL escape", head + "    dockerfile: \"Docker\\0file\"\n" + env, []string{"4:services.api.dockerfile: must not contain NUL"}},
		{"dockerfile is a dir", head + "    dockerfile: ./\n" + env, []string{"4:services.api.dockerfile: must name a file"}},
		{"path glob escapes", head + "    paths: [ok/**, ../x]\n" + env, []string{"4:services.api.paths[1]: must stay inside the repository"}},
		{"double star in segment", head + "    paths: [a**/b]\n" + env, []string{"4:services.api.paths[0]: pattern \"a**/b\": ** must be a whole path segment"}},
		{"empty paths", head + "    paths: []\n" + env, []string{"4:services.api.paths: must not be empty"}},
		{"paths not a list", head + "    paths: services/**\n" + env, []string{"4:services.api.paths: must be a list, not a string"}},
		{"empty string", head + "    context: ''\n" + env, []string{"4:services.api.context: must not be empty"}},
		{"null value", head + "    context:\n" + env, []string{"4:services.api.context: must be a string, not null"}},
		{"ecs missing fields", head + "    environments:\n      prod: {branch: main, ecs: {cluster: c}}\n", []string{
			"5:services.api.environments.prod.ecs: service is required",
			"5:services.api.environments.prod.ecs: container is required",
		}},
		{"ecs cluster ARN", head + "    environments:\n      prod: {branch: main, ecs: {cluster: 'arn:aws:ecs:eu-west-1:1:cluster/p', service: s, container: c}}\n", []string{"5:services.api.environments.prod.ecs.cluster: must be an ECS cluster name (not an ARN)"}},
		{"swarm missing service", head + "    environments:\n      prod: {branch: main, swarm: {}}\n", []string{"5:services.api.environments.prod.swarm: service is required"}},
		{"target not a mapping", head + "    environments:\n      prod: {branch: main, swarm: web}\n", []string{"5:services.api.environments.prod.swarm: must be a mapping, not a string"}},
		{"docker unquoted port in flow list", head + "    environments:\n      prod: {branch: main, docker: {container: web, ports: [8081:80]}}\n", []string{`5:services.api.environments.prod.docker.ports[0]: must be a string, not a mapping (quote it: "8081:80")`}},
		{"docker bad port", head + "    environments:\n      prod: {branch: main, docker: {container: web, ports: [\"80\", \"99999:80\"]}}\n", []string{"5:services.api.environments.prod.docker.ports[1]: \"99999:80\" is not a port mapping"}},
		{"docker duration without unit", head + "    environments:\n      prod: {branch: main, docker: {container: web, health_timeout: 30}}\n", []string{"5:services.api.environments.prod.docker.health_timeout: must be a duration with a unit"}},
		{"docker duration too long", head + "    environments:\n      prod: {branch: main, docker: {container: web, health_timeout: 2h}}\n", []string{"5:services.api.environments.prod.docker.health_timeout: must be a positive duration of at most 1h"}},
		{"docker bad env name", head + "    environments:\n      prod: {branch: main, docker: {container: web, env: {1A: x}}}\n", []string{"5:services.api.environments.prod.docker.env.1A: name must match"}},
		{"docker command not a list", head + "    environments:\n      prod: {branch: main, docker: {container: web, command: sleep 1}}\n", []string{"5:services.api.environments.prod.docker.command: must be a list"}},
		{"docker container one char", head + "    environments:\n      prod: {branch: main, docker: {container: w}}\n", []string{"5:services.api.environments.prod.docker.container: must match"}},
		{"duplicate service", head + env + "  api:\n    image: x/b\n" + env, []string{"5:services.api: duplicate key (first defined on line 2)"}},
		{"duplicate key", head + "    image: x/b\n" + env, []string{"4:services.api.image: duplicate key (first defined on line 3)"}},
		{"no services", "services: {}\n", []string{"1:services: at least one service is required"}},
		{"no environments", head + "    environments: {}\n", []string{"4:services.api: at least one environment is required"}},
		{"services missing", "# just a comment\nother: 1\n", []string{"2:other: unknown key", "services is required"}},
		{"top level not a mapping", "- a\n- b\n", []string{"1:: must be a mapping, not a list"}},
		{"anchor and alias", head + "    environments:\n      prod: &p {branch: main, swarm: {service: a}}\n      test: *p\n", []string{
			"5:services.api.environments.prod: YAML anchors (&name) are not supported",
			"6:services.api.environments.test: YAML aliases (*name) are not supported",
		}},
		{"merge key", head + "    environments:\n      prod: {<<: {branch: main}, swarm: {service: a}}\n", []string{"5:services.api.environments.prod: YAML merge keys (<<) are not supported"}},
		{"tag", head + "    target: !!str 123\n" + env, []string{"4:services.api.target: YAML tags (!tag) are not supported"}},
		{"two documents", head + env + "---\n" + head + env, []string{"6:: only one YAML document is allowed"}},
		{"empty file", "", []string{"1:: file is empty"}},
		{"only comments", "# nothing\n", []string{"1:: file is empty"}},
		{"syntax error", "services:\n  api: [\n", []string{"invalid YAML"}},
		{"tab indentation", "services:\n\tapi: {}\n", []string{"invalid YAML"}},
		{"invalid UTF-8", head + "    target: \"\xff\"\n" + env, []string{"4:: invalid UTF-8"}},
		{"control character", head + "    target: \"a\x01\"\n" + env, []string{"4:: character U+0001 is not allowed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse(".slipway.yml", []byte(tt.yaml))
			if err == nil {
				t.Fatalf("Parse succeeded: %+v\nfor:\n%s", f, tt.yaml)
			}
			if f != nil {
				t.Errorf("Parse returned a File with an error")
			}
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("error %T is not an ErrorList: %v", err, err)
			}
			var first *Error
			if !errors.As(err, &first) || first != list[0] {
				t.Errorf("errors.As(*Error) does not find the first problem")
			}
			if len(list) != len(tt.want) {
				t.Errorf("got %d problems, want %d:\n%v", len(list), len(tt.want), err)
			}
			for _, w := range tt.want {
				if !containsProblem(list, w) {
					t.Errorf("missing %q in:\n%v", w, err)
				}
			}
			for _, e := range list {
				if e.File != ".slipway.yml" {
					t.Errorf("problem does not name the file: %q", e.Error())
				}
				if e.Line == 0 && !strings.Contains(e.Msg, "services is required") && !strings.HasPrefix(e.Msg, "invalid YAML") {
					t.Errorf("problem has no line: %q", e.Error())
				}
				if !strings.HasPrefix(e.Error(), ".slipway.yml:") {
					t.Errorf("message does not start with the file name: %q", e.Error())
				}
			}
		})
	}
}

// containsProblem matches "line:path: msg", "line:: msg" (no path) or a bare message fragment.
func containsProblem(list ErrorList, want string) bool {
	for _, e := range list {
		var line, path, msg string
		if parts := strings.SplitN(want, ":", 3); len(parts) == 3 && parts[0] != "" && strings.Trim(parts[0], "0123456789") == "" {
			line, path, msg = parts[0], parts[1], strings.TrimPrefix(parts[2], " ")
			if e.Path != path || strings.TrimLeft(line, "0") != strings.TrimLeft(strconv.Itoa(e.Line), "0") {
				continue
			}
		} else {
			msg = want
		}
		if strings.Contains(e.Msg, msg) {
			return true
		}
	}
	return false
}

func TestParseErrorFormat(t *testing.T) {
	src := "services:\n  api:\n    image: x/api\n    environments:\n      production:\n        branch: main\n"
	_, err := Parse(".slipway.yml", []byte(src))
	want := ".slipway.yml:5:7: services.api.environments.production: exactly one target (ecs, swarm, docker) is required, found 0"
	if err == nil || err.Error() != want {
		t.Errorf("error = %v\nwant    %s", err, want)
	}
}

func TestParseReportsEveryProblem(t *testing.T) {
	src := `services:
  api:
    image: x/api:1
    dockerfile: ../Dockerfile
    environments:
      Prod: {branch: main}
  worker:
    environments:
      prod: {branch: main, ecs: {service: w}}
`
	_, err := Parse(".slipway.yml", []byte(src))
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("err = %v", err)
	}
	var lines []int
	for _, e := range list {
		lines = append(lines, e.Line)
	}
	// image tag, dockerfile, env name, env target, worker image, worker container; in file order.
	if want := []int{3, 4, 6, 6, 7, 9}; !reflect.DeepEqual(lines, want) {
		t.Errorf("lines = %v, want %v:\n%v", lines, want, err)
	}
}

func TestParseLimits(t *testing.T) {
	var many strings.Builder
	many.WriteString("services:\n")
	for i := range MaxServices + 1 {
		many.WriteString("  s" + strconv.Itoa(i) + ": {image: x/a, environments: {p: {branch: main, swarm: {service: a}}}}\n")
	}
	tests := []struct {
		name string
		data string
		want string
	}{
		{"too big", "services:\n" + strings.Repeat("#", MaxFileSize), "the limit is 1048576"},
		{"too many services", many.String(), "201 services; the limit is 200"},
		{"too many tokens", "services: [" + strings.Repeat("a,", maxTokens) + "]\n", "YAML tokens"},
		{"nesting", "services: " + strings.Repeat("[", 100) + strings.Repeat("]", 100) + "\n", "more than 64 nested"},
		{"long image", "services:\n  a:\n    image: x/" + strings.Repeat("a", 300) + "\n    environments: {p: {branch: main, swarm: {service: a}}}\n", "longer than 255"},
		{"long path", "services:\n  a:\n    image: x/a\n    context: " + strings.Repeat("a/", 600) + "\n    environments: {p: {branch: main, swarm: {service: a}}}\n", "longer than 1024"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(".slipway.yml", []byte(tt.data))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %.300v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestParseTooManyProblemsIsTruncated(t *testing.T) {
	var b strings.Builder
	b.WriteString("services:\n")
	for i := range 150 {
		b.WriteString("  S" + strconv.Itoa(i) + ": {image: x/a, environments: {p: {branch: main, swarm: {service: a}}}}\n")
	}
	_, err := Parse("f", []byte(b.String()))
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatal(err)
	}
	if len(list) != maxErrors+1 || !strings.Contains(list[maxErrors].Msg, "50 more not shown") {
		t.Errorf("got %d problems, last %q", len(list), list[len(list)-1].Msg)
	}
}

func TestValidate(t *testing.T) {
	ok := func() *File {
		return &File{Services: []Service{{
			Name: "api", Image: "x/api",
			Environments: []Environment{{Name: "prod", Branch: "main", Swarm: &deploy.SwarmService{Service: "api"}}},
		}}}
	}
	tests := []struct {
		name   string
		mutate func(*File)
		want   string // "" for valid
	}{
		{"minimal without defaults", func(*File) {}, ""},
		{"duplicate service", func(f *File) { f.Services = append(f.Services, f.Services[0]) }, "services.api: service defined twice"},
		{"duplicate environment", func(f *File) {
			f.Services[0].Environments = append(f.Services[0].Environments, f.Services[0].Environments[0])
		}, "services.api.environments.prod: environment defined twice"},
		{"bad context", func(f *File) { f.Services[0].Context = "../x" }, "services.api.context: must stay inside"},
		{"negative timeout", func(f *File) {
			f.Services[0].Environments[0] = Environment{Name: "prod", Branch: "main", Docker: &deploy.Container{Container: "web", HealthTimeout: -1}}
		}, "health_timeout"},
		{"NUL in env value", func(f *File) {
			f.Services[0].Environments[0] = Environment{Name: "prod", Branch: "main", Docker: &deploy.Container{Container: "web", Env: map[string]string{"A": "x\x00"}}}
		}, "services.api.environments.prod.docker.env.A: value must be"},
		{"no target", func(f *File) { f.Services[0].Environments[0].Swarm = nil }, "exactly one target"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := ok()
			tt.mutate(f)
			err := f.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Validate = %v, want %q", err, tt.want)
			}
		})
	}
}
