package swarm

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/pipeline"
)

const (
	d1 = "@sha256:1111111111111111111111111111111111111111111111111111111111111111"
	d2 = "@sha256:2222222222222222222222222222222222222222222222222222222222222222"
)

func TestSameImage(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"reg:5000/api" + d1, "reg:5000/api" + d1, true},
		{"reg:5000/api:v3" + d1, "reg:5000/api" + d1, true},
		{"reg:5000/api" + d1, "reg:5000/api" + d2, false},
		{"reg:5000/api" + d1, "reg:5000/web" + d1, false},
		{"reg:5000/api" + d1, "reg:5001/api" + d1, false},
		{"busybox:latest", "busybox:latest", true},
		{"busybox:latest", "busybox" + d1, false},
	}
	for _, tt := range tests {
		if got := sameImage(tt.a, tt.b); got != tt.want {
			t.Errorf("sameImage(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestUpdateArgs(t *testing.T) {
	got := updateArgs("api", "reg/api"+d1, 1500*time.Millisecond)
	want := []string{"service", "update", "--image", "reg/api" + d1, "--with-registry-auth",
		"--update-failure-action", "rollback", "--update-monitor", "1.5s", "--rollback-monitor", "1.5s",
		"--update-order", "stop-first", "--detach=false", "api"}
	if !slices.Equal(got, want) {
		t.Errorf("updateArgs:\n got %q\nwant %q", got, want)
	}
}

func TestCheckRollout(t *testing.T) {
	good := "127.0.0.1:5000/api" + d1
	swarm := func(service, image string) deploy.Rollout {
		return deploy.Rollout{Image: image, Target: pipeline.Target{Kind: pipeline.KindSwarm, Swarm: &pipeline.SwarmTarget{Service: service}}}
	}
	tests := []struct {
		name    string
		r       deploy.Rollout
		wantErr string
	}{
		{name: "ok", r: swarm("api", good)},
		{name: "not swarm", r: deploy.Rollout{Image: good, Target: pipeline.Target{Kind: "docker", Docker: &pipeline.DockerTarget{Container: "x"}}}, wantErr: "not a swarm target"},
		{name: "name like a flag", r: swarm("--force", good), wantErr: "invalid swarm service name"},
		{name: "tag only", r: swarm("api", "127.0.0.1:5000/api:latest"), wantErr: "not pinned by digest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := checkRollout(tt.r)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestSettled(t *testing.T) {
	before := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	later := before.Add(time.Minute)
	tests := []struct {
		name      string
		status    *updateStatus
		settled   bool
		unchanged bool
	}{
		{name: "no status: the update changed no task", status: nil, settled: true, unchanged: true},
		{name: "still the old completed one", status: &updateStatus{State: "completed", StartedAt: before}, settled: true, unchanged: true},
		{name: "new update running", status: &updateStatus{State: "updating", StartedAt: later}, settled: false},
		{name: "new update completed", status: &updateStatus{State: "completed", StartedAt: later}, settled: true},
		{name: "rollback running", status: &updateStatus{State: "rollback_started", StartedAt: later}, settled: false},
		{name: "rolled back", status: &updateStatus{State: "rollback_completed", StartedAt: later}, settled: true},
		{name: "paused", status: &updateStatus{State: "paused", StartedAt: later}, settled: true},
		{name: "rollback paused", status: &updateStatus{State: "rollback_paused", StartedAt: later}, settled: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &service{UpdateStatus: tt.status}
			if got := settled(s, before); got != tt.settled {
				t.Errorf("settled = %v, want %v", got, tt.settled)
			}
			if got := noUpdate(s, before); got != tt.unchanged {
				t.Errorf("noUpdate = %v, want %v", got, tt.unchanged)
			}
		})
	}
}
