package projects

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lambdaflow/lambdaflow/internal/database"
	"github.com/lambdaflow/lambdaflow/internal/timestamp"
)

// SQLiteStore is the Store on the embedded SQLite database.
type SQLiteStore struct {
	db    *sql.DB
	stmts *database.Statements
}

// NewSQLiteStore returns a Store on db, whose schema must be migrated.
func NewSQLiteStore(db *sql.DB) *SQLiteStore {
	return &SQLiteStore{db: db, stmts: database.NewStatements(db)}
}

const selectProject = `SELECT definition, vals, version, created_at, updated_at FROM projects`

// List returns every project ordered by name.
func (s *SQLiteStore) List(ctx context.Context) ([]*Record, error) {
	rows, err := s.db.QueryContext(ctx, selectProject+` ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("listing projects: %w", err)
	}
	defer rows.Close()

	var list []*Record
	for rows.Next() {
		rec, err := scanRecord(rows)
		if err != nil {
			return nil, fmt.Errorf("listing projects: %w", err)
		}
		list = append(list, rec)
	}
	return list, rows.Err()
}

// Get returns the named project or ErrNotFound.
func (s *SQLiteStore) Get(ctx context.Context, name string) (*Record, error) {
	stmt, err := s.stmts.Prepare(ctx, selectProject+` WHERE name = ?`)
	if err != nil {
		return nil, fmt.Errorf("reading project %s: %w", name, err)
	}
	rec, err := scanRecord(stmt.QueryRowContext(ctx, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("reading project %s: %w", name, err)
	}
	return rec, nil
}

// Create stores a new project at version 1, or returns ErrExists.
func (s *SQLiteStore) Create(ctx context.Context, rec *Record) error {
	def, vals, err := encodeRecord(rec)
	if err != nil {
		return err
	}
	now := timestamp.Now()
	_, err = s.db.ExecContext(ctx, `INSERT INTO projects (name, definition, vals, version, created_at, updated_at)
		VALUES (?, ?, ?, 1, ?, ?)`, rec.Name, def, vals, formatTime(now), formatTime(now))
	if err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed") {
		return ErrExists
	}
	if err != nil {
		return fmt.Errorf("creating project %s: %w", rec.Name, err)
	}
	rec.Version, rec.CreatedAt, rec.UpdatedAt = 1, now, now
	return nil
}

// Update stores rec over the project of the same name; see Store.
func (s *SQLiteStore) Update(ctx context.Context, rec *Record, ifVersion int64) error {
	def, vals, err := encodeRecord(rec)
	if err != nil {
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("updating project %s: %w", rec.Name, err)
	}
	defer tx.Rollback()

	var version int64
	var created string
	err = tx.QueryRowContext(ctx, `SELECT version, created_at FROM projects WHERE name = ?`, rec.Name).Scan(&version, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("updating project %s: %w", rec.Name, err)
	}
	if ifVersion > 0 && ifVersion != version {
		return ErrVersionMismatch
	}
	now := timestamp.Now()
	if _, err := tx.ExecContext(ctx, `UPDATE projects SET definition = ?, vals = ?, version = ?, updated_at = ? WHERE name = ?`,
		def, vals, version+1, formatTime(now), rec.Name); err != nil {
		return fmt.Errorf("updating project %s: %w", rec.Name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("updating project %s: %w", rec.Name, err)
	}
	rec.Version, rec.UpdatedAt = version+1, now
	rec.CreatedAt = parseTime(created)
	return nil
}

// Delete removes the named project or returns ErrNotFound.
func (s *SQLiteStore) Delete(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM projects WHERE name = ?`, name)
	if err != nil {
		return fmt.Errorf("deleting project %s: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// Count returns the number of projects.
func (s *SQLiteStore) Count(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM projects`).Scan(&n); err != nil {
		return 0, fmt.Errorf("counting projects: %w", err)
	}
	return n, nil
}

type scanner interface {
	Scan(dest ...any) error
}

func scanRecord(row scanner) (*Record, error) {
	var def, vals, created, updated string
	rec := &Record{}
	if err := row.Scan(&def, &vals, &rec.Version, &created, &updated); err != nil {
		return nil, err
	}
	if err := decodeJSON(def, &rec.Project); err != nil {
		return nil, fmt.Errorf("decoding definition: %w", err)
	}
	if err := decodeJSON(vals, &rec.Values); err != nil {
		return nil, fmt.Errorf("decoding values: %w", err)
	}
	if rec.Values == nil {
		rec.Values = map[string]any{}
	}
	if rec.Parameters == nil {
		rec.Parameters = []Parameter{}
	}
	rec.CreatedAt, rec.UpdatedAt = parseTime(created), parseTime(updated)
	return rec, nil
}

func encodeRecord(rec *Record) (string, string, error) {
	def, err := json.Marshal(rec.Project)
	if err != nil {
		return "", "", fmt.Errorf("encoding project %s: %w", rec.Name, err)
	}
	vals, err := json.Marshal(rec.Values)
	if err != nil {
		return "", "", fmt.Errorf("encoding values of %s: %w", rec.Name, err)
	}
	return string(def), string(vals), nil
}

// decodeJSON decodes with UseNumber, so numbers keep their exact text as
// they do in requests.
func decodeJSON(s string, v any) error {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	return dec.Decode(v)
}

func formatTime(t timestamp.Time) string {
	return t.UTC().Format(timestamp.Layout)
}

func parseTime(s string) timestamp.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return timestamp.From(t)
}
