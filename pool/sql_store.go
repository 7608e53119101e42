package pool

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/lambdaflow/lambdaflow/internal/database"
	"github.com/lambdaflow/lambdaflow/internal/timestamp"
)

// SQLStore is the Store of the SQLite or PostgreSQL database, in the jobs
// and settings tables that migration 0002_jobs.sql creates. Nested job
// fields are stored as JSON text and times as RFC 3339 text on both.
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

// jobColumns lists the columns of jobs in the order encodeJob returns
// their values and scanJob reads them.
var jobColumns = []string{
	"id", "seq", "project", "instance", "kind", "lock_key", "state", "attempt", "timeout_ms",
	"parameters", "definition", "only_blocks", "blocks", "result", "outputs", "error", "stop",
	"submitted_at", "started_at", "finished_at", "node",
}

// changingColumns lists the columns a job's transitions change, in the
// order updateArgs returns their values. The other columns are fixed when
// the job is submitted, so updates leave them and their indexes alone.
var changingColumns = []string{
	"state", "attempt", "blocks", "result", "outputs", "error", "stop", "started_at", "finished_at", "node",
}

var (
	selectJobs = "SELECT " + strings.Join(jobColumns, ", ") + " FROM jobs"
	insertJob  = "INSERT INTO jobs (" + strings.Join(jobColumns, ", ") + ") VALUES (?" + strings.Repeat(", ?", len(jobColumns)-1) + ")"
	updateJob  = "UPDATE jobs SET " + strings.Join(changingColumns, " = ?, ") + " = ? WHERE id = ?"
)

// InsertJob stores a new job.
func (s *SQLStore) InsertJob(ctx context.Context, job *Job) error {
	args, err := encodeJob(job)
	if err != nil {
		return err
	}
	stmt, err := s.stmts.Prepare(ctx, insertJob)
	if err != nil {
		return fmt.Errorf("inserting job %s: %w", job.ID, err)
	}
	if _, err := stmt.ExecContext(ctx, args...); err != nil {
		return fmt.Errorf("inserting job %s: %w", job.ID, err)
	}
	return nil
}

// UpdateJobs replaces the records of jobs in one transaction. It writes
// only the fields that change after submission (changingColumns); the
// others, such as Parameters and Definition, keep their inserted values.
func (s *SQLStore) UpdateJobs(ctx context.Context, jobs ...*Job) error {
	update, err := s.stmts.Prepare(ctx, updateJob)
	if err != nil {
		return fmt.Errorf("updating jobs: %w", err)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("updating jobs: %w", err)
	}
	defer tx.Rollback()
	stmt := tx.StmtContext(ctx, update)

	for _, job := range jobs {
		args, err := updateArgs(job)
		if err != nil {
			return err
		}
		result, err := stmt.ExecContext(ctx, args...)
		if err != nil {
			return fmt.Errorf("updating job %s: %w", job.ID, err)
		}
		if n, err := result.RowsAffected(); err != nil || n != 1 {
			return fmt.Errorf("updating job %s: %w", job.ID, ErrJobNotFound)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("updating jobs: %w", err)
	}
	return nil
}

// UpdateBlocks replaces the block runs of job id.
func (s *SQLStore) UpdateBlocks(ctx context.Context, id string, blocks []BlockRun) error {
	if !database.IsText(id) {
		return fmt.Errorf("updating blocks of job %q: %w", id, ErrJobNotFound)
	}
	data, err := json.Marshal(nonNil(blocks))
	if err != nil {
		return fmt.Errorf("encoding blocks of job %s: %w", id, err)
	}
	stmt, err := s.stmts.Prepare(ctx, "UPDATE jobs SET blocks = ? WHERE id = ?")
	if err != nil {
		return fmt.Errorf("updating blocks of job %s: %w", id, err)
	}
	result, err := stmt.ExecContext(ctx, string(data), id)
	if err != nil {
		return fmt.Errorf("updating blocks of job %s: %w", id, err)
	}
	if n, err := result.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("updating blocks of job %s: %w", id, ErrJobNotFound)
	}
	return nil
}

// GetJob returns the job with the given id.
func (s *SQLStore) GetJob(ctx context.Context, id string) (*Job, error) {
	if !database.IsText(id) {
		return nil, fmt.Errorf("job %q: %w", id, ErrJobNotFound)
	}
	stmt, err := s.stmts.Prepare(ctx, selectJobs+" WHERE id = ?")
	if err != nil {
		return nil, fmt.Errorf("reading job %s: %w", id, err)
	}
	job, err := scanJob(stmt.QueryRowContext(ctx, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("job %s: %w", id, ErrJobNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading job %s: %w", id, err)
	}
	return job, nil
}

// ListJobs returns the matching jobs newest first and their total count.
// The count and the page are two queries, so a job stored between them
// may be counted but not listed, or the other way round.
func (s *SQLStore) ListJobs(ctx context.Context, filter JobFilter) ([]*Job, int, error) {
	if !database.IsText(filter.Project) || !database.IsText(stateNames(filter.States)...) {
		return nil, 0, nil
	}
	var conditions []string
	var args []any
	if len(filter.States) > 0 {
		conditions = append(conditions, "state IN (?"+strings.Repeat(", ?", len(filter.States)-1)+")")
		for _, state := range filter.States {
			args = append(args, string(state))
		}
	}
	if filter.Project != "" {
		conditions = append(conditions, "project = ?")
		args = append(args, filter.Project)
	}
	where := ""
	if len(conditions) > 0 {
		where = " WHERE " + strings.Join(conditions, " AND ")
	}

	var total int
	if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM jobs"+where, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("counting jobs: %w", err)
	}
	// Neither backend has a "no limit" value the other accepts, but
	// both take the largest 64-bit integer.
	limit := int64(filter.Limit)
	if limit <= 0 {
		limit = math.MaxInt64
	}
	query := selectJobs + where + " ORDER BY seq DESC LIMIT ? OFFSET ?"
	jobs, err := s.queryJobs(ctx, query, append(args, limit, filter.Offset)...)
	if err != nil {
		return nil, 0, err
	}
	return jobs, total, nil
}

// ActiveJobs returns the jobs in an active state in Seq order.
func (s *SQLStore) ActiveJobs(ctx context.Context) ([]*Job, error) {
	query := selectJobs + " WHERE state IN (?, ?, ?, ?) ORDER BY seq"
	return s.queryJobs(ctx, query, string(StateQueued), string(StateBlocked), string(StateRunning), string(StateCancelling))
}

func (s *SQLStore) queryJobs(ctx context.Context, query string, args ...any) ([]*Job, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("listing jobs: %w", err)
	}
	defer rows.Close()
	var jobs []*Job
	for rows.Next() {
		job, err := scanJob(rows)
		if err != nil {
			return nil, fmt.Errorf("reading job: %w", err)
		}
		jobs = append(jobs, job)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing jobs: %w", err)
	}
	return jobs, nil
}

// MaxSeq returns the highest stored Seq, or 0.
func (s *SQLStore) MaxSeq(ctx context.Context) (int64, error) {
	var seq int64
	if err := s.db.QueryRowContext(ctx, "SELECT COALESCE(MAX(seq), 0) FROM jobs").Scan(&seq); err != nil {
		return 0, fmt.Errorf("reading the highest job sequence number: %w", err)
	}
	return seq, nil
}

// LoadSetting returns the value stored under key.
func (s *SQLStore) LoadSetting(ctx context.Context, key string) (string, bool, error) {
	if !database.IsText(key) {
		return "", false, nil
	}
	var value string
	err := s.db.QueryRowContext(ctx, "SELECT value FROM settings WHERE key = ?", key).Scan(&value)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("reading setting %s: %w", key, err)
	}
	return value, true, nil
}

// SaveSettings stores values in one transaction.
func (s *SQLStore) SaveSettings(ctx context.Context, values map[string]string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("saving settings: %w", err)
	}
	defer tx.Rollback()
	now := timestamp.Now().Format(timestamp.Layout)
	for key, value := range values {
		_, err := tx.ExecContext(ctx, `INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`, key, value, now)
		if err != nil {
			return fmt.Errorf("saving setting %s: %w", key, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("saving settings: %w", err)
	}
	return nil
}

func stateNames(states []State) []string {
	names := make([]string, len(states))
	for i, state := range states {
		names[i] = string(state)
	}
	return names
}

// encodeJob returns the column values of job in jobColumns order.
func encodeJob(job *Job) ([]any, error) {
	var enc jsonEncoder
	args := []any{
		job.ID, job.Seq, job.Project, nullString(job.Instance), string(job.Kind), job.LockKey,
		string(job.State), job.Attempt, job.TimeoutMs,
		enc.text(nonNilMap(job.Parameters)), nullRaw(job.Definition), enc.nullable(job.Only, job.Only == nil),
		enc.text(nonNil(job.Blocks)), enc.nullable(job.Result, job.Result == nil), enc.text(nonNil(job.Outputs)),
		enc.nullable(job.Error, job.Error == nil), enc.nullable(job.Stop, job.Stop == nil),
		job.SubmittedAt.Format(timestamp.Layout), nullTime(job.StartedAt), nullTime(job.FinishedAt),
		nullString(job.Node),
	}
	if enc.err != nil {
		return nil, fmt.Errorf("encoding job %s: %w", job.ID, enc.err)
	}
	return args, nil
}

// updateArgs returns the values of changingColumns and then the id, for
// updateJob.
func updateArgs(job *Job) ([]any, error) {
	var enc jsonEncoder
	args := []any{
		string(job.State), job.Attempt, enc.text(nonNil(job.Blocks)), enc.nullable(job.Result, job.Result == nil),
		enc.text(nonNil(job.Outputs)), enc.nullable(job.Error, job.Error == nil), enc.nullable(job.Stop, job.Stop == nil),
		nullTime(job.StartedAt), nullTime(job.FinishedAt), nullString(job.Node), job.ID,
	}
	if enc.err != nil {
		return nil, fmt.Errorf("encoding job %s: %w", job.ID, enc.err)
	}
	return args, nil
}

// jsonEncoder encodes values to JSON text and keeps the first error.
type jsonEncoder struct {
	err error
}

func (e *jsonEncoder) text(v any) string {
	data, err := json.Marshal(v)
	if err != nil && e.err == nil {
		e.err = err
	}
	return string(data)
}

func (e *jsonEncoder) nullable(v any, isNil bool) sql.NullString {
	if isNil {
		return sql.NullString{}
	}
	return sql.NullString{String: e.text(v), Valid: true}
}

func nullString(s *string) sql.NullString {
	if s == nil {
		return sql.NullString{}
	}
	return sql.NullString{String: *s, Valid: true}
}

func nullRaw(raw json.RawMessage) sql.NullString {
	if len(raw) == 0 {
		return sql.NullString{}
	}
	return sql.NullString{String: string(raw), Valid: true}
}

func nullTime(t *timestamp.Time) sql.NullString {
	if t == nil {
		return sql.NullString{}
	}
	return sql.NullString{String: t.Format(timestamp.Layout), Valid: true}
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func nonNilMap(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

// scanJob reads one row of jobColumns.
func scanJob(row scanner) (*Job, error) {
	var (
		job                                              Job
		instance, definition, only, result, jobErr, stop sql.NullString
		startedAt, finishedAt, node                      sql.NullString
		kind, state, parameters, blocks, outputs         string
		submittedAt                                      string
	)
	err := row.Scan(&job.ID, &job.Seq, &job.Project, &instance, &kind, &job.LockKey, &state,
		&job.Attempt, &job.TimeoutMs, &parameters, &definition, &only, &blocks, &result, &outputs,
		&jobErr, &stop, &submittedAt, &startedAt, &finishedAt, &node)
	if err != nil {
		return nil, err
	}
	job.Kind, job.State = Kind(kind), State(state)
	if instance.Valid {
		job.Instance = &instance.String
	}
	if node.Valid {
		job.Node = &node.String
	}
	if definition.Valid {
		job.Definition = json.RawMessage(definition.String)
	}

	dec := jsonDecoder{job: job.ID}
	dec.decode(parameters, &job.Parameters)
	dec.decode(blocks, &job.Blocks)
	dec.decode(outputs, &job.Outputs)
	dec.decodeNullable(only, &job.Only)
	dec.decodeNullable(result, &job.Result)
	dec.decodeNullable(jobErr, &job.Error)
	dec.decodeNullable(stop, &job.Stop)
	job.SubmittedAt = dec.time(submittedAt)
	job.StartedAt = dec.nullableTime(startedAt)
	job.FinishedAt = dec.nullableTime(finishedAt)
	if dec.err != nil {
		return nil, dec.err
	}
	return &job, nil
}

// jsonDecoder decodes the JSON and time columns of one job and keeps the
// first error. Numbers decode as json.Number, so integers stay exact.
type jsonDecoder struct {
	job string
	err error
}

func (d *jsonDecoder) decode(text string, v any) {
	if d.err != nil {
		return
	}
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		d.err = fmt.Errorf("decoding stored job %s: %w", d.job, err)
	}
}

func (d *jsonDecoder) decodeNullable(text sql.NullString, v any) {
	if text.Valid {
		d.decode(text.String, v)
	}
}

func (d *jsonDecoder) time(text string) timestamp.Time {
	t, err := time.Parse(time.RFC3339Nano, text)
	if err != nil && d.err == nil {
		d.err = fmt.Errorf("decoding stored job %s: %w", d.job, err)
	}
	return timestamp.From(t)
}

func (d *jsonDecoder) nullableTime(text sql.NullString) *timestamp.Time {
	if !text.Valid {
		return nil
	}
	t := d.time(text.String)
	return &t
}
