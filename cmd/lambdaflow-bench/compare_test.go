package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func writeTestCSV(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "out.csv")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCompareOutputs(t *testing.T) {
	want := &table{header: []string{"k", "v"}, rows: [][]string{{"b", "2"}, {"a", "1"}, {"a", "1.0000000001"}}}
	tests := []struct {
		name  string
		task  blockTask
		got   string
		match bool
	}{
		{"same rows in order", blockTask{ordered: true}, "k,v\nb,2\na,1\na,1\n", true},
		{"columns in another order", blockTask{ordered: true}, "v,k\n2,b\n1,a\n1,a\n", true},
		{"rows out of order", blockTask{ordered: true}, "k,v\na,1\nb,2\na,1\n", false},
		{"rows out of order as a multiset", blockTask{}, "k,v\na,1\nb,2\na,1\n", true},
		{"a different value", blockTask{}, "k,v\nb,2\na,1\na,3\n", false},
		{"a missing row", blockTask{}, "k,v\nb,2\na,1\n", false},
		{"a missing column", blockTask{}, "k\nb\na\na\n", false},
		{"ties in any order", blockTask{orderedBy: []string{"k"}}, "k,v\nb,2\na,1\na,1\n", true},
		{"keys out of order", blockTask{orderedBy: []string{"k"}}, "k,v\na,1\nb,2\na,1\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := compareOutputs(tt.task, want, writeTestCSV(t, tt.got))
			if tt.match && err != nil {
				t.Errorf("compareOutputs returned %v, want a match", err)
			}
			if !tt.match && err == nil {
				t.Error("compareOutputs found no difference")
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	values := []time.Duration{5, 1, 4, 2, 3, 10, 9, 8, 7, 6}
	if got := percentile(values, 50); got != 5 {
		t.Errorf("p50 = %d, want 5", got)
	}
	if got := percentile(values, 99); got != 10 {
		t.Errorf("p99 = %d, want 10", got)
	}
	if got := percentile(nil, 99); got != 0 {
		t.Errorf("p99 of nothing = %d, want 0", got)
	}
}
