package monitor

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lambdaflow/lambdaflow/pool"
)

func jobEvent(id, state string) pool.Event {
	return pool.Event{Type: pool.EventJob, JobID: id, Project: "p", State: state, Time: time.Now()}
}

func ids(events []Event) []int64 {
	out := make([]int64, len(events))
	for i, e := range events {
		out[i] = e.ID
	}
	return out
}

func TestHubResumesFromBacklog(t *testing.T) {
	h := newHub(3, 10, t0)
	first := t0.UnixMicro()
	for i := range 5 {
		h.publish(jobEvent(fmt.Sprint(i), "QUEUED"))
	}
	// Kept: ids first+2 .. first+4.
	cases := []struct {
		name   string
		lastID int64
		want   []int64
		note   bool
	}{
		{"within backlog", first + 2, []int64{first + 3, first + 4}, false},
		{"just before the oldest kept", first + 1, []int64{first + 2, first + 3, first + 4}, false},
		{"older than the backlog", first, []int64{first + 2, first + 3, first + 4}, true},
		{"from an earlier start", first - 1000, []int64{first + 2, first + 3, first + 4}, true},
		{"newest", first + 4, []int64{}, false},
	}
	for _, c := range cases {
		sub, replay, note := h.subscribe(c.lastID, true)
		h.unsubscribe(sub)
		if got := ids(replay); fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%s: replay %v, want %v", c.name, got, c.want)
		}
		if (note != "") != c.note {
			t.Errorf("%s: note %q, want a note %v", c.name, note, c.note)
		}
	}
	if _, replay, _ := h.subscribe(0, false); len(replay) != 0 {
		t.Errorf("a stream without Last-Event-ID replays %d events, want none", len(replay))
	}
}

func TestHubDropsFullSubscriber(t *testing.T) {
	h := newHub(10, 2, t0)
	slow, _, _ := h.subscribe(0, false)
	fast, _, _ := h.subscribe(0, false)
	for i := range 5 {
		h.publish(jobEvent(fmt.Sprint(i), "QUEUED"))
		<-fast.events
	}
	select {
	case <-slow.gone:
	default:
		t.Fatal("a subscriber that read nothing is still subscribed after 5 events with a buffer of 2")
	}
	select {
	case <-fast.gone:
		t.Fatal("a subscriber that kept up was dropped")
	default:
	}
	if subs, dropped := h.stats(); subs != 1 || dropped != 1 {
		t.Errorf("stats = %d subscribers, %d dropped; want 1 and 1", subs, dropped)
	}
}

// sseClient reads a stream of server-sent events.
type sseClient struct {
	t      *testing.T
	resp   *http.Response
	reader *bufio.Reader
}

func (b *bundle) openStream(t *testing.T, lastEventID string) *sseClient {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", b.server.URL+"/api/v1/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET /events: status %d, type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return &sseClient{t: t, resp: resp, reader: bufio.NewReader(resp.Body)}
}

// next returns the next block of lines up to a blank line.
func (c *sseClient) next() []string {
	c.t.Helper()
	var lines []string
	for {
		line, err := c.reader.ReadString('\n')
		if err != nil {
			c.t.Fatalf("reading the event stream: %v (read %q)", err, lines)
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			return lines
		}
		lines = append(lines, line)
	}
}

func TestStreamSendsEventsInOrder(t *testing.T) {
	b := setup(t, Config{})
	stream := b.openStream(t, "")
	if got := stream.next(); len(got) != 1 || got[0] != ": connected" {
		t.Fatalf("first block = %q, want the comment \": connected\"", got)
	}
	job := b.submit(t, "x")
	b.awaitRun(t, job.ID).Complete(pool.Outcome{})

	var got []string
	for len(got) < 5 {
		block := stream.next()
		if len(block) != 3 || !strings.HasPrefix(block[0], "id: ") || !strings.HasPrefix(block[1], "event: ") {
			t.Fatalf("event block = %q, want id, event and data lines", block)
		}
		got = append(got, strings.TrimPrefix(block[1], "event: ")+" "+block[2])
	}
	for i, want := range []string{`"state":"QUEUED"`, `"state":"RUNNING"`, `"block":"load","state":"SKIPPED"`, `"block":"save","state":"SKIPPED"`, `"state":"COMPLETED"`} {
		if !strings.Contains(got[i], want) {
			t.Errorf("event %d = %s, want it to contain %s", i+1, got[i], want)
		}
	}
}

func TestStalledStreamIsDropped(t *testing.T) {
	b := setup(t, Config{ClientBuffer: 4})
	conn, err := net.Dial("tcp", strings.TrimPrefix(b.server.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := fmt.Fprintf(conn, "GET /api/v1/events HTTP/1.1\r\nHost: test\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the stream to subscribe", func() bool { subs, _ := b.monitor.events.stats(); return subs == 1 })

	// The client never reads. Publishing goes on regardless and drops the
	// stream once the socket buffers and the stream's buffer are full.
	payload := strings.Repeat("x", 4096)
	for i := 0; ; i++ {
		b.monitor.observe(pool.Event{Type: pool.EventBlock, JobID: "j", Project: "p", Block: payload, State: "RUNNING", Time: time.Now()})
		if _, dropped := b.monitor.events.stats(); dropped == 1 {
			break
		}
		if i > 1_000_000 {
			t.Fatal("a stalled stream was never dropped")
		}
	}
	if subs, _ := b.monitor.events.stats(); subs != 0 {
		t.Errorf("%d subscribers after the drop, want 0", subs)
	}
}

func TestStreamNotesLostEvents(t *testing.T) {
	b := setup(t, Config{EventBacklog: 2})
	b.monitor.events.mu.Lock()
	first := b.monitor.events.nextID
	b.monitor.events.mu.Unlock()
	for i := range 5 {
		b.monitor.observe(jobEvent(fmt.Sprint(i), "QUEUED"))
	}

	stream := b.openStream(t, fmt.Sprint(first))
	want := [][]string{
		{": connected"},
		{fmt.Sprintf(": events after id %d are no longer kept; the stream resumes at id %d", first, first+3)},
	}
	for _, w := range want {
		if got := stream.next(); fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("block = %q, want %q", got, w)
		}
	}
	for _, id := range []int64{first + 3, first + 4} {
		if got := stream.next(); len(got) == 0 || got[0] != fmt.Sprintf("id: %d", id) {
			t.Errorf("replayed block = %q, want id %d", got, id)
		}
	}
}

func TestStreamRejectsBadLastEventID(t *testing.T) {
	b := setup(t, Config{})
	req, err := http.NewRequestWithContext(t.Context(), "GET", b.server.URL+"/api/v1/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Last-Event-ID", "-3")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	expectProblemField(t, resp, body, http.StatusBadRequest, "Last-Event-ID")
}
