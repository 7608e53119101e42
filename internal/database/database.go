// Package database opens the embedded SQLite database and applies the
// schema migrations compiled into the binary.
package database

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

//go:embed migrations/*.sql
var migrations embed.FS

// Open opens (creating if needed) the SQLite database at path in WAL mode
// and applies every migration not yet applied, each in its own
// transaction. The returned *sql.DB is safe for concurrent use.
func Open(ctx context.Context, path string) (*sql.DB, error) {
	return OpenWith(ctx, path, Options{})
}

// Options changes how OpenWith opens the database. The zero value opens
// it as Open does.
type Options struct {
	// BackgroundCheckpoints turns off SQLite's automatic checkpoint, which
	// copies the WAL into the database file and syncs it inside the
	// commit that grows the WAL past 1000 pages, and so stalls every
	// writer waiting behind that commit. A Checkpointer must then run,
	// or the WAL grows without bound.
	BackgroundCheckpoints bool
}

// OpenWith is Open with options.
func OpenWith(ctx context.Context, path string, opts Options) (*sql.DB, error) {
	// busy_timeout lets concurrent writers wait for the lock instead of
	// failing at once; synchronous=NORMAL is durable across process
	// crashes in WAL mode and loses at most the last commits on power loss.
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)" +
		"&_pragma=foreign_keys(ON)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	if opts.BackgroundCheckpoints {
		dsn += "&_pragma=wal_autocheckpoint(0)"
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("opening database %s: %w", path, err)
	}
	// database/sql keeps 2 idle connections by default; concurrent
	// requests beyond that would close and reopen connections, and with
	// them the database file and every prepared statement.
	db.SetMaxIdleConns(8)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("opening database %s: %w", path, err)
	}
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrating database %s: %w", path, err)
	}
	return db, nil
}

func migrate(ctx context.Context, db *sql.DB) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		name TEXT PRIMARY KEY, applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')))`); err != nil {
		return fmt.Errorf("creating schema_migrations: %w", err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		if err := apply(ctx, db, name); err != nil {
			return err
		}
	}
	return nil
}

func apply(ctx context.Context, db *sql.DB, name string) error {
	base := strings.TrimPrefix(name, "migrations/")
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("applying %s: %w", base, err)
	}
	defer tx.Rollback()

	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE name = ?`, base).Scan(&n); err != nil {
		return fmt.Errorf("applying %s: %w", base, err)
	}
	if n > 0 {
		return nil
	}
	script, err := migrations.ReadFile(name)
	if err != nil {
		return fmt.Errorf("applying %s: %w", base, err)
	}
	if _, err := tx.ExecContext(ctx, string(script)); err != nil {
		return fmt.Errorf("applying %s: %w", base, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (name) VALUES (?)`, base); err != nil {
		return fmt.Errorf("applying %s: %w", base, err)
	}
	return tx.Commit()
}
