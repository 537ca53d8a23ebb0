package ecs_test

import (
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// readOnly are the fields DescribeTaskDefinition returns that RegisterTaskDefinition does not take.
var readOnly = []string{
	"taskDefinitionArn", "revision", "status", "requiresAttributes", "compatibilities",
	"registeredAt", "registeredBy", "deregisteredAt", "deleteRequestedAt",
}

// richTaskDef is testdata/taskdef-rich.json: a task definition using most of what ECS offers, as
// DescribeTaskDefinition returns it, and its tags.
func richTaskDef(t *testing.T) (td map[string]any, tags []any) {
	t.Helper()
	raw, err := os.ReadFile("testdata/taskdef-rich.json")
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		TaskDefinition map[string]any `json:"taskDefinition"`
		Tags           []any          `json:"tags"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return out.TaskDefinition, out.Tags
}

// wantRevision is what registering a revision of td with image in container must send: td without
// its read-only fields, image in container, the tags but ECS's own (aws:).
func wantRevision(t *testing.T, td map[string]any, tags []any, container, image string) map[string]any {
	t.Helper()
	var want map[string]any
	raw, _ := json.Marshal(td)
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	for _, k := range readOnly {
		delete(want, k)
	}
	found := false
	for _, c := range want["containerDefinitions"].([]any) {
		c := c.(map[string]any)
		if c["name"] == container {
			c["image"], found = image, true
		}
		// The SDK models a container's cpu as a plain int32 and sends nothing for 0, ECS's
		// default: the one field whose zero does not travel, and means the same absent.
		if c["cpu"] == 0.0 {
			delete(c, "cpu")
		}
	}
	if !found {
		t.Fatalf("no container %s", container)
	}
	var keep []any
	for _, tag := range tags {
		if !strings.HasPrefix(tag.(map[string]any)["key"].(string), "aws:") {
			keep = append(keep, tag)
		}
	}
	if keep != nil {
		want["tags"] = keep
	}
	return want
}

// TestRevisionKeepsEveryField registers a revision of a rich task definition through the real SDK
// client: what reaches ECS is the live definition, field for field, with only the image changed.
func TestRevisionKeepsEveryField(t *testing.T) {
	f := newFixture(t)
	td, tags := richTaskDef(t)
	arn := f.d.AddTaskDef(td, tags)
	f.d.AddService("rich", arn, 3, "acme/api", true)

	image := img("rich-v2")
	r := f.rollout("rich", image)
	if err := f.tgt.Deploy(t.Context(), r, f.log.log); err != nil {
		t.Fatalf("Deploy: %v\n%s", err, f.log)
	}
	if len(f.d.Registered) != 1 {
		t.Fatalf("%d registrations, want 1", len(f.d.Registered))
	}
	got := f.d.Registered[0]
	want := wantRevision(t, td, tags, "api", image)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("registered task definition differs from the live one:\n%s", jsonDiff(t, want, got))
	}
	// The other images stay as they were, the sidecars' tags included.
	for _, c := range got["containerDefinitions"].([]any) {
		c := c.(map[string]any)
		if c["name"] != "api" && strings.Contains(c["image"].(string), "rich@") {
			t.Errorf("container %s got the new image", c["name"])
		}
	}
	if s := f.d.Service("rich"); s.TaskDef != tdARN("rich", 13) {
		t.Errorf("service runs %s, want rich:13", s.TaskDef)
	}
}

// jsonDiff shows the lines of want and got that differ, indented JSON side by side.
func jsonDiff(t *testing.T, want, got any) string {
	t.Helper()
	w, _ := json.MarshalIndent(want, "", "  ")
	g, _ := json.MarshalIndent(got, "", "  ")
	wl, gl := strings.Split(string(w), "\n"), strings.Split(string(g), "\n")
	var b strings.Builder
	for _, l := range wl {
		if !slices.Contains(gl, l) {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range gl {
		if !slices.Contains(wl, l) {
			b.WriteString("+ " + l + "\n")
		}
	}
	return b.String()
}
