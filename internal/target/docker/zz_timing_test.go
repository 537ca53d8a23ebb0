package docker_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/target/docker"
	"github.com/slipway-dev/slipway/internal/target/dockercli/dockertest"
)

func TestZZTimingDefaults(t *testing.T) {
	f := newFixture(t)
	tgt, _ := docker.New(docker.Config{DockerBinary: f.env.CLI, Host: f.env.Host}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	v1 := f.web(t, "t1")
	v2 := f.env.Image(t, "trap", "RUN echo x > /x", `CMD ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"]`)
	v3 := f.env.Image(t, "trap", "RUN echo y > /x", `CMD ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"]`)
	for _, img := range []string{v1, v2, v3} {
		start := time.Now()
		if err := tgt.Deploy(context.Background(), f.rollout(img), dockertest.NewLog(t, nil).Func); err != nil {
			t.Fatal(err)
		}
		t.Logf("TIMING %s", time.Since(start))
	}
}
