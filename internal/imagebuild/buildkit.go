package imagebuild

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"time"
)

// useBuildKit resolves the auto mode once, on the first build: New takes no context and runs
// nothing, and the answer does not change while the server runs.
func (b *Builder) useBuildKit(ctx context.Context) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buildKit != nil {
		return *b.buildKit, nil
	}
	on, why, err := b.detectBuildKit(ctx)
	if err != nil {
		return false, err // not cached: the next build asks again
	}
	b.buildKit = &on
	b.logger.InfoContext(ctx, "docker build mode chosen", "buildkit", on, "reason", why)
	return on, nil
}

func (b *Builder) detectBuildKit(ctx context.Context) (on bool, why string, err error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// Neither command talks to the daemon.
	buildx := exec.CommandContext(ctx, b.docker, "buildx", "version")
	buildx.Env = b.env(false)
	if buildx.Run() == nil {
		return true, "buildx plugin present", nil
	}
	version := exec.CommandContext(ctx, b.docker, "--version")
	version.Env = b.env(false)
	out, err := version.Output()
	if err != nil {
		return false, "", fmt.Errorf("running %s --version: %w", b.docker, err)
	}
	major, err := clientMajor(out)
	if err != nil {
		return false, "", err
	}
	if major < 23 {
		return true, fmt.Sprintf("docker CLI %d has BuildKit built in", major), nil
	}
	return false, fmt.Sprintf("docker CLI %d has no buildx plugin", major), nil
}

var versionRE = regexp.MustCompile(`(?i)version v?(\d+)\.`)

// clientMajor reads the major version from `docker --version` ("Docker version 20.10.24+dfsg1,
// build 297e128").
func clientMajor(out []byte) (int, error) {
	m := versionRE.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("no version in docker --version output %q", bytes.TrimSpace(out))
	}
	return strconv.Atoi(string(m[1]))
}
