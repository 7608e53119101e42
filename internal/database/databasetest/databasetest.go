// Package databasetest opens fresh databases for tests, on SQLite and on
// PostgreSQL, so that each store's tests run against both backends.
//
// PostgreSQL tests use the server at LAMBDAFLOW_TEST_DATABASE_URL, such
// as postgres://postgres@127.0.0.1:55432/lambdaflow_test?sslmode=disable
// (.ci/postgres starts one). Without it they are skipped, unless CI is set,
// where they fail. Each test gets a schema or database of its own, dropped
// when it ends, so tests run in parallel.
package databasetest

import (
	"context"
	"database/sql"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver

	"github.com/lambdaflow/lambdaflow/internal/database"
)

// URLVariable is the environment variable that holds the URL of the
// PostgreSQL test database.
const URLVariable = "LAMBDAFLOW_TEST_DATABASE_URL"

// Run runs test once per backend, as the parallel subtests "sqlite" and
// "postgres", each with a freshly migrated database.
func Run(t *testing.T, test func(t *testing.T, db *database.DB)) {
	t.Helper()
	for _, dialect := range []database.Dialect{database.SQLite, database.Postgres} {
		t.Run(string(dialect), func(t *testing.T) {
			t.Parallel()
			test(t, Open(t, dialect))
		})
	}
}

// Open returns a freshly migrated database of the dialect, closed when
// the test ends. A PostgreSQL one lives in a schema of its own.
func Open(t testing.TB, dialect database.Dialect) *database.DB {
	t.Helper()
	var (
		db  *database.DB
		err error
	)
	if dialect == database.Postgres {
		db, err = database.OpenPostgres(t.Context(), SchemaURL(t))
	} else {
		db, err = database.Open(t.Context(), filepath.Join(t.TempDir(), "lambdaflow.db"))
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// ServerURL returns the URL of the PostgreSQL test server, skips the test
// when there is none, and fails it when there is none on CI.
func ServerURL(t testing.TB) string {
	t.Helper()
	raw := os.Getenv(URLVariable)
	if raw == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set, but CI is: the PostgreSQL tests must run on CI; "+
				"export %s=\"$(.ci/postgres)\"", URLVariable, URLVariable)
		}
		t.Skipf("%s is not set; export %s=\"$(.ci/postgres)\" to run the PostgreSQL tests", URLVariable, URLVariable)
	}
	return raw
}

// SchemaURL creates a schema of its own for the test in the PostgreSQL
// test database and returns a URL whose search_path selects it. The
// schema is dropped when the test ends.
func SchemaURL(t testing.TB) string {
	t.Helper()
	server := ServerURL(t)
	name := "test_" + strings.ReplaceAll(uuid.NewString(), "-", "")
	admin(t, server, "CREATE SCHEMA "+name, "DROP SCHEMA IF EXISTS "+name+" CASCADE")
	return withParam(t, server, "search_path", name)
}

// DatabaseURL creates a database of its own for the test on the
// PostgreSQL test server and returns its URL. The database is dropped,
// with any connection still open to it, when the test ends.
func DatabaseURL(t testing.TB) string {
	t.Helper()
	server := ServerURL(t)
	name := "test_" + strings.ReplaceAll(uuid.NewString(), "-", "")
	admin(t, server, "CREATE DATABASE "+name, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	u, err := url.Parse(server)
	if err != nil {
		t.Fatalf("parsing %s: %v", URLVariable, err)
	}
	u.Path = "/" + name
	return u.String()
}

// admin runs create on the test server now and drop when the test ends.
func admin(t testing.TB, server, create, drop string) {
	t.Helper()
	db, err := sql.Open("pgx", server)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(t.Context(), create); err != nil {
		t.Fatalf("%s on %s: %v", create, database.RedactURL(server), err)
	}
	t.Cleanup(func() {
		// t.Context is already cancelled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		db, err := sql.Open("pgx", server)
		if err != nil {
			t.Error(err)
			return
		}
		defer db.Close()
		if _, err := db.ExecContext(ctx, drop); err != nil {
			t.Errorf("%s: %v", drop, err)
		}
	})
}

func withParam(t testing.TB, raw, key, value string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("parsing %s: %v", URLVariable, err)
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}
