// Package engine is the one Docker engine Slipway builds, pushes and runs on. It is built once in
// cmd/ and handed to the builder, the registry and the targets: the Engine API client for
// everything that is not a build or a push (inspect, create, start, stop, rename, remove, logs,
// events, Swarm services), and the settings every docker CLI child gets for the two that remain.
package engine

import (
	"context"
	"fmt"
	"maps"
	"os"

	"github.com/docker/docker/client"

	"github.com/slipway-dev/slipway/internal/dockercli"
)

// Engine is a Docker engine reached through its API and through the docker CLI.
type Engine struct {
	// Binary is the docker CLI that builds (BuildKit through buildx) and pushes (credential
	// helpers, per-push configs): the two calls where the CLI earns its place.
	Binary string
	// Host is DOCKER_HOST for the API client and every CLI child; "" means the engine's default
	// socket, or the server's own DOCKER_HOST.
	Host string
	// API is the Engine API client. It negotiates the API version on its first call, so engines
	// from 20.10 (API 1.41) to the newest work.
	API *client.Client
}

// New returns an Engine for the CLI binary ("docker" when empty) and host ("" for the default).
// It does not contact the engine: a host without one still starts, and each call fails with why.
func New(binary, host string) (*Engine, error) {
	if binary == "" {
		binary = "docker"
	}
	if host == "" {
		host = os.Getenv("DOCKER_HOST")
	}
	opts := []client.Opt{client.WithAPIVersionNegotiation()}
	if host != "" {
		opts = append(opts, client.WithHost(host))
	} else {
		opts = append(opts, client.WithHost(client.DefaultDockerHost))
	}
	api, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker engine %q: %w", host, err)
	}
	return &Engine{Binary: binary, Host: host, API: api}, nil
}

// Close releases the API client's connections.
func (e *Engine) Close() error { return e.API.Close() }

// Ping checks that the engine answers, and negotiates the API version.
func (e *Engine) Ping(ctx context.Context) error {
	if _, err := e.API.Ping(ctx); err != nil {
		return fmt.Errorf("docker engine at %s does not answer: %w", e.hostName(), err)
	}
	return nil
}

func (e *Engine) hostName() string {
	if e.Host == "" {
		return client.DefaultDockerHost
	}
	return e.Host
}

// Env is the whole environment of a docker CLI child: the few variables dockercli.Env passes,
// DOCKER_HOST set to the engine's host, and set on top ("" removes a variable).
func (e *Engine) Env(set map[string]string) []string {
	vars := map[string]string{}
	if e.Host != "" {
		vars["DOCKER_HOST"] = e.Host
	}
	maps.Copy(vars, set)
	return dockercli.Env(vars)
}
