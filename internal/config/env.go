package config

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/slipway-dev/slipway/internal/typo"
)

// envVar is one SLIPWAY_* variable: the key of the file it sets, and how. A secret one may also
// come as NAME_FILE (see secretfile.go).
type envVar struct {
	name, key string
	set       func(cfg *Config, v string) error
	secret    bool
}

// envVars are every variable Load reads besides SLIPWAY_CONFIG, the variables
// registries[].password_env name, and the NAME_FILE forms of the secret ones.
var envVars = []envVar{
	str("SLIPWAY_LISTEN_ADDR", "listen_addr", func(c *Config) *string { return &c.ListenAddr }),
	secret("SLIPWAY_DATABASE_URL", "database_url", func(c *Config) *Secret { return &c.DatabaseURL }),
	{name: "SLIPWAY_MIGRATE_ON_START", key: "migrate_on_start", set: func(c *Config, v string) error {
		b, err := parseBool(v)
		c.MigrateOnStart = &b
		return err
	}},
	integer("SLIPWAY_WORKERS", "workers", func(c *Config, n int64) { c.Workers = int(n) }),
	integer("SLIPWAY_BUILDS", "builds", func(c *Config, n int64) { c.Builds = int(n) }),
	str("SLIPWAY_LOG_LEVEL", "log_level", func(c *Config) *string { return &c.LogLevel }),
	str("SLIPWAY_LOG_FORMAT", "log_format", func(c *Config) *string { return &c.LogFormat }),
	secrets("SLIPWAY_WEBHOOK_SECRET", "webhook.secrets", func(c *Config) *[]Secret { return &c.Webhook.Secrets }),
	integer("SLIPWAY_WEBHOOK_MAX_BODY_BYTES", "webhook.max_body_bytes", func(c *Config, n int64) { c.Webhook.MaxBodyBytes = n }),
	duration("SLIPWAY_QUEUE_LEASE", "queue.lease", func(c *Config) *Duration { return &c.Queue.Lease }),
	duration("SLIPWAY_QUEUE_POLL_INTERVAL", "queue.poll_interval", func(c *Config) *Duration { return &c.Queue.PollInterval }),
	duration("SLIPWAY_QUEUE_SHUTDOWN_GRACE", "queue.shutdown_grace", func(c *Config) *Duration { return &c.Queue.ShutdownGrace }),
	duration("SLIPWAY_QUEUE_RESCUE_EVERY", "queue.rescue_every", func(c *Config) *Duration { return &c.Queue.RescueEvery }),
	duration("SLIPWAY_QUEUE_BACKOFF_BASE", "queue.backoff_base", func(c *Config) *Duration { return &c.Queue.BackoffBase }),
	secrets("SLIPWAY_API_TOKENS", "api.tokens", func(c *Config) *[]Secret { return &c.API.Tokens }),
	boolean("SLIPWAY_METRICS_PUBLIC", "metrics.public", func(c *Config) *bool { return &c.Metrics.Public }),
	secret("SLIPWAY_AUTH_OIDC_CLIENT_SECRET", "auth.oidc.client_secret", func(c *Config) *Secret { return &c.Auth.OIDC.ClientSecret }),
	str("SLIPWAY_PIPELINE_FILE", "pipeline_file", func(c *Config) *string { return &c.PipelineFile }),
	str("SLIPWAY_GIT_CACHE_DIR", "git.cache_dir", func(c *Config) *string { return &c.Git.CacheDir }),
	str("SLIPWAY_GIT_WORK_DIR", "git.work_dir", func(c *Config) *string { return &c.Git.WorkDir }),
	str("SLIPWAY_STATE_DIR", "state_dir", func(c *Config) *string { return &c.StateDir }),
	secret("SLIPWAY_GIT_TOKEN", "git.token", func(c *Config) *Secret { return &c.Git.Token }),
	boolean("SLIPWAY_GIT_ALLOW_INSECURE_URLS", "git.allow_insecure_urls", func(c *Config) *bool { return &c.Git.AllowInsecureURLs }),
	str("SLIPWAY_GITHUB_URL", "github.url", func(c *Config) *string { return &c.GitHub.URL }),
	str("SLIPWAY_DOCKER_BINARY", "docker.binary", func(c *Config) *string { return &c.Docker.Binary }),
	str("SLIPWAY_DOCKER_HOST", "docker.host", func(c *Config) *string { return &c.Docker.Host }),
	str("SLIPWAY_DOCKER_BUILD_NETWORK", "docker.build_network", func(c *Config) *string { return &c.Docker.BuildNetwork }),
	str("SLIPWAY_DOCKER_BUILDKIT", "docker.buildkit", func(c *Config) *string { return &c.Docker.BuildKit }),
	duration("SLIPWAY_DOCKER_STABLE_FOR", "docker.stable_for", func(c *Config) *Duration { return &c.Docker.StableFor }),
	duration("SLIPWAY_DOCKER_SWARM_UPDATE_MONITOR", "docker.swarm_update_monitor", func(c *Config) *Duration { return &c.Docker.SwarmUpdateMonitor }),
	boolean("SLIPWAY_POLICY_ALLOW_ALL", "policy.allow_all", func(c *Config) *bool { return &c.Policy.AllowAll }),
	{name: "SLIPWAY_POLICY_ADOPT", key: "policy.adopt", set: func(c *Config, v string) error { c.Policy.Adopt = splitList(v); return nil }},
	duration("SLIPWAY_STAGES_BUILD_TIMEOUT", "stages.build_timeout", func(c *Config) *Duration { return &c.Stages.Build }),
	duration("SLIPWAY_STAGES_PUSH_TIMEOUT", "stages.push_timeout", func(c *Config) *Duration { return &c.Stages.Push }),
	duration("SLIPWAY_STAGES_DEPLOY_TIMEOUT", "stages.deploy_timeout", func(c *Config) *Duration { return &c.Stages.Deploy }),
	str("SLIPWAY_AWS_REGION", "aws.region", func(c *Config) *string { return &c.AWS.Region }),
	str("SLIPWAY_AWS_ROLE_ARN", "aws.role_arn", func(c *Config) *string { return &c.AWS.RoleARN }),
	secret("SLIPWAY_AWS_EXTERNAL_ID", "aws.external_id", func(c *Config) *Secret { return &c.AWS.ExternalID }),
	str("SLIPWAY_AWS_ECS_ENDPOINT", "aws.endpoints.ecs", func(c *Config) *string { return &c.AWS.Endpoints.ECS }),
	str("SLIPWAY_AWS_ECR_ENDPOINT", "aws.endpoints.ecr", func(c *Config) *string { return &c.AWS.Endpoints.ECR }),
	str("SLIPWAY_AWS_STS_ENDPOINT", "aws.endpoints.sts", func(c *Config) *string { return &c.AWS.Endpoints.STS }),
	str("SLIPWAY_AWS_ECR_REGISTRY_OVERRIDE", "aws.ecr.registry_override", func(c *Config) *string { return &c.AWS.ECR.RegistryOverride }),
	boolean("SLIPWAY_AWS_ECR_CREATE_REPOSITORIES", "aws.ecr.create_repositories", func(c *Config) *bool { return &c.AWS.ECR.CreateRepositories }),
	boolean("SLIPWAY_AWS_ECR_TAG_IMMUTABILITY", "aws.ecr.tag_immutability", func(c *Config) *bool { return &c.AWS.ECR.TagImmutability }),
	boolean("SLIPWAY_AWS_ECR_SCAN_ON_PUSH", "aws.ecr.scan_on_push", func(c *Config) *bool { return &c.AWS.ECR.ScanOnPush }),
	{name: "SLIPWAY_REPOSITORIES", key: "repositories", set: setRepositories},
}

func str(name, key string, field func(*Config) *string) envVar {
	return envVar{name: name, key: key, set: func(c *Config, v string) error { *field(c) = v; return nil }}
}

func secret(name, key string, field func(*Config) *Secret) envVar {
	return envVar{name: name, key: key, secret: true, set: func(c *Config, v string) error { *field(c) = Secret(v); return nil }}
}

// secrets reads a comma-separated list, as used while rotating a secret.
func secrets(name, key string, field func(*Config) *[]Secret) envVar {
	return envVar{name: name, key: key, secret: true, set: func(c *Config, v string) error {
		var out []Secret
		for _, s := range splitList(v) {
			out = append(out, Secret(s))
		}
		*field(c) = out
		return nil
	}}
}

func integer(name, key string, set func(*Config, int64)) envVar {
	return envVar{name: name, key: key, set: func(c *Config, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not an integer", v)
		}
		set(c, n)
		return nil
	}}
}

func boolean(name, key string, field func(*Config) *bool) envVar {
	return envVar{name: name, key: key, set: func(c *Config, v string) (err error) {
		*field(c), err = parseBool(v)
		return err
	}}
}

func parseBool(v string) (bool, error) {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%q is not a boolean (true or false)", v)
	}
	return b, nil
}

func duration(name, key string, field func(*Config) *Duration) envVar {
	return envVar{name: name, key: key, set: func(c *Config, v string) error { return field(c).UnmarshalText([]byte(v)) }}
}

// splitList reads a comma-separated list, blanks dropped.
func splitList(v string) []string {
	var out []string
	for s := range strings.SplitSeq(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// setRepositories reads "owner/a,owner/b@main" (branch patterns after @, joined by |).
func setRepositories(c *Config, v string) error {
	c.Repositories = nil
	for _, item := range splitList(v) {
		name, branches, _ := strings.Cut(item, "@")
		r := Repository{Name: name}
		if branches != "" {
			r.Branches = strings.Split(branches, "|")
		}
		c.Repositories = append(c.Repositories, r)
	}
	return nil
}

// EnvMap is env (NAME=value lines) as a map, the last of a name winning (as the flags appended
// last do).
func EnvMap(env []string) map[string]string {
	m := map[string]string{}
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// applyEnv overrides cfg with the environment (whole: registries[].password_env may name any
// variable). Each error names the variable and the key it sets; only values that are not secret
// are quoted.
func applyEnv(cfg *Config, vars map[string]string) error {
	var errs []error
	for _, ev := range envVars {
		v, ok := vars[ev.name]
		if !ok {
			continue
		}
		if err := ev.set(cfg, v); err != nil {
			errs = append(errs, fmt.Errorf("%s (%s): %w", ev.name, ev.key, err))
		}
	}
	for i, r := range cfg.Registries {
		if r.PasswordEnv == "" {
			continue
		}
		v, ok := vars[r.PasswordEnv]
		if !ok || v == "" {
			errs = append(errs, fmt.Errorf("registries[%d].password_env: environment variable %s is not set (nor %s_FILE)", i, r.PasswordEnv, r.PasswordEnv))
			continue
		}
		cfg.Registries[i].Password = Secret(v)
	}
	return errors.Join(errs...)
}

// harnessPrefixes are SLIPWAY_* variables of the test, benchmark and demo scripts, which share
// the server's environment but are none of its settings.
var harnessPrefixes = []string{"SLIPWAY_TEST_", "SLIPWAY_BENCH_", "SLIPWAY_CHAOS", "SLIPWAY_DEMO_", "SLIPWAY_E2E",
	"SLIPWAY_SERVICES", "SLIPWAY_CANCEL_TEST"}

// UnknownEnv returns one warning per SLIPWAY_* variable of env that is no setting (a typo is
// otherwise silently ignored), naming the closest known one. Variables that c's
// registries[].password_env name are known, and so is NAME_FILE for every secret NAME. Values
// are never shown.
func (c Config) UnknownEnv(env []string) []string {
	known := []string{"SLIPWAY_CONFIG"}
	for _, ev := range envVars {
		known = append(known, ev.name)
	}
	for _, r := range c.Registries {
		if r.PasswordEnv != "" {
			known = append(known, r.PasswordEnv)
		}
	}
	for _, name := range c.secretEnvNames() {
		known = append(known, name+fileSuffix)
	}
	var names []string
	for name := range EnvMap(env) {
		if !strings.HasPrefix(name, "SLIPWAY_") || slices.Contains(known, name) ||
			slices.ContainsFunc(harnessPrefixes, func(p string) bool { return strings.HasPrefix(name, p) }) {
			continue
		}
		names = append(names, name)
	}
	slices.Sort(names)
	var out []string
	for _, name := range names {
		msg := name + " is not a known setting"
		if plain, ok := strings.CutSuffix(name, fileSuffix); ok && slices.Contains(known, plain) {
			// SLIPWAY_WORKERS_FILE: the nearest name is SLIPWAY_WORKERS, which takes no file.
			msg += "; only secrets can come from a file: set " + plain
		} else if near := closest(name, known); near != "" {
			msg += "; did you mean " + near + "?"
		} else {
			msg += " (see the configuration reference in README.md)"
		}
		out = append(out, msg)
	}
	return out
}

// closest is the name of known nearest to name, "" when none is near enough to be a typo: a
// third of the name may differ (SLIPWAY_DATABSE_URL, SLIPWAY_WORKER); more is another name.
func closest(name string, known []string) string {
	bare := make([]string, len(known))
	for i, k := range known {
		bare[i] = strings.TrimPrefix(k, "SLIPWAY_")
	}
	short := strings.TrimPrefix(name, "SLIPWAY_")
	if near := typo.Closest(short, bare, max(2, len(short)/3)); near != "" {
		return "SLIPWAY_" + near
	}
	return ""
}
