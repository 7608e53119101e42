package monitor

import (
	"fmt"
	"sync"
	"time"

	"github.com/lambdaflow/lambdaflow/internal/timestamp"
	"github.com/lambdaflow/lambdaflow/pool"
)

// Event is a job or block state change as GET /events sends it.
type Event struct {
	// ID is the event's sequence number. It increases by one per event
	// and starts, at each start of the server, at the start time in
	// microseconds since the Unix epoch, so that it keeps increasing
	// across restarts.
	ID int64 `json:"id"`
	// Type is "job" or "block".
	Type string `json:"type" enums:"job,block"`
	// Job is the job's id.
	Job string `json:"job"`
	// Project is the job's project.
	Project string `json:"project"`
	// Instance is the instance id of a lambda job, else null.
	Instance *string `json:"instance"`
	// Block is the block's name, for a block event.
	Block string `json:"block,omitempty"`
	// State is the job's new state, or the block's.
	State string `json:"state"`
	// Time is when the change happened.
	Time timestamp.Time `json:"time"`
}

// hub keeps a bounded backlog of events and hands each new event to the
// subscribed streams. Publishing never waits for a stream, because a
// subscriber whose buffer is full is dropped. It is safe for concurrent
// use.
type hub struct {
	clientBuffer int

	// mu guards the fields below.
	mu sync.Mutex
	// backlog is a ring of the newest events; start indexes the oldest.
	backlog []Event
	start   int
	nextID  int64
	subs    map[*subscriber]struct{}
	dropped int64
}

// subscriber is one stream's view of the hub.
type subscriber struct {
	events chan Event
	// gone is closed when the hub drops the subscriber because its buffer
	// filled up.
	gone chan struct{}
}

func newHub(backlog, clientBuffer int, start time.Time) *hub {
	first := start.UnixMicro()
	return &hub{
		clientBuffer: clientBuffer,
		backlog:      make([]Event, 0, backlog),
		nextID:       first,
		subs:         map[*subscriber]struct{}{},
	}
}

// publish numbers a pool event, keeps it in the backlog and hands it to
// every subscriber. The pool calls it with its mutex held.
func (h *hub) publish(e pool.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ev := Event{ID: h.nextID, Type: string(e.Type), Job: e.JobID, Project: e.Project,
		Instance: e.Instance, Block: e.Block, State: e.State, Time: timestamp.From(e.Time)}
	h.nextID++
	if len(h.backlog) < cap(h.backlog) {
		h.backlog = append(h.backlog, ev)
	} else if len(h.backlog) > 0 {
		h.backlog[h.start] = ev
		h.start = (h.start + 1) % len(h.backlog)
	}

	for sub := range h.subs {
		select {
		case sub.events <- ev:
		default:
			delete(h.subs, sub)
			close(sub.gone)
			h.dropped++
		}
	}
}

// subscribe registers a stream. With resume set, it also returns the
// kept events after lastID, and a note when events after lastID are no
// longer kept. Subscribing and taking the backlog happen under one lock,
// so no event is lost or sent twice between them.
func (h *hub) subscribe(lastID int64, resume bool) (*subscriber, []Event, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	sub := &subscriber{events: make(chan Event, h.clientBuffer), gone: make(chan struct{})}
	h.subs[sub] = struct{}{}
	if !resume {
		return sub, nil, ""
	}

	oldest := h.nextID
	if len(h.backlog) > 0 {
		oldest = h.backlog[h.start].ID
	}
	var note string
	if lastID+1 < oldest {
		note = fmt.Sprintf("events after id %d are no longer kept; the stream resumes at id %d", lastID, oldest)
	}
	var replay []Event
	for i := range h.backlog {
		ev := h.backlog[(h.start+i)%len(h.backlog)]
		if ev.ID > lastID {
			replay = append(replay, ev)
		}
	}
	return sub, replay, note
}

// unsubscribe removes sub, unless the hub already dropped it.
func (h *hub) unsubscribe(sub *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs, sub)
}

// stats returns the number of subscribers and how many were dropped.
func (h *hub) stats() (subscribers int, dropped int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs), h.dropped
}
