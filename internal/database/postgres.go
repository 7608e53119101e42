package database

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// postgresMigrations are the PostgreSQL schema migrations. Each has the
// name of the SQLite migration it mirrors.
//
//go:embed migrations/postgres/*.sql
var postgresMigrations embed.FS

// maxOpenConns caps the connections one node opens to PostgreSQL. The
// pool serialises its writes, so most connections serve HTTP reads.
const maxOpenConns = 10

// ErrNodeLocked means another lambdaflow node holds the node lock of the
// database.
var ErrNodeLocked = errors.New("another lambdaflow node is using this database; " +
	"several nodes can share one database only when every node runs with --cluster")

// OpenPostgres connects to the PostgreSQL database at rawURL, a URL such
// as postgres://user:password@host:5432/dbname?sslmode=disable, and
// applies every migration not yet applied. The tables live in the first
// schema of the connection's search_path, public by default.
//
// All pending migrations run in one transaction that first takes an
// advisory transaction lock (pg_advisory_xact_lock), so nodes that start
// at once apply each migration exactly once.
func OpenPostgres(ctx context.Context, rawURL string) (*DB, error) {
	return openPostgres(ctx, rawURL, nil)
}

// OpenPostgresNode opens the database like OpenPostgres, but takes the
// node lock (see LockNode) before it migrates, so that a node never
// changes the schema under another node that runs. It returns an error
// wrapping ErrNodeLocked when another node holds the lock.
func OpenPostgresNode(ctx context.Context, rawURL string) (*DB, error) {
	return openPostgres(ctx, rawURL, (*DB).LockNode)
}

func openPostgres(ctx context.Context, rawURL string, lock func(*DB, context.Context) error) (*DB, error) {
	shown := RedactURL(rawURL)
	cfg, err := pgx.ParseConfig(rawURL)
	if err != nil {
		return nil, fmt.Errorf("parsing database URL %s: %w", shown, err)
	}
	sqlDB := stdlib.OpenDB(*cfg)
	sqlDB.SetMaxOpenConns(maxOpenConns)
	sqlDB.SetMaxIdleConns(maxOpenConns)
	sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	db := &DB{db: sqlDB, dialect: Postgres, url: rawURL}
	if err := sqlDB.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connecting to database %s: %w", shown, err)
	}
	if db.schema, err = currentSchema(ctx, sqlDB); err != nil {
		db.Close()
		return nil, fmt.Errorf("database %s: %w", shown, err)
	}
	if lock != nil {
		if err := lock(db, ctx); err != nil {
			db.Close()
			return nil, fmt.Errorf("database %s: %w", shown, err)
		}
	}
	if err := migratePostgres(ctx, sqlDB); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrating database %s: %w", shown, err)
	}
	return db, nil
}

// RedactURL returns rawURL with its password replaced by xxxxx, for logs
// and error messages, both in the user information and in a password
// query parameter, which libpq-style URLs also accept. A value that does
// not parse as a URL is replaced as a whole.
func RedactURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme == "" {
		return "(unparsable URL)"
	}
	if query := u.Query(); query.Has("password") {
		query.Set("password", "xxxxx")
		u.RawQuery = query.Encode()
	}
	return u.Redacted()
}

func migratePostgres(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()

	schema, err := currentSchema(ctx, tx)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", lockKey("migrations", schema)); err != nil {
		return fmt.Errorf("locking the schema for migrations: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		name TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("creating schema_migrations: %w", err)
	}
	names, err := fs.Glob(postgresMigrations, "migrations/postgres/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		if err := applyPostgres(ctx, tx, name); err != nil {
			return err
		}
	}
	return tx.Commit()
}

func applyPostgres(ctx context.Context, tx *sql.Tx, name string) error {
	base := strings.TrimPrefix(name, "migrations/postgres/")
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE name = $1`, base).Scan(&n); err != nil {
		return fmt.Errorf("applying %s: %w", base, err)
	}
	if n > 0 {
		return nil
	}
	script, err := postgresMigrations.ReadFile(name)
	if err != nil {
		return fmt.Errorf("applying %s: %w", base, err)
	}
	// Without arguments pgx sends the script in the simple query
	// protocol, which accepts several statements.
	if _, err := tx.ExecContext(ctx, string(script)); err != nil {
		return fmt.Errorf("applying %s: %w", base, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (name) VALUES ($1)`, base); err != nil {
		return fmt.Errorf("applying %s: %w", base, err)
	}
	return nil
}

// LockNode marks db as used by this node until Close, with a
// session-level advisory lock (pg_try_advisory_lock) on a connection
// that db keeps for the purpose. It returns ErrNodeLocked when another
// node holds the lock on the same database and schema. On SQLite it does
// nothing.
//
// PostgreSQL releases the lock when that connection breaks, for example
// when the server restarts; RetakeLocks takes it again.
func (db *DB) LockNode(ctx context.Context) error {
	if db.dialect != Postgres {
		return nil
	}
	db.lockMu.Lock()
	defer db.lockMu.Unlock()
	db.relock = db.lockNode
	return db.lockNode(ctx)
}

// lockNode takes the node lock on a connection of its own. The caller
// holds lockMu.
func (db *DB) lockNode(ctx context.Context) error {
	conn, err := db.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("taking the node lock: %w", err)
	}
	key := lockKey("node", db.schema)
	var locked bool
	if err := conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1)", key).Scan(&locked); err != nil {
		discard(conn)
		return fmt.Errorf("taking the node lock: %w", err)
	}
	if !locked {
		discard(conn)
		return ErrNodeLocked
	}
	db.holdLocks(conn, "SELECT pg_advisory_unlock($1)", key)
	return nil
}

// holdLocks keeps conn, which holds advisory locks, until Close, which
// releases them with the unlock statement.
func (db *DB) holdLocks(conn *sql.Conn, unlock string, keys ...any) {
	db.lockConn = conn
	db.unlock = func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := conn.ExecContext(ctx, unlock, keys...)
		return errors.Join(err, conn.Close())
	}
}

// discard closes conn and ends its session, which releases the advisory
// locks it holds. Closing a *sql.Conn alone would return it to the pool
// with its locks.
func discard(conn *sql.Conn) {
	conn.Raw(func(any) error { return driver.ErrBadConn })
	conn.Close()
}

// RetakeLocks takes the node's locks again when the connection that held
// them broke, as it does when PostgreSQL restarts, and otherwise does
// nothing. It returns an error wrapping ErrNodeLocked or ErrNodeNameTaken
// when a server that started since holds one of them, and another error
// when the database cannot be reached.
func (db *DB) RetakeLocks(ctx context.Context) error {
	db.lockMu.Lock()
	defer db.lockMu.Unlock()
	if db.relock == nil {
		return nil
	}
	if db.lockConn != nil {
		if err := db.lockConn.PingContext(ctx); err == nil {
			return nil
		}
		discard(db.lockConn)
		db.lockConn, db.unlock = nil, nil
	}
	return db.relock(ctx)
}

// querier is a *sql.DB, *sql.Tx or *sql.Conn.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// currentSchema returns the schema that unqualified table names resolve
// to.
func currentSchema(ctx context.Context, q querier) (string, error) {
	var schema sql.NullString
	if err := q.QueryRowContext(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		return "", fmt.Errorf("reading the current schema: %w", err)
	}
	if !schema.Valid {
		return "", errors.New("no schema of the search_path exists; create one or set search_path in the database URL")
	}
	return schema.String, nil
}

// lockKey returns the advisory lock key of purpose in schema. Advisory
// locks are already scoped to one database; the schema keeps nodes on
// different schemas of one database apart.
func lockKey(purpose, schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("lambdaflow " + purpose + " " + schema))
	return int64(h.Sum64())
}
