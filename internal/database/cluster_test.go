package database_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	"github.com/lambdaflow/lambdaflow/internal/database"
	"github.com/lambdaflow/lambdaflow/internal/database/databasetest"
)

// holders returns the sessions that hold the advisory lock with key.
func holders(t *testing.T, admin *sql.DB, key int64) []int {
	t.Helper()
	rows, err := admin.QueryContext(t.Context(), `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND classid = (($1::bigint >> 32) & 4294967295)::oid AND objid = ($1::bigint & 4294967295)::oid`, key)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var pids []int
	for rows.Next() {
		var pid int
		if err := rows.Scan(&pid); err != nil {
			t.Fatal(err)
		}
		pids = append(pids, pid)
	}
	return pids
}

// breakLocks ends the sessions that hold key, as a PostgreSQL restart
// would.
func breakLocks(t *testing.T, admin *sql.DB, key int64) {
	t.Helper()
	for _, pid := range holders(t, admin, key) {
		if _, err := admin.ExecContext(t.Context(), "SELECT pg_terminate_backend($1)", pid); err != nil {
			t.Fatal(err)
		}
	}
}

func openAdmin(t *testing.T, url string) *sql.DB {
	t.Helper()
	admin, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	return admin
}

func TestClusterNodeRetakesBrokenLocks(t *testing.T) {
	url := databasetest.SchemaURL(t)
	node, err := database.OpenPostgresClusterNode(t.Context(), url, "a")
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	admin := openAdmin(t, url)
	breakLocks(t, admin, node.AdvisoryKey("node"))

	if err := node.RetakeLocks(t.Context()); err != nil {
		t.Fatalf("RetakeLocks: %v", err)
	}
	if _, err := database.OpenPostgresNode(t.Context(), url); !errors.Is(err, database.ErrNodeLocked) {
		t.Errorf("single server after the retake: err = %v, want ErrNodeLocked", err)
	}
	if _, err := database.OpenPostgresClusterNode(t.Context(), url, "a"); !errors.Is(err, database.ErrNodeNameTaken) {
		t.Errorf("second node a after the retake: err = %v, want ErrNodeNameTaken", err)
	}
}

func TestSingleServerTakingBrokenLockStopsNode(t *testing.T) {
	url := databasetest.SchemaURL(t)
	node, err := database.OpenPostgresClusterNode(t.Context(), url, "a")
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	admin := openAdmin(t, url)
	breakLocks(t, admin, node.AdvisoryKey("node"))

	single, err := database.OpenPostgresNode(t.Context(), url)
	if err != nil {
		t.Fatalf("single server in the window: %v", err)
	}
	defer single.Close()
	if err := node.RetakeLocks(t.Context()); !errors.Is(err, database.ErrNodeLocked) {
		t.Errorf("RetakeLocks beside the single server: err = %v, want ErrNodeLocked", err)
	}
	// The failed retake took the name lock before it found the node lock
	// taken, and must not keep it on a pooled connection.
	if pids := holders(t, admin, node.AdvisoryKey("cluster node a")); len(pids) != 0 {
		t.Errorf("the name lock is still held by %v after the failed retake", pids)
	}
	if err := single.RetakeLocks(t.Context()); err != nil {
		t.Errorf("single server's RetakeLocks with its lock intact: %v", err)
	}
}

func TestRejectedNodeLeavesNoLock(t *testing.T) {
	url := databasetest.SchemaURL(t)
	node, err := database.OpenPostgresClusterNode(t.Context(), url, "a")
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	// The second node takes the shared node lock, then finds the name
	// taken; its session must end with the shared lock.
	if _, err := database.OpenPostgresClusterNode(t.Context(), url, "a"); !errors.Is(err, database.ErrNodeNameTaken) {
		t.Fatalf("second node a: err = %v, want ErrNodeNameTaken", err)
	}
	admin := openAdmin(t, url)
	if pids := holders(t, admin, node.AdvisoryKey("node")); len(pids) != 1 {
		t.Errorf("the shared node lock has %d holders %v, want node a alone", len(pids), pids)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := node.Lock(ctx, "purpose"); err == nil {
		t.Error("Lock with a cancelled context succeeded")
	}
}
