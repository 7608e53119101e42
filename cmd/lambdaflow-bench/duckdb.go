package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// duckDB runs queries through DuckDB's Node.js API, installed by
// bench/install.sh.
type duckDB struct {
	script string
	module string
	note   string
}

// duckDBScript runs one query repeats times, each as COPY ... TO a CSV
// file, and prints the time of each run in milliseconds as JSON. Node's
// start and the loading of DuckDB are not timed.
const duckDBScript = `
const [modulePath, query, out, repeats] = process.argv.slice(2);
const { DuckDBInstance } = require(modulePath);
(async () => {
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  const times = [];
  for (let i = 0; i < Number(repeats); i++) {
    const start = performance.now();
    await connection.run("COPY (" + query + ") TO '" + out.replaceAll("'", "''") + "' (HEADER, DELIMITER ',')");
    times.push(performance.now() - start);
  }
  console.log(JSON.stringify(times));
})().catch((err) => { console.error(err); process.exit(1); });
`

func newDuckDB(opts options) *duckDB {
	module := filepath.Join(opts.depsDir, "node_modules", "@duckdb", "node-api")
	if _, err := os.Stat(module); err != nil || !installed("node") {
		return &duckDB{note: "DuckDB (@duckdb/node-api under " + opts.depsDir + ") not installed: its column is skipped (run `make bench-deps`)"}
	}
	script := filepath.Join(opts.workDir, "duckdb.cjs")
	if err := os.WriteFile(script, []byte(duckDBScript), 0o644); err != nil {
		return &duckDB{note: "writing the DuckDB script failed: " + err.Error()}
	}
	return &duckDB{script: script, module: module}
}

func (d *duckDB) available() bool {
	return d.script != ""
}

// run times the task's query; the input columns get fixed types so that
// DuckDB reads the date column as text, as the other tools do.
func (d *duckDB) run(ctx context.Context, task blockTask, input, out string, repeats int) ([]time.Duration, error) {
	source := "read_csv('" + strings.ReplaceAll(input, "'", "''") + "', header = true, columns = {" +
		"'date': 'VARCHAR', 'delay': 'BIGINT', 'distance': 'BIGINT', 'origin': 'VARCHAR', 'destination': 'VARCHAR'})"
	query := strings.ReplaceAll(task.sql, "FLIGHTS", source)
	cmd := exec.CommandContext(ctx, "node", d.script, d.module, query, out, fmt.Sprint(repeats))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	output, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("node: %w: %s", err, stderr.String())
	}
	var millis []float64
	if err := json.Unmarshal(output, &millis); err != nil {
		return nil, fmt.Errorf("reading the DuckDB timings %q: %w", output, err)
	}
	times := make([]time.Duration, len(millis))
	for i, ms := range millis {
		times[i] = time.Duration(ms * float64(time.Millisecond))
	}
	return times, nil
}
