// Package testenv gives tests the real services the harness (scripts/test.sh) starts: a fresh
// PostgreSQL database per test, cloned from a migrated template. Outside CI a missing service skips
// the test; with CI=true it fails it, since there a missing service is a broken harness.
package testenv

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/slipway-dev/slipway/internal/store"
	"github.com/slipway-dev/slipway/migrations"
)

// Require returns the environment variable name, failing (CI) or skipping (elsewhere) without it.
func Require(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set: run the tests through `make test`, which starts the services", name)
		}
		t.Skipf("%s is not set: run the tests through `make test` to start the real services", name)
	}
	return v
}

var dbSeq atomic.Int64

// DatabaseURL creates a fresh, migrated database for t, dropped at the end, and returns its URL.
func DatabaseURL(t testing.TB) string {
	t.Helper()
	base := Require(t, "SLIPWAY_TEST_DATABASE_URL")
	// Only stops a hung test: the template's lock can be waited for while another test binary
	// migrates it, and a loaded machine makes every step slow.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connecting to test PostgreSQL: %v", err)
	}
	defer admin.Close(ctx)
	tmpl, err := template(ctx, admin, base)
	if err != nil {
		t.Fatalf("preparing template database: %v", err)
	}
	name := fmt.Sprintf("t_%d_%d_%d", os.Getpid(), time.Now().UnixNano()%1e9, dbSeq.Add(1))
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name+" TEMPLATE "+tmpl); err != nil {
		t.Fatalf("creating test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Logf("dropping test database: %v", err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("dropping test database %s: %v", name, err)
		}
	})
	return WithDatabase(base, name)
}

// Store opens a store on a fresh database (see DatabaseURL).
func Store(t testing.TB) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), DatabaseURL(t), 20)
	if err != nil {
		t.Fatalf("opening store: %v", err)
	}
	t.Cleanup(st.Close)
	return st
}

// template returns a database migrated to the current schema, made once per schema version;
// test binaries of several packages run at once, so an advisory lock guards its creation.
func template(ctx context.Context, admin *pgx.Conn, base string) (string, error) {
	ms, err := store.LoadMigrations(migrations.FS)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, m := range ms {
		h.Write([]byte(m.Name))
		h.Write([]byte(m.SQL))
	}
	name := "slipway_tmpl_" + hex.EncodeToString(h.Sum(nil))[:16]
	if _, err := admin.Exec(ctx, "SELECT pg_advisory_lock(7331)"); err != nil {
		return "", err
	}
	defer admin.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock(7331)") //nolint:errcheck
	var exists bool
	if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return "", err
	}
	if exists {
		return name, nil
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", err
	}
	// A template that failed to migrate is dropped, or every later test would reuse it half-made.
	if err := Migrate(ctx, WithDatabase(base, name), ms); err != nil {
		if _, derr := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); derr != nil {
			return "", errors.Join(err, derr)
		}
		return "", err
	}
	return name, nil
}

// Migrate applies ms to the database at url.
func Migrate(ctx context.Context, url string, ms []store.Migration) error {
	st, err := store.Open(ctx, url, 2)
	if err != nil {
		return err
	}
	defer st.Close()
	_, err = st.Migrate(ctx, ms)
	return err
}

// WithDatabase is the database URL base with its database name replaced by name.
func WithDatabase(base, name string) string {
	u, err := url.Parse(base)
	if err != nil || !strings.HasPrefix(u.Scheme, "postgres") {
		return base
	}
	u.Path = "/" + name
	return u.String()
}

// RequireBinary returns the path of an executable the harness installs, failing (CI) or skipping
// (elsewhere) without it.
func RequireBinary(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed: scripts/services.sh installs it", name)
		}
		t.Skipf("%s is not installed: run the tests through `make test`", name)
	}
	return path
}
