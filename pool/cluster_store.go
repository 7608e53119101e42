package pool

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

// The cluster's scheduling decisions are PostgreSQL transactions on the
// jobs table, which every node shares:
//
//   - A submission takes the submit lock, a transaction-level advisory
//     lock, so that Seq follows the order in which submissions commit.
//   - A claim takes the claim lock and picks the waiting job with the
//     lowest Seq whose lock key no job holds, FOR UPDATE SKIP LOCKED, and
//     makes it RUNNING on the claiming node under a lease. Claims are one
//     at a time across the cluster, so the cluster-wide limit and the
//     FIFO order are exact. The unique index jobs_one_holder rejects a
//     second holder of one lock key whatever the code does.
//   - Every change that turns a waiting job QUEUED or BLOCKED (a
//     submission, an end, a stop, a re-queue) takes the advisory lock of
//     the job's lock key first, so those states stay right.
//   - Every write of a running job's end is fenced by node and attempt:
//     a node that lost its lease cannot overwrite what another node did.
//
// Each transaction sends its changes with pg_notify, which PostgreSQL
// delivers to the listening nodes when it commits.

// waitingStates, holdingStates and activeStates are SQL lists of job
// states.
const (
	waitingStates = "('QUEUED', 'BLOCKED')"
	holdingStates = "('RUNNING', 'CANCELLING')"
	activeStates  = "('QUEUED', 'BLOCKED', 'RUNNING', 'CANCELLING')"
)

var (
	returningJob = " RETURNING " + strings.Join(jobColumns, ", ")
	// endJob writes a job's transition and clears its lease.
	endJob = "UPDATE jobs SET " + strings.Join(changingColumns, " = ?, ") + " = ?, lease_expires_at = NULL WHERE id = ?"
)

// errLeaseLost means the node no longer holds the job: its lease expired
// and another node re-queued or ended it.
var errLeaseLost = errors.New("the node's lease on the job expired")

// clusterStore runs the cluster's transactions.
type clusterStore struct {
	db      *database.DB
	node    string
	lease   time.Duration
	channel string
	// applied receives the jobs each transaction changed, once it
	// committed.
	applied func(jobs ...*Job)
}

// note is the payload of a notification: a job's new state, a stop for
// the node that runs a job, or a settings change.
type note struct {
	// Node is the node that sent the note.
	Node string `json:"node"`
	// Event is the job event of a changed job.
	Event *Event `json:"event,omitempty"`
	// Stop is the id of a job whose run must stop, sent to the node in
	// StopNode.
	Stop     string `json:"stop,omitempty"`
	StopNode string `json:"stopNode,omitempty"`
	// Settings is set when the settings changed.
	Settings bool `json:"settings,omitempty"`
}

// clusterTx is one cluster transaction and the notes it sends at commit.
type clusterTx struct {
	*database.Tx
	s     *clusterStore
	notes []note
	jobs  []*Job
}

func (s *clusterStore) begin(ctx context.Context) (*clusterTx, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	return &clusterTx{Tx: tx, s: s}, nil
}

// lock takes the transaction-level advisory lock of purpose.
func (tx *clusterTx) lock(ctx context.Context, purpose string) error {
	_, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(?)", tx.s.db.AdvisoryKey(purpose))
	return err
}

func (tx *clusterTx) lockKey(ctx context.Context, key string) error {
	return tx.lock(ctx, "job lock "+key)
}

// changed queues the job event of job for the other nodes.
func (tx *clusterTx) changed(job *Job) {
	e := jobEvent(job, time.Now())
	tx.notes = append(tx.notes, note{Node: tx.s.node, Event: &e})
	tx.jobs = append(tx.jobs, job)
}

// commit sends the queued notes, commits, and passes the changed jobs to
// applied.
func (tx *clusterTx) commit(ctx context.Context) error {
	for _, n := range tx.notes {
		payload, err := json.Marshal(n)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "SELECT pg_notify(?, ?)", tx.s.channel, string(payload)); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	if tx.s.applied != nil {
		tx.s.applied(tx.jobs...)
	}
	return nil
}

// getJob reads a job's record, locking its row when forUpdate is set.
func (tx *clusterTx) getJob(ctx context.Context, id string, forUpdate bool) (*Job, error) {
	query := selectJobs + " WHERE id = ?"
	if forUpdate {
		query += " FOR UPDATE"
	}
	job, err := scanJob(tx.QueryRowContext(ctx, query, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("job %s: %w", id, ErrJobNotFound)
	}
	return job, err
}

// write stores the changing fields of job and clears its lease.
func (tx *clusterTx) write(ctx context.Context, job *Job) error {
	args, err := updateArgs(job)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, endJob, args...); err != nil {
		return fmt.Errorf("updating job %s: %w", job.ID, err)
	}
	tx.changed(job)
	return nil
}

// waitingState returns QUEUED for a waiting job of key with the given
// Seq when no other active job of key is ahead of it or holds the lock,
// and BLOCKED otherwise. The caller holds the lock key's advisory lock.
func (tx *clusterTx) waitingState(ctx context.Context, key string, seq int64) (State, error) {
	var ahead bool
	err := tx.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM jobs WHERE lock_key = ? AND seq <> ? AND "+
		"(state IN "+holdingStates+" OR (state IN "+waitingStates+" AND seq < ?)))", key, seq, seq).Scan(&ahead)
	if err != nil {
		return "", err
	}
	if ahead {
		return StateBlocked, nil
	}
	return StateQueued, nil
}

// promoteNext makes the first waiting job of key QUEUED when it is
// BLOCKED and no job holds the lock. The caller holds the lock key's
// advisory lock.
func (tx *clusterTx) promoteNext(ctx context.Context, key string) error {
	job, err := scanJob(tx.QueryRowContext(ctx, "UPDATE jobs SET state = 'QUEUED' WHERE id = ("+
		"SELECT id FROM jobs WHERE lock_key = ? AND state IN "+waitingStates+" ORDER BY seq LIMIT 1) "+
		"AND state = 'BLOCKED' AND NOT EXISTS (SELECT 1 FROM jobs WHERE lock_key = ? AND state IN "+holdingStates+")"+
		returningJob, key, key))
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("promoting the next job of lock %s: %w", key, err)
	}
	tx.changed(job)
	return nil
}

// insert stores a new job at the end of the queue, QUEUED or BLOCKED,
// and returns its stored record. It returns a *QueueFullError when
// queueLimit jobs already wait.
func (s *clusterStore) insert(ctx context.Context, job *Job, queueLimit int, retryAfter time.Duration) (*Job, error) {
	tx, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	if err := tx.lock(ctx, "submit"); err != nil {
		return nil, err
	}
	if err := tx.lockKey(ctx, job.LockKey); err != nil {
		return nil, err
	}

	var depth int
	var seq int64
	err = tx.QueryRowContext(ctx, "SELECT (SELECT COUNT(*) FROM jobs WHERE state IN "+waitingStates+"), "+
		"(SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs)").Scan(&depth, &seq)
	if err != nil {
		return nil, err
	}
	if depth >= queueLimit {
		return nil, &QueueFullError{Depth: depth, Limit: queueLimit, RetryAfter: retryAfter}
	}

	stored := job.Clone()
	stored.Seq = seq
	if stored.State, err = tx.waitingState(ctx, job.LockKey, seq); err != nil {
		return nil, err
	}
	args, err := encodeJob(stored)
	if err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, insertJob, args...); err != nil {
		return nil, fmt.Errorf("inserting job %s: %w", job.ID, err)
	}

	tx.changed(stored)
	if err := tx.commit(ctx); err != nil {
		return nil, err
	}
	return stored, nil
}

// claim makes the oldest job that can run RUNNING on this node and
// returns it, or returns nil when no job can start: none waits with its
// lock free, or the cluster-wide limit of jobs already run. The limit is
// read in the transaction, so a node that has not heard of a new limit
// still keeps it. A job in skip, one that this node still runs, is never
// claimed.
func (s *clusterStore) claim(ctx context.Context, skip []string) (*Job, error) {
	tx, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	if err := tx.lock(ctx, "claim"); err != nil {
		return nil, err
	}

	var full bool
	err = tx.QueryRowContext(ctx, "SELECT COALESCE((SELECT value::bigint FROM settings WHERE key = ? AND value ~ '^[0-9]{1,9}$'), 0) "+
		"BETWEEN 1 AND (SELECT COUNT(*) FROM jobs WHERE state IN "+holdingStates+")", settingClusterJobs).Scan(&full)
	if err != nil {
		return nil, err
	}
	if full {
		return nil, nil
	}

	var id string
	if skip == nil {
		skip = []string{}
	}
	err = tx.QueryRowContext(ctx, "SELECT id FROM jobs j WHERE j.state IN "+waitingStates+
		" AND NOT EXISTS (SELECT 1 FROM jobs h WHERE h.lock_key = j.lock_key AND h.state IN "+holdingStates+")"+
		" AND j.id <> ALL(?::text[]) ORDER BY j.seq LIMIT 1 FOR UPDATE SKIP LOCKED", skip).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}

	job, err := scanJob(tx.QueryRowContext(ctx, "UPDATE jobs SET state = 'RUNNING', started_at = ?, node = ?, "+
		"lease_expires_at = now() + ?::bigint * interval '1 millisecond' WHERE id = ?"+returningJob,
		timestamp.Now().Format(timestamp.Layout), s.node, s.lease.Milliseconds(), id))
	if err != nil {
		return nil, fmt.Errorf("starting job %s: %w", id, err)
	}
	tx.changed(job)
	if err := tx.commit(ctx); err != nil {
		return nil, err
	}
	return job, nil
}

// end stores final, the end of a job this node ran, and promotes the
// next job of its lock. When the stored job was stopped meanwhile,
// CANCELLING, the job ends CANCELLED with that stop, and end returns the
// record it stored. It returns errLeaseLost when the node no longer holds
// the job.
func (s *clusterStore) end(ctx context.Context, final *Job) (*Job, error) {
	tx, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	if err := tx.lockKey(ctx, final.LockKey); err != nil {
		return nil, err
	}
	stored, err := tx.getJob(ctx, final.ID, true)
	if err != nil {
		return nil, err
	}
	if !s.holds(stored, final.Attempt) {
		return nil, errLeaseLost
	}
	if stored.State == StateCancelling && final.State != StateCancelled {
		final = final.Clone()
		final.State = StateCancelled
		final.Stop = stored.Stop
		final.Error = &JobError{Type: ErrorCancelled, Message: stopMessage(stored.Stop)}
	}
	if err := tx.write(ctx, final); err != nil {
		return nil, err
	}
	if err := tx.promoteNext(ctx, final.LockKey); err != nil {
		return nil, err
	}
	return final, tx.commit(ctx)
}

// holds reports whether this node holds stored, a job record read in the
// current transaction, in the given attempt.
func (s *clusterStore) holds(stored *Job, attempt int) bool {
	return stored.Node != nil && *stored.Node == s.node && stored.Attempt == attempt &&
		(stored.State == StateRunning || stored.State == StateCancelling)
}

// beginOnLockOf starts a transaction that holds the advisory lock of the
// lock key of the job with the given id, and returns it with the key. It
// returns an error wrapping ErrJobNotFound for an unknown id.
func (s *clusterStore) beginOnLockOf(ctx context.Context, id string) (*clusterTx, string, error) {
	if !database.IsText(id) {
		return nil, "", fmt.Errorf("job %q: %w", id, ErrJobNotFound)
	}
	var key string
	err := s.db.QueryRowContext(ctx, "SELECT lock_key FROM jobs WHERE id = ?", id).Scan(&key)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, "", fmt.Errorf("job %s: %w", id, ErrJobNotFound)
	}
	if err != nil {
		return nil, "", err
	}

	tx, err := s.begin(ctx)
	if err != nil {
		return nil, "", err
	}
	if err := tx.lockKey(ctx, key); err != nil {
		tx.Rollback()
		return nil, "", err
	}
	return tx, key, nil
}

// stop stops the job with the given id: a waiting job ends CANCELLED
// and a running one becomes CANCELLING, and a notification makes its
// node stop the run. It returns the job's new record, the unchanged record of a
// CANCELLING job, or ErrJobFinished or ErrJobNotFound.
func (s *clusterStore) stop(ctx context.Context, id string, record *StopRecord) (*Job, error) {
	tx, key, err := s.beginOnLockOf(ctx, id)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	job, err := tx.getJob(ctx, id, true)
	if err != nil {
		return nil, err
	}

	var next *Job
	switch {
	case job.State.Final():
		return nil, ErrJobFinished
	case job.State == StateCancelling:
		return job, nil
	case job.State == StateRunning:
		next = cancellingRecord(job, record)
		if err := tx.writeRunning(ctx, next); err != nil {
			return nil, err
		}
		tx.notes = append(tx.notes, note{Node: s.node, Stop: id, StopNode: deref(job.Node)})
	default:
		next = cancelledRecord(job, record)
		if err := tx.write(ctx, next); err != nil {
			return nil, err
		}
		if err := tx.promoteNext(ctx, key); err != nil {
			return nil, err
		}
	}
	return next, tx.commit(ctx)
}

// writeRunning stores the changing fields of a job that keeps running,
// leaving its lease alone.
func (tx *clusterTx) writeRunning(ctx context.Context, job *Job) error {
	args, err := updateArgs(job)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, updateJob, args...); err != nil {
		return fmt.Errorf("updating job %s: %w", job.ID, err)
	}
	tx.changed(job)
	return nil
}

// writeBlocks stores the block list of a job this node runs, unless the
// node no longer holds it.
func (s *clusterStore) writeBlocks(ctx context.Context, job *Job) error {
	data, err := json.Marshal(nonNil(job.Blocks))
	if err != nil {
		return fmt.Errorf("encoding blocks of job %s: %w", job.ID, err)
	}
	_, err = s.db.ExecContext(ctx, "UPDATE jobs SET blocks = ? WHERE id = ? AND node = ? AND attempt = ? AND state IN "+holdingStates,
		string(data), job.ID, s.node, job.Attempt)
	return err
}

// cancelledRecord returns the final record of a waiting job stopped with
// record.
func cancelledRecord(job *Job, record *StopRecord) *Job {
	final := job.Clone()
	final.State = StateCancelled
	final.FinishedAt = timestamp.Ptr(time.Now())
	final.Stop = record
	final.Error = &JobError{Type: ErrorCancelled, Message: stopMessage(record)}
	final.Blocks = settleBlocks(final.Blocks)
	return final
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// leasedJob is the stored state of a job whose lease this node renewed.
type leasedJob struct {
	id      string
	state   State
	attempt int
}

// renew extends the leases of running, the jobs this node runs, records
// its heartbeat, and returns those of them whose leases it extended. A job the node
// holds in the database but no longer runs, such as one whose end it
// could not store, keeps its lease until it expires.
func (s *clusterStore) renew(ctx context.Context, running []string, slots, maxSlots int, resources json.RawMessage, startedAt time.Time) ([]leasedJob, error) {
	if running == nil {
		running = []string{}
	}
	rows, err := s.db.QueryContext(ctx, "UPDATE jobs SET lease_expires_at = now() + ?::bigint * interval '1 millisecond' "+
		"WHERE node = ? AND id = ANY(?::text[]) AND state IN "+holdingStates+" RETURNING id, state, attempt",
		s.lease.Milliseconds(), s.node, running)
	if err != nil {
		return nil, fmt.Errorf("renewing leases: %w", err)
	}
	defer rows.Close()
	var leased []leasedJob
	for rows.Next() {
		var h leasedJob
		var state string
		if err := rows.Scan(&h.id, &state, &h.attempt); err != nil {
			return nil, fmt.Errorf("renewing leases: %w", err)
		}
		h.state = State(state)
		leased = append(leased, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("renewing leases: %w", err)
	}

	var res sql.NullString
	if len(resources) > 0 {
		res = sql.NullString{String: string(resources), Valid: true}
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO nodes (name, started_at, heartbeat_at, lease_ms, concurrent_jobs, max_concurrent_jobs, resources)
		VALUES (?, ?, now(), ?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at,
			lease_ms = excluded.lease_ms, concurrent_jobs = excluded.concurrent_jobs,
			max_concurrent_jobs = excluded.max_concurrent_jobs, resources = COALESCE(excluded.resources, nodes.resources)`,
		s.node, startedAt, s.lease.Milliseconds(), slots, maxSlots, res)
	if err != nil {
		return nil, fmt.Errorf("recording the heartbeat: %w", err)
	}
	return leased, nil
}

// expired returns the ids of the jobs whose lease expired, or, with own
// set, the jobs held by this node's name, which a node finds left from
// its previous process when it starts.
func (s *clusterStore) expired(ctx context.Context, own bool) ([]string, error) {
	query := "SELECT id FROM jobs WHERE state IN " + holdingStates + " AND lease_expires_at < now() ORDER BY seq LIMIT 100"
	args := []any{}
	if own {
		query = "SELECT id FROM jobs WHERE state IN " + holdingStates + " AND node = ? ORDER BY seq"
		args = append(args, s.node)
	}
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// requeue queues a job whose node stopped holding it again, at its old
// place, or ends it when it cannot run again (see recoveredRecord). With
// own set the job is one of this node's previous process, whose lease
// need not have expired. It returns the new record and the name of the
// node that held the job, or a nil record when the job no longer needs
// one.
func (s *clusterStore) requeue(ctx context.Context, id string, own bool) (*Job, string, error) {
	tx, key, err := s.beginOnLockOf(ctx, id)
	if err != nil {
		return nil, "", err
	}
	defer tx.Rollback()
	var expired bool
	err = tx.QueryRowContext(ctx, "SELECT state IN "+holdingStates+" AND (lease_expires_at < now() OR (? AND node = ?)) "+
		"FROM jobs WHERE id = ? FOR UPDATE", own, s.node, id).Scan(&expired)
	if err != nil || !expired {
		return nil, "", err
	}
	job, err := tx.getJob(ctx, id, false)
	if err != nil {
		return nil, "", err
	}

	next, requeued := recoveredRecord(job)
	if next.State == StateFailed {
		next.Error.Message = fmt.Sprintf("node %s stopped renewing its lease while attempt %d of the job ran, "+
			"and a job is retried only once", deref(job.Node), job.Attempt)
	}
	if requeued {
		next.Node = nil
		if next.State, err = tx.waitingState(ctx, key, job.Seq); err != nil {
			return nil, "", err
		}
	}
	if err := tx.write(ctx, next); err != nil {
		return nil, "", err
	}
	if !requeued {
		if err := tx.promoteNext(ctx, key); err != nil {
			return nil, "", err
		}
	}
	return next, deref(job.Node), tx.commit(ctx)
}

// stoppedBy returns the stop record of a job, for a run this node learns
// was stopped.
func (s *clusterStore) stoppedBy(ctx context.Context, id string) (*StopRecord, error) {
	var raw sql.NullString
	if err := s.db.QueryRowContext(ctx, "SELECT stop FROM jobs WHERE id = ?", id).Scan(&raw); err != nil {
		return nil, err
	}
	if !raw.Valid {
		return nil, nil
	}
	var record StopRecord
	if err := json.Unmarshal([]byte(raw.String), &record); err != nil {
		return nil, err
	}
	return &record, nil
}

// forgetDeadNodes removes the rows of the nodes whose last heartbeat is
// older than a day, so that the node list keeps only nodes that may come
// back.
func (s *clusterStore) forgetDeadNodes(ctx context.Context) error {
	_, err := s.db.ExecContext(ctx, "DELETE FROM nodes WHERE heartbeat_at < now() - interval '1 day'")
	return err
}

// notifySettings notifies the other nodes that the settings changed.
func (s *clusterStore) notifySettings(ctx context.Context) error {
	payload, err := json.Marshal(note{Node: s.node, Settings: true})
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, "SELECT pg_notify(?, ?)", s.channel, string(payload))
	return err
}
