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

// sqliteMigrations are the SQLite schema migrations, applied in the order
// of their file names.
//
//go:embed migrations/*.sql
var sqliteMigrations embed.FS

// Open opens (creating if needed) the SQLite database at path in WAL mode
// and applies every migration not yet applied, each in its own
// transaction.
func Open(ctx context.Context, path string) (*DB, error) {
	return OpenWith(ctx, path, Options{})
}

// Options changes how OpenWith opens a SQLite database. The zero value
// opens it as Open does.
type Options struct {
	// BackgroundCheckpoints turns off SQLite's automatic checkpoint, which
	// copies the WAL into the database file and syncs it inside the
	// commit that grows the WAL past 1000 pages, and so stalls every
	// writer waiting behind that commit. A Checkpointer must then run,
	// or the WAL grows without bound.
	BackgroundCheckpoints bool
}

// OpenWith is Open with options.
func OpenWith(ctx context.Context, path string, opts Options) (*DB, error) {
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
	// database/sql keeps 2 idle connections by default. Concurrent
	// requests beyond that would close and reopen connections, and with
	// them the database file and every prepared statement.
	db.SetMaxIdleConns(8)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("opening database %s: %w", path, err)
	}
	if err := migrateSQLite(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrating database %s: %w", path, err)
	}
	return &DB{db: db, dialect: SQLite}, nil
}

func migrateSQLite(ctx context.Context, db *sql.DB) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		name TEXT PRIMARY KEY, applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')))`); err != nil {
		return fmt.Errorf("creating schema_migrations: %w", err)
	}
	names, err := fs.Glob(sqliteMigrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		if err := applySQLite(ctx, db, name); err != nil {
			return err
		}
	}
	return nil
}

func applySQLite(ctx context.Context, db *sql.DB, name string) error {
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
	script, err := sqliteMigrations.ReadFile(name)
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
