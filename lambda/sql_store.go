package lambda

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

// SQLStore is the Store of the SQLite or PostgreSQL database, in the
// instances and idempotency_keys tables that migration 0003_lambda.sql
// creates.
type SQLStore struct {
	db    *database.DB
	stmts *database.Statements
}

// NewSQLStore returns a store on db, a database opened with
// database.Open or database.OpenPostgres.
func NewSQLStore(db *database.DB) *SQLStore {
	return &SQLStore{db: db, stmts: database.NewStatements(db)}
}

var _ Store = (*SQLStore)(nil)

const selectInstances = `SELECT id, project, job_id, definition, parameters, delete_on_finish,
	created_at, finished_at, expires_at FROM instances`

// InsertInstance stores a new instance.
func (s *SQLStore) InsertInstance(ctx context.Context, inst *Instance) error {
	params, err := json.Marshal(inst.Parameters)
	if err != nil {
		return fmt.Errorf("encoding parameters of instance %s: %w", inst.ID, err)
	}
	stmt, err := s.stmts.Prepare(ctx, `INSERT INTO instances (id, project, job_id, definition, parameters,
		delete_on_finish, created_at, finished_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("inserting instance %s: %w", inst.ID, err)
	}
	_, err = stmt.ExecContext(ctx, inst.ID, inst.Project, inst.Job, string(inst.Definition), string(params), inst.DeleteExecutionOnFinish,
		inst.CreatedAt.UnixMilli(), millisOrNull(inst.FinishedAt), millisOrNull(inst.ExpiresAt))
	if err != nil {
		return fmt.Errorf("inserting instance %s: %w", inst.ID, err)
	}
	return nil
}

// Instance returns the instance with the given id.
func (s *SQLStore) Instance(ctx context.Context, id string) (*Instance, error) {
	if !database.IsText(id) {
		return nil, ErrInstanceNotFound
	}
	inst, err := scanInstance(s.db.QueryRowContext(ctx, selectInstances+" WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrInstanceNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("reading instance %s: %w", id, err)
	}
	return inst, nil
}

// FinishInstance records the end of the instance's job.
func (s *SQLStore) FinishInstance(ctx context.Context, id string, finishedAt, expiresAt time.Time) error {
	if !database.IsText(id) {
		return nil
	}
	_, err := s.db.ExecContext(ctx, `UPDATE instances SET finished_at = ?, expires_at = ? WHERE id = ?`,
		finishedAt.UnixMilli(), expiresAt.UnixMilli(), id)
	if err != nil {
		return fmt.Errorf("finishing instance %s: %w", id, err)
	}
	return nil
}

// DeleteInstance removes the instance.
func (s *SQLStore) DeleteInstance(ctx context.Context, id string) error {
	if !database.IsText(id) {
		return nil
	}
	stmt, err := s.stmts.Prepare(ctx, `DELETE FROM instances WHERE id = ?`)
	if err != nil {
		return fmt.Errorf("deleting instance %s: %w", id, err)
	}
	if _, err := stmt.ExecContext(ctx, id); err != nil {
		return fmt.Errorf("deleting instance %s: %w", id, err)
	}
	return nil
}

// ExpiredInstances returns the ids of the instances expired at now.
func (s *SQLStore) ExpiredInstances(ctx context.Context, now time.Time) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM instances WHERE expires_at <= ? ORDER BY expires_at`, now.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("listing expired instances: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("listing expired instances: %w", err)
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// UnfinishedInstances returns the instances whose job was not yet seen to
// end.
func (s *SQLStore) UnfinishedInstances(ctx context.Context) ([]*Instance, error) {
	rows, err := s.db.QueryContext(ctx, selectInstances+" WHERE finished_at IS NULL ORDER BY created_at, id")
	if err != nil {
		return nil, fmt.Errorf("listing unfinished instances: %w", err)
	}
	defer rows.Close()
	var list []*Instance
	for rows.Next() {
		inst, err := scanInstance(rows)
		if err != nil {
			return nil, fmt.Errorf("listing unfinished instances: %w", err)
		}
		list = append(list, inst)
	}
	return list, rows.Err()
}

// IdempotencyKey returns the unexpired record of key on project.
func (s *SQLStore) IdempotencyKey(ctx context.Context, project, key string, now time.Time) (*IdempotencyRecord, bool, error) {
	if !database.IsText(project, key) {
		return nil, false, nil
	}
	rec := &IdempotencyRecord{Project: project, Key: key}
	var created, expires int64
	err := s.db.QueryRowContext(ctx, `SELECT request_hash, job_id, instance_id, created_at, expires_at
		FROM idempotency_keys WHERE project = ? AND key = ? AND expires_at > ?`, project, key, now.UnixMilli()).
		Scan(&rec.RequestHash, &rec.JobID, &rec.InstanceID, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("reading idempotency key %q of project %s: %w", key, project, err)
	}
	rec.CreatedAt, rec.ExpiresAt = time.UnixMilli(created).UTC(), time.UnixMilli(expires).UTC()
	return rec, true, nil
}

// LockIdempotencyKey takes an advisory lock on key of project on
// PostgreSQL, where several servers may share the database, and nothing
// on SQLite.
func (s *SQLStore) LockIdempotencyKey(ctx context.Context, project, key string) (func(), error) {
	unlock, err := s.db.Lock(ctx, "idempotency key "+project+"\x00"+key)
	if err != nil {
		return nil, fmt.Errorf("locking idempotency key %q of project %s: %w", key, project, err)
	}
	return unlock, nil
}

// PutIdempotencyKey stores rec over any earlier record of its key.
func (s *SQLStore) PutIdempotencyKey(ctx context.Context, rec *IdempotencyRecord) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO idempotency_keys
		(project, key, request_hash, job_id, instance_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (project, key) DO UPDATE SET request_hash = excluded.request_hash, job_id = excluded.job_id,
		instance_id = excluded.instance_id, created_at = excluded.created_at, expires_at = excluded.expires_at`,
		rec.Project, rec.Key, rec.RequestHash, rec.JobID, rec.InstanceID, rec.CreatedAt.UnixMilli(), rec.ExpiresAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("storing idempotency key %q of project %s: %w", rec.Key, rec.Project, err)
	}
	return nil
}

// DeleteExpiredKeys removes the idempotency keys expired at now.
func (s *SQLStore) DeleteExpiredKeys(ctx context.Context, now time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM idempotency_keys WHERE expires_at <= ?`, now.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("deleting expired idempotency keys: %w", err)
	}
	return res.RowsAffected()
}

// rowScanner is a *sql.Row or *sql.Rows.
type rowScanner interface {
	Scan(dest ...any) error
}

func scanInstance(row rowScanner) (*Instance, error) {
	var inst Instance
	var definition, params string
	var created int64
	var finished, expires sql.NullInt64
	err := row.Scan(&inst.ID, &inst.Project, &inst.Job, &definition, &params, &inst.DeleteExecutionOnFinish,
		&created, &finished, &expires)
	if err != nil {
		return nil, err
	}
	inst.Definition = json.RawMessage(definition)
	dec := json.NewDecoder(strings.NewReader(params))
	dec.UseNumber()
	if err := dec.Decode(&inst.Parameters); err != nil {
		return nil, fmt.Errorf("decoding parameters of instance %s: %w", inst.ID, err)
	}
	inst.CreatedAt = timestamp.From(time.UnixMilli(created))
	inst.FinishedAt = millisToTime(finished)
	inst.ExpiresAt = millisToTime(expires)
	return &inst, nil
}

func millisOrNull(t *timestamp.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixMilli()
}

func millisToTime(v sql.NullInt64) *timestamp.Time {
	if !v.Valid {
		return nil
	}
	return timestamp.Ptr(time.UnixMilli(v.Int64))
}
