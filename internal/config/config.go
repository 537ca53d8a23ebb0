// Package config loads the server configuration from a YAML file and SLIPWAY_* environment
// variables (the environment wins), and validates it, naming the bad key in every error.
package config

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/slipway-dev/slipway/internal/pipeline"
)

// Secret is a value that is never printed: not by fmt, not by slog, not in JSON.
type Secret string

func (Secret) String() string                 { return "[redacted]" }
func (Secret) GoString() string               { return "[redacted]" }
func (Secret) MarshalJSON() ([]byte, error)   { return []byte(`"[redacted]"`), nil }
func (s Secret) Reveal() string               { return string(s) }
func (s Secret) MarshalText() ([]byte, error) { return []byte("[redacted]"), nil }

// Secrets are one secret or several (while rotating); in YAML a single value or a list.
type Secrets []Secret

// UnmarshalYAML accepts a scalar or a list. Its errors never quote the value.
func (s *Secrets) UnmarshalYAML(unmarshal func(any) error) error {
	var one Secret
	if err := unmarshal(&one); err == nil {
		*s = Secrets{one}
		return nil
	}
	var many []Secret
	if err := unmarshal(&many); err != nil {
		return errors.New("must be a secret or a list of secrets")
	}
	*s = many
	return nil
}

// Config is the whole server configuration.
type Config struct {
	ListenAddr     string `yaml:"listen_addr"`
	DatabaseURL    Secret `yaml:"database_url"`
	MigrateOnStart *bool  `yaml:"migrate_on_start"`
	Workers        int    `yaml:"workers"`
	Builds         int    `yaml:"builds"`
	// StateDir is Slipway's own 0700 directory for what must not outlive a process (checkouts,
	// each push's Docker config with its registry login); "" is a per-user one under TMPDIR.
	StateDir     string          `yaml:"state_dir"`
	LogLevel     string          `yaml:"log_level"`
	LogFormat    string          `yaml:"log_format"`
	Webhook      Webhook         `yaml:"webhook"`
	Queue        Queue           `yaml:"queue"`
	Repositories []Repository    `yaml:"repositories"`
	Orgs         []Org           `yaml:"orgs"`
	GitHub       GitHub          `yaml:"github"`
	PipelineFile string          `yaml:"pipeline_file"`
	Policy       pipeline.Policy `yaml:"policy"`
	Git          Git             `yaml:"git"`
	Docker       Docker          `yaml:"docker"`
	Registries   []Registry      `yaml:"registries"`
	Stages       Stages          `yaml:"stages"`
	API          APIConfig       `yaml:"api"`
	AWS          AWS             `yaml:"aws"`
	Auth         Auth            `yaml:"auth"`
	Metrics      Metrics         `yaml:"metrics"`
}

// Metrics configures /metrics.
type Metrics struct {
	// Public serves /metrics to anonymous clients (a Prometheus on a trusted network); otherwise
	// a scrape needs a bearer token, like any API call.
	Public bool `yaml:"public"`
}

// APIConfig guards /api/v1.
type APIConfig struct {
	Tokens []Secret `yaml:"tokens"` // bearer tokens; none means the API refuses every call
}

// Git configures the mirror cache that deployments check commits out of.
type Git struct {
	CacheDir string `yaml:"cache_dir"`
	WorkDir  string `yaml:"work_dir"`
	// Token is sent, over https only, to the host of github.url, for repositories fetched from
	// there without a token of their own.
	Token   Secret   `yaml:"token"`
	Timeout Duration `yaml:"timeout"`
	// AllowInsecureURLs lets clone URLs (and github.url) be plain http, file:// or a local path.
	// No token is ever sent over them. For tests and local mirrors only.
	AllowInsecureURLs bool `yaml:"allow_insecure_urls"`
}

// GitHub is where repositories without a clone_url of their own are fetched from.
type GitHub struct {
	URL string `yaml:"url"` // base URL; a repository's clone URL is URL/owner/name.git
}

// Docker configures how Slipway reaches the container engine that builds and runs images.
type Docker struct {
	Binary       string `yaml:"binary"`
	Host         string `yaml:"host"`          // DOCKER_HOST for the engine; "" inherits
	BuildNetwork string `yaml:"build_network"` // docker build --network
	BuildKit     string `yaml:"buildkit"`      // auto, on, off
	// StableFor is how long a new container must keep running before the docker target calls it up.
	StableFor Duration `yaml:"stable_for"`
	// SwarmUpdateMonitor is how long Swarm watches updated tasks before it calls an update done.
	SwarmUpdateMonitor Duration `yaml:"swarm_update_monitor"`
}

// Registry holds credentials for one registry host.
type Registry struct {
	Host     string `yaml:"host"`
	Username string `yaml:"username"`
	Password Secret `yaml:"password"`
	// PasswordEnv names an environment variable holding the password, so that it need not be
	// written in the file (SLIPWAY_REGISTRY_PASSWORD_ACME, say); it wins over password.
	PasswordEnv string `yaml:"password_env"`
	Insecure    bool   `yaml:"insecure"` // plain http
}

// Stages bounds each stage of a deployment.
type Stages struct {
	Build  Duration `yaml:"build_timeout"`
	Push   Duration `yaml:"push_timeout"`
	Deploy Duration `yaml:"deploy_timeout"`
}

// Webhook configures POST /webhooks/github.
type Webhook struct {
	Secrets      []Secret `yaml:"secrets"`
	MaxBodyBytes int64    `yaml:"max_body_bytes"`
}

// Queue tunes the workers.
type Queue struct {
	Lease         Duration `yaml:"lease"`
	PollInterval  Duration `yaml:"poll_interval"`
	ShutdownGrace Duration `yaml:"shutdown_grace"`
	RescueEvery   Duration `yaml:"rescue_every"`
	BackoffBase   Duration `yaml:"backoff_base"`
}

// Repository is one repository Slipway accepts pushes from. Validate canonicalises it: the name
// lower-cased (GitHub's names are case-insensitive), the clone URL defaulted.
type Repository struct {
	Name     string   `yaml:"name"`      // owner/name
	CloneURL string   `yaml:"clone_url"` // default: github.url/owner/name.git; never the payload's
	Branches []string `yaml:"branches"`  // path.Match patterns; default: every branch
	// Token is sent, over https only, to the clone URL's host; default git.token when the clone
	// URL is on github.url's host.
	Token Secret `yaml:"token"`
	// WebhookSecret signs this repository's deliveries, in place of its organisation's and the
	// global ones; several while rotating.
	WebhookSecret Secrets `yaml:"webhook_secret"`
}

// Org holds what a GitHub organisation (or user) shares across its repositories.
type Org struct {
	Name string `yaml:"name"` // the login, as in owner/name
	// WebhookSecret signs the deliveries of its repositories that have no secret of their own,
	// in place of the global ones; several while rotating.
	WebhookSecret Secrets `yaml:"webhook_secret"`
}

// Duration is a time.Duration written as "30s" in YAML.
type Duration time.Duration

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		if _, nerr := strconv.ParseFloat(string(b), 64); nerr == nil {
			return fmt.Errorf("invalid duration %q: give a unit, like 30s, 5m or 1h", string(b))
		}
		return fmt.Errorf("invalid duration %q (like 30s, 5m or 1h30m)", string(b))
	}
	*d = Duration(v)
	return nil
}

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Defaults are applied before the file and the environment.
func Defaults() Config {
	return Config{
		ListenAddr:   ":8080",
		Workers:      8,
		LogLevel:     "info",
		LogFormat:    "json",
		Webhook:      Webhook{MaxBodyBytes: 25 << 20},
		PipelineFile: ".slipway.yml",
		Git:          Git{CacheDir: "/var/lib/slipway/git", Timeout: Duration(10 * time.Minute)},
		GitHub:       GitHub{URL: "https://github.com"},
		Docker:       Docker{Binary: "docker", BuildKit: "auto"},
		Stages:       Stages{Build: Duration(30 * time.Minute), Push: Duration(10 * time.Minute), Deploy: Duration(15 * time.Minute)},
		Queue: Queue{
			Lease:         Duration(30 * time.Second),
			PollInterval:  Duration(2 * time.Second),
			ShutdownGrace: Duration(30 * time.Second),
			RescueEvery:   Duration(5 * time.Second),
			BackoffBase:   Duration(2 * time.Second),
		},
	}
}

// Load reads the file explicitPath (the --config flag) or, when it is "", the one SLIPWAY_CONFIG
// names, then the SLIPWAY_* variables of env (secrets also as NAME_FILE=path), and validates the
// result. PGPASSWORD_FILE puts the database password into database_url; PGPASSWORD itself is
// left to the driver.
func Load(explicitPath string, env []string) (Config, error) {
	vars := EnvMap(env)
	cfg := Defaults()
	if err := readFile(explicitPath, vars, &cfg); err != nil {
		return Config{}, err
	}
	// The file names the registries' password variables, so their NAME_FILE forms are read now.
	files, err := readSecretFiles(vars, cfg.secretEnvNames())
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	pgPassword, fromFile := files["PGPASSWORD"]
	delete(files, "PGPASSWORD") // the driver's, not a setting
	maps.Copy(vars, files)
	if err := applyEnv(&cfg, vars); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	if fromFile && cfg.DatabaseURL != "" {
		if cfg.DatabaseURL, err = withPassword(cfg.DatabaseURL, pgPassword); err != nil {
			return Config{}, fmt.Errorf("config: PGPASSWORD_FILE: %w", err)
		}
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	cfg.Policy.Registries = cfg.RegistryHosts()
	return cfg, nil
}

// readFile reads the file explicitPath or, when it is "", the one SLIPWAY_CONFIG names (if any)
// over cfg.
func readFile(explicitPath string, vars map[string]string, cfg *Config) error {
	file := explicitPath
	if file == "" {
		file = vars["SLIPWAY_CONFIG"]
	}
	if file == "" {
		return nil
	}
	// The error names where the file's name came from: the flag or the variable.
	from := "--config " + file
	if explicitPath == "" {
		from = "SLIPWAY_CONFIG=" + file
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("config: %s: %s", from, readProblem(err))
	}
	if err := decodeFile(file, data, cfg); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

// ListenAddr is the address serve listens on, as Load would find it, without reading or
// checking anything else (no secret, no database URL): for the health check.
func ListenAddr(explicitPath string, env []string) (string, error) {
	vars := EnvMap(env)
	cfg := Defaults()
	if err := readFile(explicitPath, vars, &cfg); err != nil {
		return "", err
	}
	if v, ok := vars["SLIPWAY_LISTEN_ADDR"]; ok {
		cfg.ListenAddr = v
	}
	if _, _, err := net.SplitHostPort(cfg.ListenAddr); err != nil {
		return "", fmt.Errorf("config: listen_addr (SLIPWAY_LISTEN_ADDR): %q is not host:port", cfg.ListenAddr)
	}
	return cfg.ListenAddr, nil
}

// RegistryHosts are the registry hosts this config names: registries[], and with AWS on, the ECR
// registries of its region and the ECR registry override. The policy lets rules without images
// push to these only.
func (c *Config) RegistryHosts() []string {
	var hosts []string
	for _, r := range c.Registries {
		hosts = append(hosts, strings.ToLower(r.Host))
	}
	if c.AWS.Enabled() {
		hosts = append(hosts, "*.dkr.ecr."+strings.ToLower(c.AWS.Region)+".amazonaws.com")
		if o := c.AWS.ECR.RegistryOverride; o != "" {
			hosts = append(hosts, strings.ToLower(o))
		}
	}
	return hosts
}

// Validate checks every key and names each bad one. It also canonicalises repositories and orgs
// (names lower-cased, clone URLs defaulted from github.url); doing so twice changes nothing.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if _, _, err := net.SplitHostPort(c.ListenAddr); err != nil {
		bad("listen_addr (SLIPWAY_LISTEN_ADDR)", "%q is not host:port", c.ListenAddr)
	}
	if c.DatabaseURL == "" {
		bad("database_url (SLIPWAY_DATABASE_URL)", "required")
	} else if u, err := url.Parse(string(c.DatabaseURL)); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		bad("database_url (SLIPWAY_DATABASE_URL)", "must be a postgres:// URL (value not shown)")
	}
	if c.Workers < 1 || c.Workers > 256 {
		bad("workers (SLIPWAY_WORKERS)", "%d is out of range 1..256", c.Workers)
	}
	if c.Builds < 0 || c.Builds > 256 {
		bad("builds (SLIPWAY_BUILDS)", "%d is out of range 0..256 (0: two per CPU)", c.Builds)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log_level (SLIPWAY_LOG_LEVEL)", "%q is not one of debug, info, warn, error", c.LogLevel)
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		bad("log_format (SLIPWAY_LOG_FORMAT)", "%q is not json or text", c.LogFormat)
	}
	for i, s := range c.Webhook.Secrets {
		if len(s) < 8 {
			bad(fmt.Sprintf("webhook.secrets[%d]", i), "too short (at least 8 characters)")
		}
	}
	if c.Webhook.MaxBodyBytes < 1024 || c.Webhook.MaxBodyBytes > 1<<30 {
		bad("webhook.max_body_bytes (SLIPWAY_WEBHOOK_MAX_BODY_BYTES)", "%d is out of range 1024..1073741824", c.Webhook.MaxBodyBytes)
	}
	q := c.Queue
	for _, d := range []struct {
		key string
		v   Duration
		min time.Duration
	}{
		{"queue.lease", q.Lease, 300 * time.Millisecond},
		{"queue.poll_interval", q.PollInterval, 10 * time.Millisecond},
		{"queue.shutdown_grace", q.ShutdownGrace, 0},
		{"queue.rescue_every", q.RescueEvery, 10 * time.Millisecond},
		{"queue.backoff_base", q.BackoffBase, 0},
	} {
		if d.v.D() < d.min {
			bad(d.key, "%s is below the minimum %s", d.v.D(), d.min)
		}
	}
	if err := c.Policy.Validate(); err != nil {
		bad("policy", "%v", err)
	}
	if c.PipelineFile == "" || strings.HasPrefix(c.PipelineFile, "/") || strings.Contains(c.PipelineFile, "..") {
		bad("pipeline_file (SLIPWAY_PIPELINE_FILE)", "%q must be a path inside the repository", c.PipelineFile)
	}
	if c.Git.CacheDir == "" {
		bad("git.cache_dir (SLIPWAY_GIT_CACHE_DIR)", "required")
	}
	switch c.Docker.BuildKit {
	case "auto", "on", "off":
	default:
		bad("docker.buildkit (SLIPWAY_DOCKER_BUILDKIT)", "%q is not auto, on or off", c.Docker.BuildKit)
	}
	for i, r := range c.Registries {
		if r.Host == "" || strings.ContainsAny(r.Host, "/ ") {
			bad(fmt.Sprintf("registries[%d].host", i), "%q is not a registry host[:port]", r.Host)
		}
	}
	for _, st := range []struct {
		key string
		v   Duration
	}{{"stages.build_timeout", c.Stages.Build}, {"stages.push_timeout", c.Stages.Push}, {"stages.deploy_timeout", c.Stages.Deploy}} {
		if st.v.D() <= 0 {
			bad(st.key, "must be positive")
		}
	}
	for i, tok := range c.API.Tokens {
		if len(tok) < 16 {
			bad(fmt.Sprintf("api.tokens[%d] (SLIPWAY_API_TOKENS)", i), "too short (at least 16 characters)")
		}
	}
	c.validateRepositories(bad)
	c.validateAWS(bad)
	c.validateAuth(bad)
	return errors.Join(errs...)
}

// ValidateServe checks what only `slipway serve` needs: a secret for every repository's
// deliveries (its own, its organisation's or a global one).
func (c *Config) ValidateServe() error {
	if len(c.Webhook.Secrets) > 0 {
		return nil
	}
	var errs []error
	for i, r := range c.Repositories {
		if len(c.WebhookSecrets(r.Name)) == 0 {
			errs = append(errs, fmt.Errorf("repositories[%d].webhook_secret: %s has no webhook secret: give it one, "+
				"its organisation one (orgs[].webhook_secret), or set webhook.secrets (SLIPWAY_WEBHOOK_SECRET)", i, r.Name))
		}
	}
	if len(c.Repositories) == 0 {
		errs = append(errs, errors.New("webhook.secrets (SLIPWAY_WEBHOOK_SECRET): at least one secret is required"))
	}
	return errors.Join(errs...)
}

// MigrateFirst reports whether serve migrates on start (default yes).
func (c *Config) MigrateFirst() bool { return c.MigrateOnStart == nil || *c.MigrateOnStart }
