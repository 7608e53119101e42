package database_test

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/lambdaflow/lambdaflow/internal/database"
	"github.com/lambdaflow/lambdaflow/internal/database/databasetest"
)

func TestRebind(t *testing.T) {
	tests := []struct {
		query, postgres string
	}{
		{"SELECT 1", "SELECT 1"},
		{"SELECT a FROM t WHERE b = ? AND c IN (?, ?)", "SELECT a FROM t WHERE b = $1 AND c IN ($2, $3)"},
		{"SELECT '?' || ? FROM \"a?b\" WHERE x = ?", "SELECT '?' || $1 FROM \"a?b\" WHERE x = $2"},
		{"SELECT 'it''s ?', ?", "SELECT 'it''s ?', $1"},
	}
	for _, tt := range tests {
		if got := database.Rebind(database.Postgres, tt.query); got != tt.postgres {
			t.Errorf("Rebind(postgres, %q) = %q, want %q", tt.query, got, tt.postgres)
		}
		if got := database.Rebind(database.SQLite, tt.query); got != tt.query {
			t.Errorf("Rebind(sqlite, %q) = %q, want it unchanged", tt.query, got)
		}
	}
}

// TestMigrationsMirror checks that every SQLite migration has a PostgreSQL
// migration of the same name and the other way round, so neither schema
// can fall behind.
func TestMigrationsMirror(t *testing.T) {
	sqlite, postgres := database.MigrationNames()
	if len(sqlite) == 0 {
		t.Fatal("no SQLite migration found")
	}
	if !slices.Equal(sqlite, postgres) {
		t.Errorf("SQLite migrations %v and PostgreSQL migrations %v differ", sqlite, postgres)
	}
}

func TestMigrationsApplyOnce(t *testing.T) {
	databasetest.Run(t, func(t *testing.T, db *database.DB) {
		var n int
		if err := db.QueryRowContext(t.Context(), "SELECT COUNT(*) FROM schema_migrations").Scan(&n); err != nil {
			t.Fatal(err)
		}
		sqlite, _ := database.MigrationNames()
		if n != len(sqlite) {
			t.Errorf("schema_migrations has %d rows, want %d", n, len(sqlite))
		}
	})
}

// TestConcurrentPostgresMigrations opens one fresh schema from several
// goroutines at once: the advisory lock must let each migration run once
// and every open succeed.
func TestConcurrentPostgresMigrations(t *testing.T) {
	t.Parallel()
	url := databasetest.SchemaURL(t)
	const nodes = 4
	var wg sync.WaitGroup
	errs := make([]error, nodes)
	dbs := make([]*database.DB, nodes)
	for i := range nodes {
		wg.Go(func() {
			dbs[i], errs[i] = database.OpenPostgres(t.Context(), url)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("open %d: %v", i, err)
			continue
		}
		defer dbs[i].Close()
	}
	if t.Failed() {
		return
	}
	var n int
	if err := dbs[0].QueryRowContext(t.Context(), "SELECT COUNT(*) FROM schema_migrations").Scan(&n); err != nil {
		t.Fatal(err)
	}
	sqlite, _ := database.MigrationNames()
	if n != len(sqlite) {
		t.Errorf("schema_migrations has %d rows, want %d", n, len(sqlite))
	}
}

func TestLockNodeRejectsSecondNode(t *testing.T) {
	t.Parallel()
	url := databasetest.SchemaURL(t)
	first, err := database.OpenPostgres(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	second, err := database.OpenPostgres(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()

	if err := first.LockNode(t.Context()); err != nil {
		t.Fatalf("first node: %v", err)
	}
	if err := second.LockNode(t.Context()); !errors.Is(err, database.ErrNodeLocked) {
		t.Fatalf("second node: %v, want ErrNodeLocked", err)
	}
	if err := first.Close(); err != nil {
		t.Fatalf("closing the first node: %v", err)
	}
	if err := second.LockNode(t.Context()); err != nil {
		t.Errorf("second node after the first closed: %v", err)
	}
}

func TestLockNodeSeparatesSchemas(t *testing.T) {
	t.Parallel()
	for range 2 {
		db, err := database.OpenPostgres(t.Context(), databasetest.SchemaURL(t))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := db.LockNode(t.Context()); err != nil {
			t.Errorf("node on its own schema: %v", err)
		}
	}
}

func TestRedactURL(t *testing.T) {
	got := database.RedactURL("postgres://app:secret@db.example:5432/lambdaflow?sslmode=require")
	if want := "postgres://app:xxxxx@db.example:5432/lambdaflow?sslmode=require"; got != want {
		t.Errorf("RedactURL = %q, want %q", got, want)
	}
	got = database.RedactURL("postgres://app@db.example/lambdaflow?password=secret&sslmode=require")
	if strings.Contains(got, "secret") {
		t.Errorf("RedactURL with a password parameter = %q, which shows the password", got)
	}
}

func TestOpenPostgresNodeRejectsSecondNode(t *testing.T) {
	t.Parallel()
	url := databasetest.SchemaURL(t)
	first, err := database.OpenPostgresNode(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	second, err := database.OpenPostgresNode(t.Context(), url)
	if !errors.Is(err, database.ErrNodeLocked) {
		if second != nil {
			second.Close()
		}
		t.Fatalf("second node: %v, want ErrNodeLocked", err)
	}
}
