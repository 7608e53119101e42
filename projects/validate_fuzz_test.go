package projects

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzValidate feeds arbitrary definitions to Validate and Bind: they
// must report problems, never panic. `go test -fuzz FuzzValidate
// ./projects` explores beyond the seeds.
func FuzzValidate(f *testing.F) {
	seeds, _ := filepath.Glob("../examples/projects/*.json")
	for _, path := range seeds {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"name":"x","blocks":[{"name":"a","type":"aggregate","inputs":["a"],"options":{"aggregates":{"n":"sum(("}}}]}`))
	f.Add([]byte(`{"name":"x","parameters":[{"name":"p","type":"text","pattern":"("}],"blocks":[{"name":"a","type":"join","options":{"on":[1]}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var rec Record
		if json.Unmarshal(data, &rec) != nil {
			return
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			rec.Validate()
			rec.Bind("parameters", rec.Values, nil)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("Validate and Bind did not return within 10s on %q", data)
		}
	})
}
