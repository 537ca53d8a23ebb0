package pipeline

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"testing"
)

// FuzzParse: Parse never panics, fails only with an ErrorList of located problems, and what it
// accepts is a File that re-validates, survives the jsonb round trip and can be planned.
func FuzzParse(f *testing.F) {
	if data, err := os.ReadFile("testdata/example.slipway.yml"); err == nil {
		f.Add(data)
	}
	for _, src := range goodFiles {
		f.Add([]byte(src))
	}
	for _, src := range badFiles {
		f.Add([]byte(src))
	}
	f.Add([]byte("services:\n  a: &a {image: x/a}\n  b: *a\n"))
	f.Add([]byte("services:\n  a:\n    image: x/a\n    environments:\n      p: {branch: main, docker: {container: ab, ports: [8080:80], health_timeout: 1h}}\n"))

	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(".slipway.yml", data)
		if err != nil {
			if file != nil {
				t.Fatal("Parse returned both a File and an error")
			}
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error is not a non-empty ErrorList: %T %v", err, err)
			}
			for _, e := range list {
				if e == nil || e.Msg == "" || e.File != ".slipway.yml" {
					t.Fatalf("malformed problem %#v", e)
				}
			}
			return
		}
		if err := file.Validate(); err != nil {
			t.Fatalf("parsed File does not validate: %v\ninput:\n%q", err, data)
		}
		b, err := json.Marshal(file)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		var back File
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("unmarshal: %v", err)
		}
		if err := back.Validate(); err != nil {
			t.Fatalf("File from JSON does not validate: %v", err)
		}
		if !reflect.DeepEqual(back.Services, file.Services) {
			t.Fatalf("JSON round trip changed the File:\n%+v\n%+v", back.Services, file.Services)
		}
		for _, target := range file.Plan("main", []string{"a/b.go"}, false) {
			if target.Destination.Platform == "" || target.Destination.Name() == "" {
				t.Fatalf("Plan returned an incomplete target %+v", target)
			}
		}
	})
}
