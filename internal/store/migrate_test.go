package store_test

import (
	"context"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5"

	"github.com/slipway-dev/slipway/internal/store"
	"github.com/slipway-dev/slipway/internal/testenv"
	"github.com/slipway-dev/slipway/migrations"
)

// Replicas starting together each run Migrate: every migration is applied exactly once.
func TestMigrateConcurrently(t *testing.T) {
	url := testenv.DatabaseURL(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// Start from an empty schema: the test database comes migrated.
	if _, err := conn.Exec(ctx, `DROP SCHEMA public CASCADE; CREATE SCHEMA public`); err != nil {
		t.Fatal(err)
	}
	ms, err := store.LoadMigrations(migrations.FS)
	if err != nil || len(ms) == 0 {
		t.Fatalf("migrations: %v %d", err, len(ms))
	}
	var wg sync.WaitGroup
	applied := make([][]string, 4)
	for i := range applied {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := store.Open(ctx, url, 2)
			if err != nil {
				t.Error(err)
				return
			}
			defer st.Close()
			applied[i], err = st.Migrate(ctx, ms)
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	total := 0
	for _, a := range applied {
		total += len(a)
	}
	if total != len(ms) {
		t.Errorf("applied %d migrations in all, want %d: %v", total, len(ms), applied)
	}
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil || n != len(ms) {
		t.Errorf("schema_migrations has %d rows (%v)", n, err)
	}
}

// A failing migration rolls back whole and is not recorded; the ones before it stay.
func TestMigrateFailureRollsBack(t *testing.T) {
	st := testenv.Store(t)
	ctx := context.Background()
	ms, err := store.LoadMigrations(fstest.MapFS{
		"9001_good.sql": {Data: []byte(`CREATE TABLE mig_good (id int)`)},
		"9002_bad.sql":  {Data: []byte(`CREATE TABLE mig_bad (id int); SELECT * FROM no_such_table`)},
		"README.md":     {Data: []byte(`not a migration`)},
	})
	if err != nil || len(ms) != 2 {
		t.Fatalf("load: %v %d", err, len(ms))
	}
	applied, err := st.Migrate(ctx, ms)
	if err == nil || len(applied) != 1 || applied[0] != "9001_good.sql" {
		t.Fatalf("applied %v, err %v", applied, err)
	}
	var exists bool
	if err := st.Pool().QueryRow(ctx, `SELECT to_regclass('mig_bad') IS NOT NULL`).Scan(&exists); err != nil || exists {
		t.Errorf("half-applied migration left mig_bad behind (%v)", err)
	}
	if n, err := st.MigrationsPending(ctx, ms); err != nil || n != 1 {
		t.Errorf("pending = %d, %v", n, err)
	}
}

func TestLoadMigrationsRejectsDuplicateVersions(t *testing.T) {
	_, err := store.LoadMigrations(fstest.MapFS{
		"0001_a.sql": {Data: []byte(`SELECT 1`)},
		"0001_b.sql": {Data: []byte(`SELECT 1`)},
	})
	if err == nil {
		t.Fatal("duplicate versions accepted")
	}
}
