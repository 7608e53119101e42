package database_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lambdaflow/lambdaflow/internal/database"
)

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return info.Size()
}

// The database file holds a page only once a checkpoint copied it from
// the WAL, so its size shows whether checkpoints ran.
func TestCheckpointerCopiesWAL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "test.db")
	db, err := database.OpenWith(t.Context(), path, database.Options{BackgroundCheckpoints: true})
	if err != nil {
		t.Fatalf("OpenWith: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	var autocheckpoint int
	if err := db.QueryRowContext(t.Context(), "PRAGMA wal_autocheckpoint").Scan(&autocheckpoint); err != nil {
		t.Fatal(err)
	}
	if autocheckpoint != 0 {
		t.Errorf("wal_autocheckpoint = %d, want 0", autocheckpoint)
	}

	if _, err := db.ExecContext(t.Context(), "CREATE TABLE t (v TEXT)"); err != nil {
		t.Fatal(err)
	}
	// 1200 commits of 1 KiB each pass the 1000 WAL pages at which SQLite
	// would checkpoint on its own.
	value := strings.Repeat("x", 1024)
	for range 1200 {
		if _, err := db.ExecContext(t.Context(), "INSERT INTO t (v) VALUES (?)", value); err != nil {
			t.Fatal(err)
		}
	}
	before := fileSize(t, path)
	if before > 1<<20 {
		t.Fatalf("database file is %d bytes before any background checkpoint, want the rows still in the WAL", before)
	}

	checkpointer := database.NewCheckpointer(db, 10*time.Millisecond, nil)
	if err := checkpointer.Start(t.Context()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(checkpointer.Stop)
	if err := checkpointer.Start(t.Context()); err == nil {
		t.Error("second Start returned no error")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for fileSize(t, path) < 1<<20 {
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("database file is %d bytes after background checkpoints, want the 1.2 MiB of rows", fileSize(t, path))
		}
	}
	checkpointer.Stop()
	checkpointer.Stop()
}
