package database

import (
	"context"
	"database/sql"
	"sync"
)

// Statements caches the prepared statements of one database by query
// text, because the SQLite driver otherwise parses and plans the SQL of
// every call again. Create it with NewStatements; it is safe for
// concurrent use. The statements live as long as the database.
type Statements struct {
	db    *DB
	cache sync.Map
}

// NewStatements returns an empty cache of statements on db.
func NewStatements(db *DB) *Statements {
	return &Statements{db: db}
}

// Prepare returns the prepared statement of query, which uses ?
// placeholders like DB's methods, preparing it on first use.
func (s *Statements) Prepare(ctx context.Context, query string) (*sql.Stmt, error) {
	if stmt, ok := s.cache.Load(query); ok {
		return stmt.(*sql.Stmt), nil
	}
	stmt, err := s.db.db.PrepareContext(ctx, rebind(s.db.dialect, query))
	if err != nil {
		return nil, err
	}
	if earlier, loaded := s.cache.LoadOrStore(query, stmt); loaded {
		stmt.Close()
		return earlier.(*sql.Stmt), nil
	}
	return stmt, nil
}
