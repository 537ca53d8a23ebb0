package registry

import (
	"strings"
	"testing"
)

func TestParseReference(t *testing.T) {
	const dg = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	tests := []struct {
		ref     string
		want    Reference
		wantErr string
	}{
		{ref: "alpine", want: Reference{DockerHub, "library/alpine", "latest", ""}},
		{ref: "alpine:3.20", want: Reference{DockerHub, "library/alpine", "3.20", ""}},
		{ref: "org/app:v1", want: Reference{DockerHub, "org/app", "v1", ""}},
		{ref: "docker.io/alpine", want: Reference{DockerHub, "library/alpine", "latest", ""}},
		{ref: "index.docker.io/org/app", want: Reference{DockerHub, "org/app", "latest", ""}},
		{ref: "localhost/app", want: Reference{"localhost", "app", "latest", ""}},
		{ref: "localhost:5000/team/app:dev", want: Reference{"localhost:5000", "team/app", "dev", ""}},
		{ref: "127.0.0.1:5000/app:1", want: Reference{"127.0.0.1:5000", "app", "1", ""}},
		{ref: "registry.example.com/a/b/c:sha-abc", want: Reference{"registry.example.com", "a/b/c", "sha-abc", ""}},
		{ref: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/api:9f2c", want: Reference{"123456789012.dkr.ecr.eu-west-1.amazonaws.com", "api", "9f2c", ""}},
		{ref: "reg.example.com/app@" + dg, want: Reference{"reg.example.com", "app", "", dg}},
		{ref: "reg.example.com/app:v1@" + dg, want: Reference{"reg.example.com", "app", "v1", dg}},
		{ref: "[::1]:5000/app", want: Reference{"[::1]:5000", "app", "latest", ""}},
		{ref: "my_host/app", want: Reference{DockerHub, "my_host/app", "latest", ""}},
		{ref: "org/my-app__x.y:T_1.0-rc", want: Reference{DockerHub, "org/my-app__x.y", "T_1.0-rc", ""}},
		{ref: "", wantErr: "invalid repository"},
		{ref: "Upper/app", wantErr: "invalid repository component"},
		{ref: "reg.example.com/", wantErr: "no repository"},
		{ref: "reg.example.com/app:", wantErr: "invalid tag"},
		{ref: "app:bad tag", wantErr: "invalid tag"},
		{ref: "app@sha256:short", wantErr: "invalid digest"},
		{ref: "bad_host.example.com:x/app", wantErr: "invalid registry host"},
		{ref: "reg.example.com//app", wantErr: "invalid repository component"},
		{ref: "-app", wantErr: "invalid repository component"},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			got, err := ParseReference(tt.ref)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestReferenceString(t *testing.T) {
	for ref, want := range map[string]string{
		"alpine":                DockerHub + "/library/alpine:latest",
		"127.0.0.1:5000/app:1":  "127.0.0.1:5000/app:1",
		"reg.example.com/a/b:c": "reg.example.com/a/b:c",
		"reg.example.com/a@sha256:" + strings.Repeat("0", 64): "reg.example.com/a@sha256:" + strings.Repeat("0", 64),
	} {
		r, err := ParseReference(ref)
		if err != nil {
			t.Fatal(err)
		}
		if r.String() != want {
			t.Errorf("%s: String() = %s, want %s", ref, r.String(), want)
		}
	}
}
