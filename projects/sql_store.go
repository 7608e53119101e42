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

// SQLStore is the Store on the SQLite or PostgreSQL database, in the
// projects table of migration 0001_projects.sql.
type SQLStore struct {
	db    *database.DB
	stmts *database.Statements
}

// NewSQLStore returns a Store on db, a database opened with database.Open
// or database.OpenPostgres.
func NewSQLStore(db *database.DB) *SQLStore {
	return &SQLStore{db: db, stmts: database.NewStatements(db)}
}

var _ Store = (*SQLStore)(nil)

const selectProject = `SELECT definition, vals, version, created_at, updated_at FROM projects`

// List returns every project ordered by name.
func (s *SQLStore) List(ctx context.Context) ([]*Record, error) {
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
func (s *SQLStore) Get(ctx context.Context, name string) (*Record, error) {
	if !database.IsText(name) {
		return nil, ErrNotFound
	}
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
func (s *SQLStore) Create(ctx context.Context, rec *Record) error {
	def, vals, err := encodeRecord(rec)
	if err != nil {
		return err
	}
	now := timestamp.Now()
	// ON CONFLICT DO NOTHING turns a taken name into zero affected rows
	// on both backends, whose constraint errors differ.
	res, err := s.db.ExecContext(ctx, `INSERT INTO projects (name, definition, vals, version, created_at, updated_at)
		VALUES (?, ?, ?, 1, ?, ?) ON CONFLICT (name) DO NOTHING`, rec.Name, def, vals, formatTime(now), formatTime(now))
	if err != nil {
		return fmt.Errorf("creating project %s: %w", rec.Name, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("creating project %s: %w", rec.Name, err)
	} else if n == 0 {
		return ErrExists
	}
	rec.Version, rec.CreatedAt, rec.UpdatedAt = 1, now, now
	return nil
}

// Update stores rec over the project of the same name; see Store. The
// version check and the write are one UPDATE statement, so that two
// concurrent updates with the same ifVersion cannot both succeed, whatever
// the backend's isolation level.
func (s *SQLStore) Update(ctx context.Context, rec *Record, ifVersion int64) error {
	if !database.IsText(rec.Name) {
		return ErrNotFound
	}
	def, vals, err := encodeRecord(rec)
	if err != nil {
		return err
	}
	now := timestamp.Now()
	var version int64
	var created string
	err = s.db.QueryRowContext(ctx, `UPDATE projects SET definition = ?, vals = ?, version = version + 1, updated_at = ?
		WHERE name = ? AND (CAST(? AS BIGINT) <= 0 OR version = ?) RETURNING version, created_at`,
		def, vals, formatTime(now), rec.Name, ifVersion, ifVersion).Scan(&version, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return s.updateMiss(ctx, rec.Name)
	}
	if err != nil {
		return fmt.Errorf("updating project %s: %w", rec.Name, err)
	}
	rec.Version, rec.UpdatedAt = version, now
	rec.CreatedAt = parseTime(created)
	return nil
}

// updateMiss returns why an update changed no row: the project is missing
// or has another version.
func (s *SQLStore) updateMiss(ctx context.Context, name string) error {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM projects WHERE name = ?`, name).Scan(&n); err != nil {
		return fmt.Errorf("updating project %s: %w", name, err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return ErrVersionMismatch
}

// Delete removes the named project or returns ErrNotFound.
func (s *SQLStore) Delete(ctx context.Context, name string) error {
	if !database.IsText(name) {
		return ErrNotFound
	}
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
func (s *SQLStore) Count(ctx context.Context) (int, error) {
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
