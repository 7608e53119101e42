package database_test

import (
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/lambdaflow/lambdaflow/internal/database/databasetest"
)

// TestMonitorNodesMigrationKeepsSamples runs 0006_monitor_nodes.sql on a
// monitor_samples table as 0004_monitor.sql created it: the stored
// samples must survive under the empty node name, and node and time
// together must be the key.
func TestMonitorNodesMigrationKeepsSamples(t *testing.T) {
	backends := []struct {
		name, driver, dir string
		source            func(t *testing.T) string
	}{
		{"sqlite", "sqlite", "migrations", func(t *testing.T) string {
			return filepath.Join(t.TempDir(), "lambdaflow.db")
		}},
		{"postgres", "pgx", "migrations/postgres", func(t *testing.T) string {
			return databasetest.SchemaURL(t)
		}},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			db, err := sql.Open(b.driver, b.source(t))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			// One connection, so that every statement runs in the schema
			// that the search_path of the PostgreSQL URL selects.
			db.SetMaxOpenConns(1)

			runScript(t, db, filepath.Join(b.dir, "0004_monitor.sql"))
			mustExec(t, db, `INSERT INTO monitor_samples (time_ms, metrics) VALUES (1000, '{"cpuPercent":1}')`)
			mustExec(t, db, `INSERT INTO monitor_samples (time_ms, metrics) VALUES (2000, '{"cpuPercent":2}')`)
			runScript(t, db, filepath.Join(b.dir, "0006_monitor_nodes.sql"))

			rows, err := db.QueryContext(t.Context(), "SELECT node, time_ms, metrics FROM monitor_samples ORDER BY time_ms")
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var got []string
			for rows.Next() {
				var node, metrics string
				var ms int64
				if err := rows.Scan(&node, &ms, &metrics); err != nil {
					t.Fatal(err)
				}
				got = append(got, node+"|"+metrics)
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			want := []string{`|{"cpuPercent":1}`, `|{"cpuPercent":2}`}
			if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
				t.Errorf("rows after the migration = %q, want %q", got, want)
			}

			// Another node may store a sample at a taken millisecond; the
			// same node may not.
			mustExec(t, db, `INSERT INTO monitor_samples (node, time_ms, metrics) VALUES ('node-a', 1000, '{}')`)
			if _, err := db.ExecContext(t.Context(),
				`INSERT INTO monitor_samples (node, time_ms, metrics) VALUES ('', 1000, '{}')`); err == nil {
				t.Error("a second sample of node '' at 1000 ms was stored, want a primary key violation")
			}
		})
	}
}

func runScript(t *testing.T, db *sql.DB, path string) {
	t.Helper()
	script, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, db, string(script))
}

func mustExec(t *testing.T, db *sql.DB, query string) {
	t.Helper()
	if _, err := db.ExecContext(t.Context(), query); err != nil {
		t.Fatalf("%.60s: %v", query, err)
	}
}
