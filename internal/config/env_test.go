package config

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

// Issue 10, item 3: a variable that fails names itself and the key of the file it sets.
func TestEnvErrorsNameTheKey(t *testing.T) {
	cases := []struct{ env, want string }{
		{"SLIPWAY_QUEUE_LEASE=30", `config: SLIPWAY_QUEUE_LEASE (queue.lease): invalid duration "30": give a unit, like 30s, 5m or 1h`},
		{"SLIPWAY_WORKERS=many", `config: SLIPWAY_WORKERS (workers): "many" is not an integer`},
		{"SLIPWAY_MIGRATE_ON_START=perhaps", `config: SLIPWAY_MIGRATE_ON_START (migrate_on_start): "perhaps" is not a boolean (true or false)`},
		{"SLIPWAY_AWS_ECR_SCAN_ON_PUSH=yes please", `config: SLIPWAY_AWS_ECR_SCAN_ON_PUSH (aws.ecr.scan_on_push): "yes please" is not a boolean (true or false)`},
		{"SLIPWAY_STAGES_BUILD_TIMEOUT=1.5", `config: SLIPWAY_STAGES_BUILD_TIMEOUT (stages.build_timeout): invalid duration "1.5": give a unit, like 30s, 5m or 1h`},
	}
	for _, c := range cases {
		t.Run(c.env, func(t *testing.T) {
			_, err := Load("", []string{base, c.env})
			if err == nil || err.Error() != c.want {
				t.Errorf("got  %v\nwant %s", err, c.want)
			}
		})
	}
}

// Every variable's key is a key of the file, so that its errors point at the right one.
func TestEnvVarKeysExist(t *testing.T) {
	for _, ev := range envVars {
		typ := reflect.TypeFor[Config]()
		for part := range strings.SplitSeq(ev.key, ".") {
			f, ok := fieldByTag(typ, part)
			if !ok {
				t.Errorf("%s: key %s: no %q in %s", ev.name, ev.key, part, typ)
				break
			}
			typ = f.Type
		}
	}
}

func fieldByTag(t reflect.Type, tag string) (reflect.StructField, bool) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return reflect.StructField{}, false
	}
	for i := range t.NumField() {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); name == tag {
			return t.Field(i), true
		}
	}
	return reflect.StructField{}, false
}

// Issue 10, item 3: a SLIPWAY_* variable that is no setting is named with the nearest one, and
// its value is never shown.
func TestUnknownEnv(t *testing.T) {
	cfg := Defaults()
	cfg.Registries = []Registry{{Host: "r.example.com", PasswordEnv: "SLIPWAY_REGISTRY_PASSWORD_ACME"}}
	cases := []struct {
		env  string
		want string // "" for no warning
	}{
		{"SLIPWAY_DATABSE_URL=postgres://u:CANARYpw@db/x", "SLIPWAY_DATABSE_URL is not a known setting; did you mean SLIPWAY_DATABASE_URL?"},
		{"SLIPWAY_WORKER=3", "SLIPWAY_WORKER is not a known setting; did you mean SLIPWAY_WORKERS?"},
		{"SLIPWAY_WEBHOOK_SECRETS=CANARYsecret", "SLIPWAY_WEBHOOK_SECRETS is not a known setting; did you mean SLIPWAY_WEBHOOK_SECRET?"},
		{"SLIPWAY_QUEUE_LAESE=30s", "SLIPWAY_QUEUE_LAESE is not a known setting; did you mean SLIPWAY_QUEUE_LEASE?"},
		{"SLIPWAY_GIT_TIMEOUT=5m", "SLIPWAY_GIT_TIMEOUT is not a known setting (see the configuration reference in README.md)"},
		{"SLIPWAY_FROBNICATE=1", "SLIPWAY_FROBNICATE is not a known setting (see the configuration reference in README.md)"},
		{"SLIPWAY_DATABASE_URL=postgres://x", ""},
		{"SLIPWAY_CONFIG=/etc/slipway.yml", ""},
		{"SLIPWAY_REPOSITORIES=acme/api", ""},
		{"SLIPWAY_REGISTRY_PASSWORD_ACME=CANARY", ""},
		{"SLIPWAY_TEST_DATABASE_URL=postgres://x", ""},
		{"SLIPWAY_CHAOS_SEED=1", ""},
		{"DATABSE_URL=x", ""},
		{"SLIPWAY_DATABASE_URL_FILE=/run/secrets/db", ""},
		{"SLIPWAY_AUTH_OIDC_CLIENT_SECRET_FILE=/run/secrets/oidc", ""},
		{"SLIPWAY_REGISTRY_PASSWORD_ACME_FILE=/run/secrets/acme", ""},
		{"SLIPWAY_DATABASE_URL_FIEL=/run/secrets/CANARY", "SLIPWAY_DATABASE_URL_FIEL is not a known setting; did you mean SLIPWAY_DATABASE_URL_FILE?"},
		{"SLIPWAY_WEBHOOK_SECRETS_FILE=/run/secrets/CANARY", "SLIPWAY_WEBHOOK_SECRETS_FILE is not a known setting; did you mean SLIPWAY_WEBHOOK_SECRET_FILE?"},
		{"SLIPWAY_API_TOKEN_FILE=/run/secrets/CANARY", "SLIPWAY_API_TOKEN_FILE is not a known setting; did you mean SLIPWAY_API_TOKENS_FILE?"},
		{"SLIPWAY_WORKERS_FILE=/etc/CANARY", "SLIPWAY_WORKERS_FILE is not a known setting; only secrets can come from a file: set SLIPWAY_WORKERS"},
		{"SLIPWAY_CONFIG_FILE=/etc/CANARY", "SLIPWAY_CONFIG_FILE is not a known setting; only secrets can come from a file: set SLIPWAY_CONFIG"},
		{"PGPASSWORD_FILE=/run/secrets/pg", ""},
	}
	for _, c := range cases {
		t.Run(c.env, func(t *testing.T) {
			got := cfg.UnknownEnv([]string{c.env})
			var want []string
			if c.want != "" {
				want = []string{c.want}
			}
			if !slices.Equal(got, want) {
				t.Errorf("got %q, want %q", got, want)
			}
			if strings.Contains(strings.Join(got, ""), "CANARY") {
				t.Errorf("a value is shown: %q", got)
			}
		})
	}
}
