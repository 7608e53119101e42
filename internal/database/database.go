// Package database opens the service's database, the embedded SQLite file
// or a PostgreSQL server, and applies the schema migrations compiled into
// the binary.
//
// The stores of the domain packages write their SQL once, with ? as the
// placeholder and in the subset of SQL both systems accept. A DB rewrites
// the placeholders to $1, $2, ... for PostgreSQL. Where the two systems
// need different SQL, a store branches on DB.Dialect.
package database

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// Dialect names the database system behind a DB.
type Dialect string

// The dialects a DB can have.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// DB is a *sql.DB with the dialect it speaks. Its query methods take SQL
// with ? placeholders and rewrite them for the dialect. It is safe for
// concurrent use.
type DB struct {
	db      *sql.DB
	dialect Dialect
	// lockMu guards the fields below.
	lockMu sync.Mutex
	// lockConn is the connection that holds the node's advisory locks on
	// a PostgreSQL database. unlock releases the locks and relock takes
	// them again (see LockNode and OpenPostgresClusterNode). node is the
	// name of a cluster node.
	lockConn *sql.Conn
	unlock   func() error
	relock   func(context.Context) error
	node     string
	// url and schema are the connection URL and current schema of a
	// PostgreSQL database, for Listen and AdvisoryKey.
	url    string
	schema string
}

// Dialect returns the database system behind db.
func (db *DB) Dialect() Dialect {
	return db.dialect
}

// ExecContext runs a statement that returns no rows.
func (db *DB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return db.db.ExecContext(ctx, rebind(db.dialect, query), args...)
}

// QueryContext runs a query that returns rows.
func (db *DB) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return db.db.QueryContext(ctx, rebind(db.dialect, query), args...)
}

// QueryRowContext runs a query that returns at most one row.
func (db *DB) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return db.db.QueryRowContext(ctx, rebind(db.dialect, query), args...)
}

// PingContext checks that the database responds.
func (db *DB) PingContext(ctx context.Context) error {
	return db.db.PingContext(ctx)
}

// BeginTx starts a transaction.
func (db *DB) BeginTx(ctx context.Context, opts *sql.TxOptions) (*Tx, error) {
	tx, err := db.db.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &Tx{tx: tx, dialect: db.dialect}, nil
}

// Close releases the node lock, if db holds it, and closes the database.
// It is safe to call twice.
func (db *DB) Close() error {
	var unlockErr error
	db.lockMu.Lock()
	if db.unlock != nil {
		unlockErr = db.unlock()
		db.unlock = nil
	}
	db.lockConn = nil
	db.lockMu.Unlock()
	if err := db.db.Close(); err != nil {
		return err
	}
	return unlockErr
}

// Tx is a *sql.Tx whose query methods rewrite placeholders like DB's.
type Tx struct {
	tx      *sql.Tx
	dialect Dialect
}

// ExecContext runs a statement that returns no rows.
func (tx *Tx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return tx.tx.ExecContext(ctx, rebind(tx.dialect, query), args...)
}

// QueryContext runs a query that returns rows.
func (tx *Tx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return tx.tx.QueryContext(ctx, rebind(tx.dialect, query), args...)
}

// QueryRowContext runs a query that returns at most one row.
func (tx *Tx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return tx.tx.QueryRowContext(ctx, rebind(tx.dialect, query), args...)
}

// StmtContext returns stmt, a statement prepared on the DB, bound to the
// transaction.
func (tx *Tx) StmtContext(ctx context.Context, stmt *sql.Stmt) *sql.Stmt {
	return tx.tx.StmtContext(ctx, stmt)
}

// Commit commits the transaction.
func (tx *Tx) Commit() error {
	return tx.tx.Commit()
}

// Rollback aborts the transaction. After Commit it does nothing and
// returns sql.ErrTxDone, so it can be deferred.
func (tx *Tx) Rollback() error {
	return tx.tx.Rollback()
}

// rebind replaces each ? placeholder with $1, $2, ... for PostgreSQL and
// returns query unchanged for SQLite. A ? inside a quoted string or
// identifier is left alone.
func rebind(dialect Dialect, query string) string {
	if dialect != Postgres || !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	var quote byte // the open quote character, or 0 outside quotes
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// IsText reports whether every value can be stored in a text column of
// both backends. PostgreSQL rejects invalid UTF-8 and the NUL character
// with an error. No stored key is such a value, so a store returns "not
// found" for a lookup by one without sending it to the database.
func IsText(values ...string) bool {
	for _, s := range values {
		if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
			return false
		}
	}
	return true
}
