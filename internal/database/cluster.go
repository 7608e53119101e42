package database

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrNodeNameTaken means a running node of the cluster already uses the
// requested node name.
var ErrNodeNameTaken = errors.New("a running node of this cluster already uses this node name")

// OpenPostgresClusterNode opens the database like OpenPostgres for a node
// named node of a cluster, whose nodes share the database. It takes the
// node lock shared, so that a server without --cluster cannot start
// beside the cluster nor the other way round. It also takes a lock on the
// node name, so that two running nodes never share a name. Both are held
// until Close. It returns an error wrapping ErrNodeLocked or
// ErrNodeNameTaken when either lock is held elsewhere.
func OpenPostgresClusterNode(ctx context.Context, rawURL, node string) (*DB, error) {
	return openPostgres(ctx, rawURL, func(db *DB, ctx context.Context) error {
		db.lockMu.Lock()
		defer db.lockMu.Unlock()
		db.node = node
		db.relock = db.joinCluster
		return db.joinCluster(ctx)
	})
}

// joinCluster takes the shared node lock and the lock of the node name on
// a connection that db keeps until Close. The caller holds lockMu.
func (db *DB) joinCluster(ctx context.Context) error {
	node := db.node
	conn, err := db.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("taking the node lock: %w", err)
	}
	nodeKey := lockKey("node", db.schema)
	nameKey := lockKey("cluster node "+node, db.schema)
	var shared, named bool
	err = conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock_shared($1), pg_try_advisory_lock($2)",
		nodeKey, nameKey).Scan(&shared, &named)
	if err != nil {
		discard(conn)
		return fmt.Errorf("taking the node lock: %w", err)
	}
	if !shared || !named {
		// Ending the session releases whichever lock was taken.
		discard(conn)
		if !shared {
			return ErrNodeLocked
		}
		return fmt.Errorf("node name %q: %w; give this node another --node-name", node, ErrNodeNameTaken)
	}
	db.holdLocks(conn, "SELECT pg_advisory_unlock_shared($1), pg_advisory_unlock($2)", nodeKey, nameKey)
	return nil
}

// Lock takes the session-level advisory lock of purpose on a connection
// of its own, waiting while another session holds it, and returns the
// function that releases it and returns the connection. Each call holds
// one connection until then. On SQLite it locks nothing, since one
// process owns the file.
func (db *DB) Lock(ctx context.Context, purpose string) (func(), error) {
	if db.dialect != Postgres {
		return func() {}, nil
	}
	conn, err := db.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	key := db.AdvisoryKey(purpose)
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", key); err != nil {
		// A lock taken as the wait was cancelled must not stay with the
		// pooled connection.
		discard(conn)
		return nil, err
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_unlock($1)", key); err != nil {
			discard(conn)
			return
		}
		conn.Close()
	}, nil
}

// AdvisoryKey returns the key of a PostgreSQL advisory lock for purpose,
// distinct for each schema of the database.
func (db *DB) AdvisoryKey(purpose string) int64 {
	return lockKey(purpose, db.schema)
}

// Channel returns the name of the PostgreSQL notification channel of the
// database's schema, so that clusters on different schemas of one
// database do not hear each other.
func (db *DB) Channel() string {
	return "lambdaflow_" + strconv.FormatUint(uint64(lockKey("channel", db.schema)), 16)
}

// Listen receives the notifications of Channel on a connection of its
// own until ctx ends or the connection fails, and returns why it
// stopped. It calls listening once it listens, and notify with the
// payload of each notification, in the order PostgreSQL delivers them,
// which is the order their transactions committed. Notifications sent
// while no connection listens are lost, so a caller that listens again
// after an error must catch up on what it missed, as from listening.
func (db *DB) Listen(ctx context.Context, listening func(), notify func(payload string)) error {
	if db.dialect != Postgres {
		return errors.New("listening for notifications needs PostgreSQL")
	}
	conn, err := pgx.Connect(ctx, db.url)
	if err != nil {
		return fmt.Errorf("connecting to listen: %w", err)
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn.Close(closeCtx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{db.Channel()}.Sanitize()); err != nil {
		return fmt.Errorf("listening on %s: %w", db.Channel(), err)
	}
	listening()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("waiting for notifications: %w", err)
		}
		notify(n.Payload)
	}
}
