package monitor

import (
	"encoding/json"
	"encoding/xml"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lambdaflow/lambdaflow/internal/timestamp"
	"github.com/lambdaflow/lambdaflow/pool"
)

func TestSeriesGrowsAtInterval(t *testing.T) {
	interval := 20 * time.Millisecond
	b := setup(t, Config{Interval: interval})
	start := time.Now()
	waitFor(t, "ten samples", func() bool { return b.monitor.history.len() >= 10 })
	elapsed := time.Since(start)

	samples := b.monitor.history.between(start.Add(-time.Second), time.Now().Add(time.Second))
	// A ticker drops ticks when the sampler falls behind but never adds
	// any, so the series grows by at most one sample per interval.
	if limit := int(elapsed/interval) + 2; len(samples) > limit {
		t.Errorf("%d samples in %s, want at most %d at one per %s", len(samples), elapsed, limit, interval)
	}
	for i := 1; i < len(samples); i++ {
		if !samples[i].Time.After(samples[i-1].Time) {
			t.Errorf("sample %d at %s is not after sample %d at %s", i, samples[i].Time, i-1, samples[i-1].Time)
		}
	}
	if measured(samples[0].Values[metricCPUPercent]) {
		t.Errorf("first sample has CPU %v, want unmeasured", samples[0].Values[metricCPUPercent])
	}
}

func TestHistorySurvivesRestart(t *testing.T) {
	b := setup(t, Config{})
	waitFor(t, "three samples", func() bool { return b.monitor.history.len() >= 3 })
	b.monitor.Stop()
	before := b.monitor.history.between(t0, time.Now().Add(time.Hour))

	second, err := New(Config{Interval: time.Hour, DataDir: t.TempDir()}, b.pool, b.store)
	if err != nil {
		t.Fatal(err)
	}
	if err := second.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer second.Stop()
	after := second.history.between(t0, before[len(before)-1].Time.Add(time.Millisecond))
	if len(after) != len(before) {
		t.Fatalf("restarted monitor holds %d of the %d samples taken before", len(after), len(before))
	}
	for i := range before {
		if !after[i].Time.Equal(before[i].Time.Truncate(time.Millisecond)) {
			t.Errorf("sample %d at %s, want %s", i, after[i].Time, before[i].Time)
		}
	}
}

func TestResourcesRejectBadQuery(t *testing.T) {
	b := setup(t, Config{})
	cases := []struct {
		query string
		field string
	}{
		{"from=yesterday", "from"},
		{"to=2026-13-01T00:00:00Z", "to"},
		{"from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", "from"},
		{"step=fast", "step"},
		{"step=-1s", "step"},
		{"step=1ms", "step"},
	}
	for _, c := range cases {
		resp, body := b.get(t, "/api/v1/monitor/resources?"+c.query)
		expectProblemField(t, resp, body, http.StatusBadRequest, c.field)
	}
}

func TestResourcesDownsampleHistory(t *testing.T) {
	b := setup(t, Config{})
	waitFor(t, "five samples", func() bool { return b.monitor.history.len() >= 5 })
	to := time.Now().UTC()
	query := url.Values{"from": {to.Add(-time.Minute).Format(time.RFC3339Nano)}, "to": {to.Format(time.RFC3339Nano)}, "step": {"1m"}}
	resp, body := b.get(t, "/api/v1/monitor/resources?"+query.Encode())
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var got Resources
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if got.Interval != "20ms" || got.Step != "1m" || len(got.Samples) != 1 {
		t.Fatalf("interval %q, step %q, %d buckets; want 20ms, 1m and one bucket", got.Interval, got.Step, len(got.Samples))
	}
	bucket := got.Samples[0]
	if bucket.Count < 5 || bucket.MemoryTotalBytes == nil || bucket.CPUPercent == nil {
		t.Fatalf("bucket = %+v, want at least 5 samples with memory and CPU", bucket)
	}
	if s := bucket.CPUPercent; s.Min > s.Mean || s.Mean > s.Max {
		t.Errorf("CPU stats %+v are not ordered min <= mean <= max", *s)
	}
}

func TestChartIsSVG(t *testing.T) {
	b := setup(t, Config{})
	waitFor(t, "three samples", func() bool { return b.monitor.history.len() >= 3 })
	for _, name := range chartNames() {
		resp, body := b.get(t, "/api/v1/monitor/charts/"+name+".svg?range=1h")
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/svg+xml" {
			t.Errorf("%s: status %d, type %q", name, resp.StatusCode, resp.Header.Get("Content-Type"))
			continue
		}
		var doc struct {
			XMLName xml.Name
		}
		if err := xml.Unmarshal(body, &doc); err != nil || doc.XMLName.Local != "svg" {
			t.Errorf("%s: body is not an SVG document (%v): %.200s", name, err, body)
		}
		for _, label := range []string{"time (UTC)", charts[name].yLabel} {
			if !strings.Contains(string(body), xmlEscape(label)) {
				t.Errorf("%s: the chart lacks the axis label %q", name, label)
			}
		}
	}
}

func xmlEscape(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

func TestChartRejectsBadRequest(t *testing.T) {
	b := setup(t, Config{History: time.Hour})
	resp, body := b.get(t, "/api/v1/monitor/charts/bogus.svg")
	expectProblemField(t, resp, body, http.StatusNotFound, "")
	if !strings.Contains(string(body), `\"bogus\"`) {
		t.Errorf("404 does not name the chart: %s", body)
	}
	resp, body = b.get(t, "/api/v1/monitor/charts/cpu.png")
	expectProblemField(t, resp, body, http.StatusNotFound, "")
	for _, r := range []string{"soon", "0s", "-1h", "2h"} {
		resp, body := b.get(t, "/api/v1/monitor/charts/cpu.svg?range="+r)
		expectProblemField(t, resp, body, http.StatusBadRequest, "range")
	}
}

func TestQueueView(t *testing.T) {
	b := setup(t, Config{RecentJobs: 1})
	first := b.submit(t, "x")
	run := b.awaitRun(t, first.ID)
	started := timestamp.Ptr(time.Now().Add(-time.Second))
	run.Update(pool.BlockRun{Name: "load", Type: "csv.read", State: pool.BlockRunning, StartedAt: started})
	blocked := b.submit(t, "x")
	queued := b.submit(t, "y")

	var view QueueView
	resp, body := b.get(t, "/api/v1/monitor/queue")
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &view) != nil {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if view.Counts != (QueueCounts{Running: 1, Queued: 1, Blocked: 1}) || view.ConcurrentJobs != 1 || view.MaxConcurrentJobs != 4 {
		t.Errorf("counts %+v, limit %d of %d; want 1 running, 1 queued, 1 blocked, limit 1 of 4",
			view.Counts, view.ConcurrentJobs, view.MaxConcurrentJobs)
	}
	if len(view.Running) != 1 || view.Running[0].ID != first.ID {
		t.Fatalf("running = %v, want the first job", view.Running)
	}
	if d := view.Running[0].Blocks[0].DurationMs; d == nil || *d < 1000 {
		t.Errorf("running block duration = %v, want its time so far, at least 1000ms", d)
	}
	if len(view.Waiting) != 2 || view.Waiting[0].ID != blocked.ID || view.Waiting[1].ID != queued.ID {
		t.Fatalf("waiting = %v, want the blocked job and then the queued one", view.Waiting)
	}
	if w := view.Waiting[0].WaitingFor; w == nil || w.Reason != pool.ReasonProjectLock || w.BlockedBy == nil || *w.BlockedBy != first.ID {
		t.Errorf("blocked job waits for %+v, want PROJECT_LOCK behind %s", w, first.ID)
	}
	if w := view.Waiting[1].WaitingFor; w == nil || w.Reason != pool.ReasonSlot {
		t.Errorf("queued job waits for %+v, want SLOT", w)
	}

	run.Complete(pool.Outcome{})
	b.awaitRun(t, blocked.ID).Complete(pool.Outcome{})
	waitFor(t, "two finished jobs", func() bool { return b.pool.Counts().Running == 1 && b.pool.Counts().Queued == 0 })
	resp, body = b.get(t, "/api/v1/monitor/queue?recent=2")
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &view) != nil {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if len(view.Recent) != 2 || view.Recent[0].ID != blocked.ID || view.Recent[1].ID != first.ID {
		t.Errorf("recent = %v, want the two finished jobs, newest first", view.Recent)
	}
	_, body = b.get(t, "/api/v1/monitor/queue")
	if json.Unmarshal(body, &view) != nil || len(view.Recent) != 1 {
		t.Errorf("default recent lists %d jobs, want the configured 1", len(view.Recent))
	}
	for _, bad := range []string{"-1", "x", "201"} {
		resp, body := b.get(t, "/api/v1/monitor/queue?recent="+bad)
		expectProblemField(t, resp, body, http.StatusBadRequest, "recent")
	}
}

func TestMetricsCountJobs(t *testing.T) {
	b := setup(t, Config{})
	done := b.submit(t, "x")
	run := b.awaitRun(t, done.ID)
	ms := int64(1500)
	run.Update(pool.BlockRun{Name: "load", Type: "csv.read", State: pool.BlockCompleted, DurationMs: &ms})
	run.Complete(pool.Outcome{})
	stopped := b.submit(t, "x")
	b.awaitRun(t, stopped.ID)
	if _, err := b.pool.StopJob(t.Context(), stopped.ID, "test", ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the stopped job to end", func() bool { return b.pool.Counts().Running == 0 })
	b.awaitRun(t, b.submit(t, "y").ID)
	b.submit(t, "y")
	b.submit(t, "z")

	resp, body := b.get(t, "/metrics")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	text := string(body)
	for _, want := range []string{
		`lambdaflow_jobs_finished_total{state="COMPLETED"} 1`,
		`lambdaflow_jobs_finished_total{state="CANCELLED"} 1`,
		`lambdaflow_jobs_finished_total{state="FAILED"} 0`,
		`lambdaflow_job_duration_seconds_count{state="COMPLETED"} 1`,
		`lambdaflow_block_duration_seconds_bucket{type="csv.read",le="1"} 0`,
		`lambdaflow_block_duration_seconds_bucket{type="csv.read",le="2.5"} 1`,
		`lambdaflow_queue_wait_seconds_count 3`,
		`lambdaflow_running_jobs 1`,
		`lambdaflow_queue_depth{state="QUEUED"} 1`,
		`lambdaflow_queue_depth{state="BLOCKED"} 1`,
		`lambdaflow_concurrent_jobs 1`,
		`go_goroutines `,
		`process_resident_memory_bytes `,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// expectProblemField checks a problem document's status and, when field
// is not empty, that it names field.
func expectProblemField(t *testing.T, resp *http.Response, body []byte, status int, field string) {
	t.Helper()
	var problem struct {
		Status int `json:"status"`
		Errors []struct {
			Field string `json:"field"`
		} `json:"errors"`
	}
	if resp.StatusCode != status || json.Unmarshal(body, &problem) != nil || problem.Status != status {
		t.Errorf("%s: status %d, want a %d problem; body %s", resp.Request.URL, resp.StatusCode, status, body)
		return
	}
	if field != "" && (len(problem.Errors) != 1 || problem.Errors[0].Field != field) {
		t.Errorf("%s: problem names %+v, want field %q", resp.Request.URL, problem.Errors, field)
	}
}
