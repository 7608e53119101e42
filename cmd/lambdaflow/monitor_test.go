package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// stats is the min, mean and max of one metric in a resource bucket.
type stats struct {
	Min  float64 `json:"min"`
	Mean float64 `json:"mean"`
	Max  float64 `json:"max"`
}

// bucket is the part of a resource bucket the tests read.
type bucket struct {
	Time                 time.Time `json:"time"`
	Count                int       `json:"count"`
	CPUPercent           *stats    `json:"cpuPercent"`
	ProcessCPUPercent    *stats    `json:"processCpuPercent"`
	MemoryUsedBytes      *stats    `json:"memoryUsedBytes"`
	MemoryAvailableBytes *stats    `json:"memoryAvailableBytes"`
	MemoryTotalBytes     *stats    `json:"memoryTotalBytes"`
	DiskUsedBytes        *stats    `json:"diskUsedBytes"`
	DiskTotalBytes       *stats    `json:"diskTotalBytes"`
	Goroutines           *stats    `json:"goroutines"`
	RunningJobs          *stats    `json:"runningJobs"`
	ConcurrentJobs       *stats    `json:"concurrentJobs"`
}

// samplesSince returns the resource buckets from since until now in steps
// of 10ms, which holds one sample per bucket at the tests' interval of
// 100ms.
func (s *instance) samplesSince(since time.Time) []bucket {
	s.t.Helper()
	query := url.Values{"from": {since.UTC().Format(time.RFC3339Nano)}, "step": {"10ms"}}
	var out struct {
		Samples []bucket `json:"samples"`
	}
	expectStatus(s.t, s.do("GET", "/api/v1/monitor/resources?"+query.Encode(), nil, &out), http.StatusOK)
	return out.Samples
}

// waitSamples polls the resource history until cond holds for the
// samples since the given time.
func (s *instance) waitSamples(since time.Time, what string, cond func([]bucket) bool) []bucket {
	s.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		samples := s.samplesSince(since)
		if cond(samples) {
			return samples
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("the resource history never showed %s; last %d samples", what, len(samples))
		}
		<-tick.C
	}
}

func TestMonitorSamplesResources(t *testing.T) {
	since := time.Now().Add(-time.Second)
	s := startServer(t, t.TempDir(), "--monitor-interval", "100ms")
	samples := s.waitSamples(since, "five samples", func(b []bucket) bool { return len(b) >= 5 })

	if samples[0].CPUPercent != nil || samples[0].ProcessCPUPercent != nil {
		t.Errorf("first sample has CPU %+v and service CPU %+v, want both null", samples[0].CPUPercent, samples[0].ProcessCPUPercent)
	}
	// The sampler takes one sample at start and one per tick after, and a
	// ticker that falls behind drops ticks, so the series never grows
	// faster than one sample per interval.
	total := 0
	for _, b := range samples {
		total += b.Count
	}
	if limit := int(time.Since(since)/(100*time.Millisecond)) + 1; total > limit {
		t.Errorf("%d samples since %s, want at most %d at one per 100ms", total, since, limit)
	}
	for i, b := range samples {
		if i > 0 && (b.CPUPercent == nil || b.ProcessCPUPercent == nil) {
			t.Errorf("sample %d lacks a CPU reading", i)
			continue
		}
		if i > 0 && (b.CPUPercent.Max > 100 || b.CPUPercent.Min < 0 || b.ProcessCPUPercent.Max > 100 || b.ProcessCPUPercent.Min < 0) {
			t.Errorf("sample %d: CPU %v%%, service CPU %v%%, want 0 to 100", i, b.CPUPercent.Max, b.ProcessCPUPercent.Max)
		}
		if b.MemoryUsedBytes == nil || b.MemoryTotalBytes == nil || b.MemoryUsedBytes.Max > b.MemoryTotalBytes.Min {
			t.Errorf("sample %d: memory used %+v of total %+v, want used at most total", i, b.MemoryUsedBytes, b.MemoryTotalBytes)
		}
		if b.DiskUsedBytes == nil || b.DiskTotalBytes == nil || b.DiskUsedBytes.Max > b.DiskTotalBytes.Min {
			t.Errorf("sample %d: disk used %+v of total %+v, want used at most total", i, b.DiskUsedBytes, b.DiskTotalBytes)
		}
		if b.ConcurrentJobs == nil || b.ConcurrentJobs.Max != 1 || b.RunningJobs == nil || b.RunningJobs.Max != 0 {
			t.Errorf("sample %d: slot limit %+v and running %+v, want 1 and 0", i, b.ConcurrentJobs, b.RunningJobs)
		}
	}
}

// createCruncher stores a CPU-heavy project: a compute block folds
// 1..20000 for each of rows rows. 100 rows keep one core busy for about
// half a second, and for seconds under the race detector.
func (s *instance) createCruncher(name string, rows int) {
	s.t.Helper()
	inline := make([]any, rows)
	for i := range inline {
		inline[i] = map[string]any{"n": i}
	}
	def := map[string]any{
		"name": name,
		"blocks": []any{
			map[string]any{"name": "rows", "type": "inline", "options": map[string]any{"rows": inline}},
			map[string]any{"name": "crunch", "type": "compute", "inputs": []any{"rows"},
				"options": map[string]any{"fields": map[string]any{"x": "reduce(1..20000, #acc + # * n, 0)"}}},
			map[string]any{"name": "total", "type": "aggregate", "inputs": []any{"crunch"},
				"options": map[string]any{"aggregates": map[string]any{"sum": "sum(x)"}}},
		},
		"result": "total",
	}
	expectStatus(s.t, s.do("POST", "/api/v1/projects", def, nil), http.StatusCreated)
}

// meanServiceCPU returns the mean service CPU percent of the samples
// that measured it, and how many did.
func meanServiceCPU(samples []bucket) (float64, int) {
	sum, n := 0.0, 0
	for _, b := range samples {
		if b.ProcessCPUPercent != nil {
			sum += b.ProcessCPUPercent.Mean
			n++
		}
	}
	return sum / float64(max(n, 1)), n
}

func TestCPUHeavyJobRaisesCPU(t *testing.T) {
	since := time.Now()
	s := startServer(t, t.TempDir(), "--monitor-interval", "100ms")
	s.createCruncher("crunch", 100)
	idle := s.waitSamples(since, "ten idle samples", func(b []bucket) bool { return len(b) >= 10 })
	idleMean, _ := meanServiceCPU(idle)

	j := s.execute("crunch", nil)
	// The job runs to its end, so that every sample taken while it ran
	// measures its work.
	j = s.waitFinal(j.ID)
	if j.State != "COMPLETED" {
		t.Fatalf("cruncher ended %s with %+v, want COMPLETED", j.State, j.Error)
	}
	started, _ := time.Parse(time.RFC3339Nano, *j.StartedAt)
	finished, _ := time.Parse(time.RFC3339Nano, *j.FinishedAt)
	var busy []bucket
	for _, b := range s.samplesSince(started) {
		if b.Time.Before(finished) {
			busy = append(busy, b)
		}
	}

	// Other processes on the machine take their share of the cores, so
	// the test expects a clear rise rather than a full core.
	busyMean, n := meanServiceCPU(busy)
	if n < 3 {
		t.Fatalf("only %d samples measured the service while the job ran for %s", n, finished.Sub(started))
	}
	if busyMean < idleMean+5 {
		t.Errorf("service CPU averaged %.1f%% while the job ran and %.1f%% before, want a rise of at least 5 points", busyMean, idleMean)
	}
	// A sample counts the jobs a little after its time, so the last one
	// before the finish may already count none.
	for _, b := range busy {
		if b.RunningJobs != nil && b.RunningJobs.Max == 1 {
			return
		}
	}
	t.Errorf("no sample while the job ran counts a running job")
}

// nodeStatus is the part of a node of GET /monitor/nodes the tests read.
type nodeStatus struct {
	Name              string   `json:"name"`
	Alive             bool     `json:"alive"`
	StartedAt         string   `json:"startedAt"`
	HeartbeatAt       string   `json:"heartbeatAt"`
	ConcurrentJobs    int      `json:"concurrentJobs"`
	MaxConcurrentJobs int      `json:"maxConcurrentJobs"`
	RunningJobs       []string `json:"runningJobs"`
	Resources         *bucket  `json:"resources"`
}

// nodes returns the nodes of GET /monitor/nodes.
func (s *instance) nodes() []nodeStatus {
	s.t.Helper()
	var list struct {
		Nodes []nodeStatus `json:"nodes"`
	}
	expectStatus(s.t, s.do("GET", "/api/v1/monitor/nodes", nil, &list), http.StatusOK)
	return list.Nodes
}

func TestMonitorNodesShowsLocalNode(t *testing.T) {
	s := startServer(t, t.TempDir(), "--monitor-interval", "100ms")
	s.createSleeper("sleepy", 3600)
	running := s.execute("sleepy", nil)
	s.waitState(running.ID, "RUNNING")
	expectStatus(t, s.do("PATCH", "/api/v1/settings", map[string]any{"concurrentJobs": 2}, nil), http.StatusOK)
	var settings struct {
		ConcurrentJobs    int `json:"concurrentJobs"`
		MaxConcurrentJobs int `json:"maxConcurrentJobs"`
	}
	expectStatus(t, s.do("GET", "/api/v1/settings", nil, &settings), http.StatusOK)

	// The resources are the latest sample, so wait for one that counts
	// the running job.
	var nodes []nodeStatus
	deadline := time.Now().Add(60 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		nodes = s.nodes()
		if len(nodes) != 1 {
			t.Fatalf("%d nodes outside a cluster, want 1: %+v", len(nodes), nodes)
		}
		if r := nodes[0].Resources; r != nil && r.RunningJobs != nil && r.RunningJobs.Max == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the node's resources never counted the running job: %+v", nodes[0].Resources)
		}
		<-tick.C
	}

	node := nodes[0]
	if want := expectedNodeName(); node.Name != want {
		t.Errorf("name = %q, want %s", node.Name, want)
	}
	if !node.Alive {
		t.Error("the local node is not alive")
	}
	if node.ConcurrentJobs != settings.ConcurrentJobs || node.MaxConcurrentJobs != settings.MaxConcurrentJobs {
		t.Errorf("slots %d, cap %d; want the settings' %d, cap %d",
			node.ConcurrentJobs, node.MaxConcurrentJobs, settings.ConcurrentJobs, settings.MaxConcurrentJobs)
	}
	if len(node.RunningJobs) != 1 || node.RunningJobs[0] != running.ID {
		t.Errorf("running jobs = %v, want [%s]", node.RunningJobs, running.ID)
	}
	if node.StartedAt == "" || node.HeartbeatAt < node.StartedAt {
		t.Errorf("startedAt %q, heartbeatAt %q; want a start before the heartbeat", node.StartedAt, node.HeartbeatAt)
	}
	if r := node.Resources; r.Count != 1 || r.MemoryTotalBytes == nil || r.ConcurrentJobs == nil {
		t.Errorf("resources = %+v, want one sample with memory and the slot limit", r)
	}

	// Outside a cluster no job names a node; in a cluster a job names
	// the node that runs it.
	var view struct {
		Running []map[string]any `json:"running"`
	}
	expectStatus(t, s.do("GET", "/api/v1/monitor/queue", nil, &view), http.StatusOK)
	if len(view.Running) != 1 {
		t.Fatalf("queue lists %d running jobs, want 1", len(view.Running))
	}
	if node, ok := view.Running[0]["node"]; !ok || node != expectedJobNode() {
		t.Errorf("running job's node = %v (present %v), want %v", node, ok, expectedJobNode())
	}
}

// queueView is the part of GET /monitor/queue the tests read.
type queueView struct {
	ConcurrentJobs int `json:"concurrentJobs"`
	Counts         struct {
		Running int `json:"running"`
		Queued  int `json:"queued"`
		Blocked int `json:"blocked"`
	} `json:"counts"`
	Running []queueJob `json:"running"`
	Waiting []queueJob `json:"waiting"`
	Recent  []queueJob `json:"recent"`
}

type queueJob struct {
	job
	Position *int `json:"position"`
	Blocks   []struct {
		Name       string `json:"name"`
		State      string `json:"state"`
		DurationMs *int64 `json:"durationMs"`
	} `json:"blocks"`
}

func TestQueueViewListsStartOrder(t *testing.T) {
	s := startServer(t, t.TempDir())
	s.createSleeper("long", 3600)
	s.createSleeper("other", 3600)
	a := s.execute("long", nil)
	s.waitJob(a.ID, "in its delay block", func(j job) bool { return j.State == "RUNNING" && j.Blocks[1].State == "RUNNING" })
	b := s.execute("long", nil)
	c := s.execute("other", nil)
	d := s.execute("long", nil)

	var view queueView
	expectStatus(t, s.do("GET", "/api/v1/monitor/queue", nil, &view), http.StatusOK)
	if view.Counts.Running != 1 || view.Counts.Queued != 1 || view.Counts.Blocked != 2 || view.ConcurrentJobs != 1 {
		t.Errorf("counts %+v with limit %d, want 1 running, 1 queued, 2 blocked, limit 1", view.Counts, view.ConcurrentJobs)
	}
	if len(view.Running) != 1 || view.Running[0].ID != a.ID {
		t.Fatalf("running = %+v, want job %s", view.Running, a.ID)
	}
	if wait := view.Running[0].Blocks[1]; wait.State != "RUNNING" || wait.DurationMs == nil {
		t.Errorf("running delay block = %+v, want RUNNING with its duration so far", wait)
	}

	want := []struct {
		id, reason string
		blockedBy  *string
	}{
		{b.ID, "PROJECT_LOCK", &a.ID},
		{c.ID, "SLOT", nil},
		{d.ID, "PROJECT_LOCK", &b.ID},
	}
	if len(view.Waiting) != len(want) {
		t.Fatalf("%d waiting jobs, want %d", len(view.Waiting), len(want))
	}
	for i, w := range want {
		got := view.Waiting[i]
		if got.ID != w.id || got.Position == nil || *got.Position != i+1 {
			t.Errorf("waiting[%d] = job %s at position %v, want %s at %d", i, got.ID, got.Position, w.id, i+1)
		}
		if got.WaitingFor == nil || got.WaitingFor.Reason != w.reason {
			t.Errorf("waiting[%d] waits for %+v, want %s", i, got.WaitingFor, w.reason)
			continue
		}
		if (w.blockedBy == nil) != (got.WaitingFor.BlockedBy == nil) || (w.blockedBy != nil && *got.WaitingFor.BlockedBy != *w.blockedBy) {
			t.Errorf("waiting[%d] is blocked by %v, want %v", i, got.WaitingFor.BlockedBy, w.blockedBy)
		}
	}

	expectStatus(t, s.do("POST", "/api/v1/jobs/"+a.ID+"/stop", nil, nil), http.StatusOK)
	s.waitFinal(a.ID)
	s.waitState(b.ID, "RUNNING")
	expectStatus(t, s.do("GET", "/api/v1/monitor/queue?recent=1", nil, &view), http.StatusOK)
	if len(view.Recent) != 1 || view.Recent[0].ID != a.ID || view.Recent[0].State != "CANCELLED" {
		t.Errorf("recent = %+v, want the cancelled job %s", view.Recent, a.ID)
	}
	if len(view.Running) != 1 || view.Running[0].ID != b.ID {
		t.Errorf("running = %+v, want job %s, next in line", view.Running, b.ID)
	}
	p := expectProblemCode(t, s.do("GET", "/api/v1/monitor/queue?recent=many", nil, nil), "BAD_REQUEST")
	expectFields(t, p, "recent")
}

// sseEvent is one event or comment read from GET /events.
type sseEvent struct {
	ID      int64
	Event   string
	Comment string
	Data    struct {
		ID      int64   `json:"id"`
		Type    string  `json:"type"`
		Job     string  `json:"job"`
		Project string  `json:"project"`
		Block   string  `json:"block"`
		State   string  `json:"state"`
		Time    string  `json:"time"`
		Inst    *string `json:"instance"`
	}
}

// eventStream reads GET /events in a goroutine into a channel.
type eventStream struct {
	t      *testing.T
	cancel context.CancelFunc
	events chan sseEvent
	done   chan struct{}
}

// openEvents opens the event stream, resuming after lastEventID unless
// it is empty.
func (s *instance) openEvents(lastEventID string) *eventStream {
	s.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", s.base+"/api/v1/events", nil)
	if err != nil {
		s.t.Fatal(err)
	}
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	expectStatus(s.t, resp, http.StatusOK)
	es := &eventStream{t: s.t, cancel: cancel, events: make(chan sseEvent, 10000), done: make(chan struct{})}
	go es.read(resp.Body)
	s.t.Cleanup(es.close)
	return es
}

func (es *eventStream) read(body io.ReadCloser) {
	defer close(es.done)
	defer close(es.events)
	defer body.Close()
	sc := bufio.NewScanner(body)
	var ev sseEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			es.events <- ev
			ev = sseEvent{}
		case strings.HasPrefix(line, ": "):
			ev.Comment = strings.TrimPrefix(line, ": ")
		case strings.HasPrefix(line, "id: "):
			ev.ID, _ = strconv.ParseInt(strings.TrimPrefix(line, "id: "), 10, 64)
		case strings.HasPrefix(line, "event: "):
			ev.Event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev.Data); err != nil {
				ev.Comment = "undecodable data: " + line
			}
		}
	}
}

func (es *eventStream) close() {
	es.cancel()
	<-es.done
}

// next returns the next event, skipping comments, or fails the test
// after 60 seconds.
func (es *eventStream) next() sseEvent {
	es.t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case ev, ok := <-es.events:
			if !ok {
				es.t.Fatal("the event stream ended")
			}
			if ev.Comment == "" {
				return ev
			}
		case <-timeout:
			es.t.Fatal("no event within 60s")
		}
	}
}

// until returns the events up to and including the first for which stop
// holds.
func (es *eventStream) until(stop func(sseEvent) bool) []sseEvent {
	es.t.Helper()
	var out []sseEvent
	for {
		ev := es.next()
		out = append(out, ev)
		if stop(ev) {
			return out
		}
	}
}

// statesOf lists the states of job id's events of the given type,
// "job" or a block name.
func statesOf(events []sseEvent, id, subject string) []string {
	var out []string
	for _, ev := range events {
		if ev.Data.Job != id {
			continue
		}
		if (subject == "job" && ev.Event == "job") || (ev.Event == "block" && ev.Data.Block == subject) {
			out = append(out, ev.Data.State)
		}
	}
	return out
}

func jobEnded(id, state string) func(sseEvent) bool {
	return func(ev sseEvent) bool { return ev.Event == "job" && ev.Data.Job == id && ev.Data.State == state }
}

func TestEventsFollowEveryStateChange(t *testing.T) {
	s := startServer(t, t.TempDir())
	s.createSleeper("quick", 0)
	s.createSleeper("long", 3600)
	stream := s.openEvents("")

	j := s.execute("quick", nil)
	events := stream.until(jobEnded(j.ID, "COMPLETED"))
	if got, want := statesOf(events, j.ID, "job"), []string{"QUEUED", "RUNNING", "COMPLETED"}; !slices.Equal(got, want) {
		t.Errorf("job states %q, want %q", got, want)
	}
	for _, block := range []string{"rows", "wait", "after"} {
		if got, want := statesOf(events, j.ID, block), []string{"RUNNING", "COMPLETED"}; !slices.Equal(got, want) {
			t.Errorf("block %s states %q, want %q (PENDING is the state every block starts in)", block, got, want)
		}
	}
	for i, ev := range events {
		if ev.ID != ev.Data.ID || (i > 0 && ev.ID != events[i-1].ID+1) {
			t.Errorf("event %d has id %d (data id %d) after %d, want consecutive ids", i, ev.ID, ev.Data.ID, events[max(i-1, 0)].ID)
		}
		if ev.Data.Project != "quick" || ev.Data.Inst != nil || ev.Data.Time == "" {
			t.Errorf("event %d = %+v, want project quick, no instance and a time", i, ev.Data)
		}
	}

	long := s.execute("long", nil)
	stream.until(func(ev sseEvent) bool {
		return ev.Data.Job == long.ID && ev.Event == "block" && ev.Data.Block == "wait" && ev.Data.State == "RUNNING"
	})
	expectStatus(t, s.do("POST", "/api/v1/jobs/"+long.ID+"/stop", nil, nil), http.StatusOK)
	events = stream.until(jobEnded(long.ID, "CANCELLED"))
	if got, want := statesOf(events, long.ID, "job"), []string{"CANCELLING", "CANCELLED"}; !slices.Equal(got, want) {
		t.Errorf("stopped job states %q, want %q", got, want)
	}
	if got, want := statesOf(events, long.ID, "wait"), []string{"CANCELLED"}; !slices.Equal(got, want) {
		t.Errorf("stopped delay block states %q, want %q", got, want)
	}
	if got, want := statesOf(events, long.ID, "after"), []string{"SKIPPED"}; !slices.Equal(got, want) {
		t.Errorf("block after the stopped one: states %q, want %q", got, want)
	}
}

func TestEventsResumeAfterLastEventID(t *testing.T) {
	s := startServer(t, t.TempDir())
	s.createSleeper("quick", 0)
	first := s.openEvents("")
	a := s.execute("quick", nil)
	seen := first.until(jobEnded(a.ID, "COMPLETED"))
	last := seen[len(seen)-1].ID
	first.close()

	b := s.execute("quick", nil)
	s.waitFinal(b.ID)
	resumed := s.openEvents(strconv.FormatInt(last, 10))
	missed := resumed.until(jobEnded(b.ID, "COMPLETED"))
	if missed[0].ID != last+1 {
		t.Errorf("the resumed stream starts at id %d, want %d", missed[0].ID, last+1)
	}
	if got, want := statesOf(missed, b.ID, "job"), []string{"QUEUED", "RUNNING", "COMPLETED"}; !slices.Equal(got, want) {
		t.Errorf("missed job states %q, want %q", got, want)
	}
	if got := statesOf(missed, a.ID, "job"); len(got) != 0 {
		t.Errorf("the resumed stream repeats events of the first job: %q", got)
	}

	p := expectProblemCode(t, s.do("GET", "/api/v1/events?lastEventId=yesterday", nil, nil), "BAD_REQUEST")
	expectFields(t, p, "lastEventId")
}

func TestStalledEventClientDoesNotStallJobs(t *testing.T) {
	s := startServer(t, t.TempDir())
	s.createSleeper("quick", 0)
	stream := s.openEvents("")
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// This client requests the stream and never reads it.
	if _, err := fmt.Fprintf(conn, "GET /api/v1/events HTTP/1.1\r\nHost: %s\r\n\r\n", strings.TrimPrefix(s.base, "http://")); err != nil {
		t.Fatal(err)
	}
	// Every job submitted while the stalled stream is open runs to the
	// end, and a reading client still gets every event.
	var ids []string
	for range 30 {
		ids = append(ids, s.execute("quick", nil).ID)
	}
	for _, id := range ids {
		if j := s.waitFinal(id); j.State != "COMPLETED" {
			t.Errorf("job %s ended %s, want COMPLETED", id, j.State)
		}
	}
	stream.until(jobEnded(ids[len(ids)-1], "COMPLETED"))
}

func TestMonitorHistorySurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	since := time.Now().Add(-time.Second)
	s := startServer(t, dir, "--monitor-interval", "100ms")
	before := s.waitSamples(since, "three samples", func(b []bucket) bool { return len(b) >= 3 })
	s.terminate()

	s = startServer(t, dir, "--monitor-interval", "1h")
	after := s.samplesSince(since)
	if len(after) < len(before) {
		t.Fatalf("after a restart the history holds %d samples since the first start, want at least %d", len(after), len(before))
	}
	// The database keeps milliseconds, so a sample may move into the
	// 10ms bucket just before its old one.
	for i := range before {
		if d := before[i].Time.Sub(after[i].Time); d < 0 || d > 10*time.Millisecond {
			t.Errorf("sample %d is in the bucket at %s after the restart, want the one at %s", i, after[i].Time, before[i].Time)
		}
	}
}

func TestMetricsAfterJobs(t *testing.T) {
	s := startServer(t, t.TempDir())
	s.createSleeper("quick", 0)
	s.createSleeper("long", 3600)
	def := map[string]any{"name": "failing", "blocks": []any{
		map[string]any{"name": "rows", "type": "inline", "options": map[string]any{"rows": []any{map[string]any{"n": 1}}}},
		map[string]any{"name": "check", "type": "assert", "inputs": []any{"rows"}, "options": map[string]any{"where": "n > 5", "message": "n is too small"}},
	}}
	expectStatus(t, s.do("POST", "/api/v1/projects", def, nil), http.StatusCreated)

	for range 2 {
		s.waitFinal(s.execute("quick", nil).ID)
	}
	if j := s.waitFinal(s.execute("failing", nil).ID); j.State != "FAILED" {
		t.Fatalf("failing job ended %s, want FAILED", j.State)
	}
	// The sleepers' inline block has completed once their delay block
	// runs, so that each job adds one inline duration to the counts.
	delaying := func(j job) bool {
		return j.State == "RUNNING" && len(j.Blocks) == 3 && j.Blocks[1].State == "RUNNING"
	}
	long := s.execute("long", nil)
	s.waitJob(long.ID, "its delay block running", delaying)
	expectStatus(t, s.do("POST", "/api/v1/jobs/"+long.ID+"/stop", nil, nil), http.StatusOK)
	s.waitFinal(long.ID)
	waiting := s.execute("long", nil)
	s.waitJob(waiting.ID, "its delay block running", delaying)
	s.execute("long", nil) // BLOCKED behind the running job

	resp := s.do("GET", "/metrics", nil, nil)
	expectStatus(t, resp, http.StatusOK)
	body, _ := io.ReadAll(resp.Body)
	text := string(body)
	for _, want := range []string{
		`lambdaflow_jobs_finished_total{state="COMPLETED"} 2`,
		`lambdaflow_jobs_finished_total{state="FAILED"} 1`,
		`lambdaflow_jobs_finished_total{state="CANCELLED"} 1`,
		`lambdaflow_job_duration_seconds_count{state="COMPLETED"} 2`,
		`lambdaflow_job_duration_seconds_count{state="FAILED"} 1`,
		`lambdaflow_queue_wait_seconds_count 5`,
		`lambdaflow_block_duration_seconds_count{type="inline"} 5`,
		`lambdaflow_block_duration_seconds_count{type="assert"} 1`,
		`lambdaflow_running_jobs 1`,
		`lambdaflow_queue_depth{state="BLOCKED"} 1`,
		`lambdaflow_queue_depth{state="QUEUED"} 0`,
		`lambdaflow_concurrent_jobs 1`,
		`go_goroutines `,
		`process_resident_memory_bytes `,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestShutdownEndsEventStreams(t *testing.T) {
	s := startServer(t, t.TempDir())
	stream := s.openEvents("")
	start := time.Now()
	s.terminate()
	select {
	case <-stream.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the event stream stayed open after the server stopped")
	}
	// The server waits at most requestDrainTimeout for open handlers. A
	// stream that ends when shutdown begins lets it stop well before.
	if elapsed := time.Since(start); elapsed >= requestDrainTimeout {
		t.Errorf("the server took %s to stop with an open event stream, want less than %s", elapsed, requestDrainTimeout)
	}
}
