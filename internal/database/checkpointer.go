package database

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// DefaultCheckpointInterval is the time between two checkpoints of a
// Checkpointer whose interval is zero.
const DefaultCheckpointInterval = 250 * time.Millisecond

// Checkpointer copies the WAL of a database opened with
// BackgroundCheckpoints into the database file on a goroutine of its own.
// Its PASSIVE checkpoints wait for no reader or writer, so commits go on
// meanwhile. A checkpoint that copied the whole WAL lets the next writer
// start the WAL from its beginning again. Create it with NewCheckpointer;
// Start and Stop are safe for concurrent use.
type Checkpointer struct {
	db       *DB
	interval time.Duration
	log      *slog.Logger

	// mu guards cancel and done.
	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// NewCheckpointer returns a Checkpointer of db that checkpoints every
// interval, or every DefaultCheckpointInterval when interval is zero. A
// nil logger discards the log.
func NewCheckpointer(db *DB, interval time.Duration, logger *slog.Logger) *Checkpointer {
	if interval <= 0 {
		interval = DefaultCheckpointInterval
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Checkpointer{db: db, interval: interval, log: logger.With("component", "database")}
}

// Start starts the checkpoint loop and returns at once. It fails when
// called twice.
func (c *Checkpointer) Start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done != nil {
		return errors.New("checkpointer cannot start: it was already started")
	}
	ctx, c.cancel = context.WithCancel(context.WithoutCancel(ctx))
	c.done = make(chan struct{})
	go c.loop(ctx, c.done)
	return nil
}

// Stop ends the loop, waits for it and then runs a last checkpoint. Call
// it before closing the database. It is safe to call more than once, and
// on a nil Checkpointer, which does nothing.
func (c *Checkpointer) Stop() {
	if c == nil {
		return
	}
	c.mu.Lock()
	cancel, done := c.cancel, c.done
	c.cancel = nil
	c.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
	if err := c.Checkpoint(context.Background()); err != nil {
		c.log.Warn("last checkpoint failed; SQLite replays the WAL at the next open", "error", err)
	}
}

func (c *Checkpointer) loop(ctx context.Context, done chan struct{}) {
	defer close(done)
	ticker := time.NewTicker(c.interval)
	defer ticker.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		err := c.Checkpoint(ctx)
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil && !failing:
			// Logged once until a checkpoint succeeds again.
			c.log.Error("checkpointing the WAL failed, so it grows until a checkpoint succeeds", "error", err)
			failing = true
		case err == nil && failing:
			c.log.Info("checkpointing the WAL works again")
			failing = false
		}
	}
}

// Checkpoint runs one PASSIVE checkpoint.
func (c *Checkpointer) Checkpoint(ctx context.Context) error {
	var busy, logFrames, checkpointed int
	err := c.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &logFrames, &checkpointed)
	if err != nil {
		return fmt.Errorf("checkpointing the WAL: %w", err)
	}
	return nil
}
