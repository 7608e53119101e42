package main

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/lambdaflow/lambdaflow/internal/database/databasetest"
)

// TestSecondNodeOnDatabaseRejected starts a server on a PostgreSQL
// database, then a second one on the same database: the second must exit
// with the node lock error and leave the first serving. Once the first
// stops, a node may start on the database and finds its jobs.
func TestSecondNodeOnDatabaseRejected(t *testing.T) {
	url := databasetest.DatabaseURL(t)
	first := startServer(t, t.TempDir(), "--database", url)
	done := first.execute("seattle-weather", nil)
	first.waitState(done.ID, "COMPLETED")

	// The second node reads the URL from LAMBDAFLOW_DATABASE_URL, the
	// variable of --database.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir())
	cmd.Env = append(os.Environ(), "LAMBDAFLOW_DATABASE_URL="+url)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("second node on the database exited 0; output:\n%s", out)
	}
	want := "another lambdaflow node is using this database; several nodes can share one database only when every node runs with --cluster"
	if !strings.Contains(string(out), want) {
		t.Errorf("second node's output does not say %q:\n%s", want, out)
	}
	if strings.Contains(string(out), "lambdaflow serving") {
		t.Errorf("second node served before it exited:\n%s", out)
	}

	j := first.execute("seattle-weather", nil)
	if got := first.waitFinal(j.ID); got.State != "COMPLETED" {
		t.Errorf("first node's job after the rejection: %s, want COMPLETED", got.State)
	}
	first.terminate()

	second := startServer(t, t.TempDir(), "--database", url)
	var list struct {
		Total int `json:"total"`
	}
	expectStatus(t, second.do("GET", "/api/v1/jobs", nil, &list), http.StatusOK)
	if list.Total != 2 {
		t.Errorf("the node started after the first lists %d jobs, want the 2 in the database", list.Total)
	}
	second.terminate()
}

func TestServeRejectsBadDatabaseURL(t *testing.T) {
	for _, value := range []string{"mysql://db.example/lambdaflow", "host=db dbname=lambdaflow", "::"} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, binary, "serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--database", value)
		out, err := cmd.CombinedOutput()
		cancel()
		if err == nil {
			t.Errorf("serve --database %q exited 0; output:\n%s", value, out)
			continue
		}
		if !strings.Contains(string(out), "--database") {
			t.Errorf("serve --database %q: output does not name the flag:\n%s", value, out)
		}
	}
}
