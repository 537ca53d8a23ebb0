package config

import (
	"strings"
	"testing"
)

// A registry password can come from an environment variable the file names, so the file holds
// no secret; a named variable that is missing stops start-up naming the key, not the value.
func TestRegistryPasswordFromEnv(t *testing.T) {
	file := writeFile(t, `
registries:
  - host: registry.example.com
    username: slipway
    password: from-the-file
    password_env: SLIPWAY_REGISTRY_PASSWORD_EXAMPLE
`)
	cfg, err := Load(file, []string{base, "SLIPWAY_REGISTRY_PASSWORD_EXAMPLE=from-the-env"})
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Registries[0].Password.Reveal(); got != "from-the-env" {
		t.Errorf("password %q, want the environment's", got)
	}
	_, err = Load(file, []string{base})
	if err == nil || !strings.Contains(err.Error(), "registries[0].password_env") || strings.Contains(err.Error(), "from-the-file") {
		t.Errorf("missing variable: %v", err)
	}
}
