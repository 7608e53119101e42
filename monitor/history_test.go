package monitor

import (
	"math"
	"testing"
	"time"

	"github.com/lambdaflow/lambdaflow/internal/database"
	"github.com/lambdaflow/lambdaflow/internal/database/databasetest"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)

// sampleAt returns a sample at t0 plus offset with the CPU percent set,
// or left unmeasured when cpu is NaN.
func sampleAt(offset time.Duration, cpu float64) Sample {
	s := newSample(t0.Add(offset))
	s.Values[metricCPUPercent] = cpu
	return s
}

func TestHistoryRingKeepsNewest(t *testing.T) {
	h := newHistory(3)
	for i := range 5 {
		h.add(sampleAt(time.Duration(i)*time.Second, float64(i)))
	}
	h.add(sampleAt(2*time.Second, 99)) // older than the newest: dropped
	if h.len() != 3 {
		t.Fatalf("len = %d, want the capacity 3", h.len())
	}
	got := h.between(t0, t0.Add(time.Hour))
	for i, s := range got {
		if want := float64(i + 2); s.Values[metricCPUPercent] != want {
			t.Errorf("sample %d has CPU %v, want %v", i, s.Values[metricCPUPercent], want)
		}
	}
	if n := len(h.between(t0.Add(3*time.Second), t0.Add(4*time.Second))); n != 1 {
		t.Errorf("between 3s and 4s holds %d samples, want 1 (from inclusive, to exclusive)", n)
	}
}

func TestDownsample(t *testing.T) {
	nan := math.NaN()
	samples := []Sample{
		sampleAt(0, nan),
		sampleAt(10*time.Second, 10),
		sampleAt(50*time.Second, 30),
		sampleAt(70*time.Second, 5),
		sampleAt(200*time.Second, nan),
	}
	buckets := downsample(samples, t0, time.Minute)
	if len(buckets) != 3 {
		t.Fatalf("%d buckets, want 3 (the empty minute is left out)", len(buckets))
	}
	cases := []struct {
		start time.Duration
		count int
		stats *Stats
	}{
		{0, 3, &Stats{Min: 10, Mean: 20, Max: 30}},
		{time.Minute, 1, &Stats{Min: 5, Mean: 5, Max: 5}},
		{3 * time.Minute, 1, nil},
	}
	for i, c := range cases {
		b := buckets[i]
		if !b.Time.Equal(t0.Add(c.start)) || b.Count != c.count {
			t.Errorf("bucket %d starts %s with %d samples, want %s with %d", i, b.Time, b.Count, t0.Add(c.start), c.count)
		}
		switch {
		case c.stats == nil && b.CPUPercent != nil:
			t.Errorf("bucket %d CPU = %+v, want null", i, *b.CPUPercent)
		case c.stats != nil && (b.CPUPercent == nil || *b.CPUPercent != *c.stats):
			t.Errorf("bucket %d CPU = %v, want %+v", i, b.CPUPercent, *c.stats)
		}
		if b.Load1 != nil {
			t.Errorf("bucket %d load1 = %+v, want null for a metric no sample measured", i, *b.Load1)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		5 * time.Second: "5s", time.Minute: "1m", 90 * time.Second: "1m30s",
		time.Hour: "1h", 24 * time.Hour: "24h", 100 * time.Millisecond: "100ms",
	} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%s) = %q, want %q", d, got, want)
		}
	}
}

func TestSampleStoreRoundTrip(t *testing.T) {
	databasetest.Run(t, testSampleStoreRoundTrip)
}

func testSampleStoreRoundTrip(t *testing.T, db *database.DB) {
	store := NewSQLSampleStore(db)
	for i := range 4 {
		s := sampleAt(time.Duration(i)*time.Minute, float64(i))
		s.Values[metricGoroutines] = 7
		if err := store.SaveSample(t.Context(), s); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.SaveSample(t.Context(), sampleAt(4*time.Minute, math.NaN())); err != nil {
		t.Fatal(err)
	}

	got, err := store.LoadSamples(t.Context(), t0.Add(time.Minute), 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("loaded %d samples, want the newest 3", len(got))
	}
	if !got[0].Time.Equal(t0.Add(2*time.Minute)) || got[0].Values[metricCPUPercent] != 2 || got[0].Values[metricGoroutines] != 7 {
		t.Errorf("first loaded sample = %s CPU %v goroutines %v, want 2m CPU 2 goroutines 7",
			got[0].Time, got[0].Values[metricCPUPercent], got[0].Values[metricGoroutines])
	}
	if measured(got[2].Values[metricCPUPercent]) || measured(got[2].Values[metricLoad1]) {
		t.Errorf("unmeasured values came back as %v and %v", got[2].Values[metricCPUPercent], got[2].Values[metricLoad1])
	}

	n, err := store.DeleteSamplesBefore(t.Context(), t0.Add(2*time.Minute))
	if err != nil || n != 2 {
		t.Errorf("DeleteSamplesBefore deleted %d, %v; want 2", n, err)
	}

	// A sample at a taken millisecond replaces the stored one.
	if err := store.SaveSample(t.Context(), sampleAt(4*time.Minute, 9)); err != nil {
		t.Fatal(err)
	}
	got, err = store.LoadSamples(t.Context(), t0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[2].Values[metricCPUPercent] != 9 {
		t.Errorf("after replacing the newest sample: %d samples, newest CPU %v; want 3 and CPU 9", len(got), got[len(got)-1].Values[metricCPUPercent])
	}
}

func TestSampleStoreKeepsNodesApart(t *testing.T) {
	databasetest.Run(t, testSampleStoreKeepsNodesApart)
}

// testSampleStoreKeepsNodesApart stores samples of two nodes and of the
// unnamed node at the same milliseconds: each store loads, replaces and
// deletes only its own node's samples.
func testSampleStoreKeepsNodesApart(t *testing.T, db *database.DB) {
	single := NewSQLSampleStore(db)
	a := single.ForNode("node-a")
	b := single.ForNode("node-b")
	for i := range 3 {
		offset := time.Duration(i) * time.Minute
		for store, cpu := range map[*SQLSampleStore]float64{single: 0, a: 10, b: 20} {
			if err := store.SaveSample(t.Context(), sampleAt(offset, cpu+float64(i))); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Replacing node-a's newest sample leaves node-b's at the same
	// millisecond alone.
	if err := a.SaveSample(t.Context(), sampleAt(2*time.Minute, 99)); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name  string
		store *SQLSampleStore
		cpu   []float64
	}{
		{"''", single, []float64{0, 1, 2}},
		{"node-a", a, []float64{10, 11, 99}},
		{"node-b", b, []float64{20, 21, 22}},
	}
	for _, c := range cases {
		got, err := c.store.LoadSamples(t.Context(), t0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(c.cpu) {
			t.Errorf("node %s loaded %d samples, want %d", c.name, len(got), len(c.cpu))
			continue
		}
		for i, s := range got {
			if s.Values[metricCPUPercent] != c.cpu[i] {
				t.Errorf("node %s sample %d has CPU %v, want %v", c.name, i, s.Values[metricCPUPercent], c.cpu[i])
			}
		}
	}

	n, err := a.DeleteSamplesBefore(t.Context(), t0.Add(time.Hour))
	if err != nil || n != 3 {
		t.Errorf("node-a DeleteSamplesBefore deleted %d, %v; want its own 3", n, err)
	}
	for _, c := range cases {
		got, err := c.store.LoadSamples(t.Context(), t0, 10)
		if err != nil {
			t.Fatal(err)
		}
		want := len(c.cpu)
		if c.store == a {
			want = 0
		}
		if len(got) != want {
			t.Errorf("after deleting node-a's samples, node %s has %d samples, want %d", c.name, len(got), want)
		}
	}
}
