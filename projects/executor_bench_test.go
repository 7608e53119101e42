package projects

import (
	"context"
	"encoding/json"
	"os"
	"strconv"
	"testing"

	"github.com/lambdaflow/lambdaflow/pool"
)

// BenchmarkExecuteSeattleWeather runs the seattle-weather example (read
// 1,461 CSV rows, filter, compute, aggregate, sort, write a CSV file)
// through the executor, as one job would, without the pool.
func BenchmarkExecuteSeattleWeather(b *testing.B) {
	data, err := os.ReadFile("../examples/projects/seattle-weather.json")
	if err != nil {
		b.Fatal(err)
	}
	var rec Record
	if err := json.Unmarshal(data, &rec); err != nil {
		b.Fatal(err)
	}
	def, _ := json.Marshal(rec.Project)
	root := b.TempDir()
	e := NewExecutor(ExecutorConfig{FilesDir: "../examples/files", OutputRoot: root})
	params := map[string]any{"weather": "rain", "year": json.Number("2014")}
	noop := func(pool.BlockRun) {}

	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		job := &pool.Job{ID: strconv.Itoa(i), Definition: def, Parameters: params}
		if _, err := e.Run(context.Background(), job, noop); err != nil {
			b.Fatal(err)
		}
	}
}
