package monitor

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/lambdaflow/lambdaflow/internal/database"
)

// SampleStore persists resource samples, so that the history survives a
// restart. Implementations must be safe for concurrent use.
type SampleStore interface {
	// SaveSample stores s, replacing a sample stored at the same
	// millisecond.
	SaveSample(ctx context.Context, s Sample) error
	// LoadSamples returns the newest limit samples taken at or after
	// since, oldest first.
	LoadSamples(ctx context.Context, since time.Time, limit int) ([]Sample, error)
	// DeleteSamplesBefore deletes the samples taken before t and returns
	// how many it deleted.
	DeleteSamplesBefore(ctx context.Context, t time.Time) (int64, error)
}

// SQLSampleStore is the SampleStore of the SQLite or PostgreSQL database,
// in the monitor_samples table. Each sample is a row keyed by the name of
// the node that took it and its Unix time in milliseconds, with its
// measured values as a JSON object. A store saves, loads and deletes the
// samples of one node only, so nodes that share a database keep their
// histories apart.
type SQLSampleStore struct {
	db   *database.DB
	node string
}

// NewSQLSampleStore returns a store on db, a database opened with
// database.Open or database.OpenPostgres, for the samples stored under
// the empty node name, which the one node outside a cluster uses.
// ForNode selects another node.
func NewSQLSampleStore(db *database.DB) *SQLSampleStore {
	return &SQLSampleStore{db: db}
}

// ForNode returns a store on the same database for the samples of the
// named node. A node of a cluster passes its node name, which must be
// unique in the cluster.
func (s *SQLSampleStore) ForNode(node string) *SQLSampleStore {
	return &SQLSampleStore{db: s.db, node: node}
}

var _ SampleStore = (*SQLSampleStore)(nil)

// SaveSample stores s as a sample of the store's node.
func (s *SQLSampleStore) SaveSample(ctx context.Context, sample Sample) error {
	values := make(map[string]float64, metricCount)
	for m, v := range sample.Values {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			values[metricNames[m]] = v
		}
	}
	data, err := json.Marshal(values)
	if err != nil {
		return fmt.Errorf("encoding sample: %w", err)
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO monitor_samples (node, time_ms, metrics) VALUES (?, ?, ?)
		ON CONFLICT (node, time_ms) DO UPDATE SET metrics = excluded.metrics`,
		s.node, sample.Time.UnixMilli(), string(data))
	if err != nil {
		return fmt.Errorf("storing sample: %w", err)
	}
	return nil
}

// LoadSamples returns the store's node's newest limit samples since the
// given time, oldest first. Metric names the binary does not know are
// skipped.
func (s *SQLSampleStore) LoadSamples(ctx context.Context, since time.Time, limit int) ([]Sample, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT time_ms, metrics FROM (
		SELECT time_ms, metrics FROM monitor_samples WHERE node = ? AND time_ms >= ?
		ORDER BY time_ms DESC LIMIT ?
	) AS newest ORDER BY time_ms`, s.node, since.UnixMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("loading samples: %w", err)
	}
	defer rows.Close()

	var samples []Sample
	for rows.Next() {
		var ms int64
		var data string
		if err := rows.Scan(&ms, &data); err != nil {
			return nil, fmt.Errorf("loading samples: %w", err)
		}
		var values map[string]float64
		if err := json.Unmarshal([]byte(data), &values); err != nil {
			return nil, fmt.Errorf("decoding sample at %d: %w", ms, err)
		}
		sample := newSample(time.UnixMilli(ms).UTC())
		for name, v := range values {
			if m, ok := metricByName(name); ok {
				sample.Values[m] = v
			}
		}
		samples = append(samples, sample)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("loading samples: %w", err)
	}
	return samples, nil
}

// DeleteSamplesBefore deletes the store's node's samples taken before t.
//
// NOTE: a node that leaves a cluster for good leaves its last History of
// samples in the table, because each node prunes only its own samples,
// by its own History.
func (s *SQLSampleStore) DeleteSamplesBefore(ctx context.Context, t time.Time) (int64, error) {
	result, err := s.db.ExecContext(ctx, "DELETE FROM monitor_samples WHERE node = ? AND time_ms < ?",
		s.node, t.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("deleting old samples: %w", err)
	}
	n, err := result.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("deleting old samples: %w", err)
	}
	return n, nil
}
