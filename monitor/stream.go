package monitor

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/lambdaflow/lambdaflow/internal/httpapi"
)

// streamWriteTimeout bounds each write to an event stream. A client that
// stops reading then fails its stream instead of holding it open.
const streamWriteTimeout = 10 * time.Second

// streamEvents sends job and block state changes as server-sent events.
//
//	@Summary		Stream job and block state changes
//	@Description	Sends a server-sent event for every job state change, including the first state (QUEUED or BLOCKED) of a submitted job, and for every block state change. Each event has an `id`, an `event` (job or block) and `data` (an Event as JSON). A client resumes with the Last-Event-ID header or the lastEventId query parameter and gets the kept events after that id first; the server keeps the last 1000 events. Every stream starts with the comment ": connected". When events after that id are no longer kept, the comment ": events after id N are no longer kept; the stream resumes at id M" follows it. A ": ping" comment is sent every 15 seconds. A client that reads too slowly is disconnected and may resume.
//	@Tags			monitor
//	@Produce		text/event-stream
//	@Param			Last-Event-ID	header		int		false	"id of the last event received"
//	@Param			lastEventId		query		int		false	"id of the last event received, for clients that cannot set headers"
//	@Success		200				{object}	Event	"a stream of events"
//	@Failure		400				{object}	httpapi.Problem	"An invalid last event id"
//	@Router			/events [get]
func (m *Monitor) streamEvents(c *gin.Context) error {
	lastID, resume, err := parseLastEventID(c)
	if err != nil {
		return err
	}
	sub, replay, note := m.events.subscribe(lastID, resume)
	defer m.events.unsubscribe(sub)

	h := c.Writer.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	c.Status(http.StatusOK)

	s := &stream{w: bufio.NewWriter(c.Writer), flusher: c.Writer, rc: http.NewResponseController(c.Writer)}
	defer s.rc.SetWriteDeadline(time.Time{})
	// The first comment makes the response start at once, before any
	// event.
	s.comment("connected")
	if note != "" {
		s.comment(note)
	}
	for _, ev := range replay {
		s.event(ev)
	}
	if s.flush() != nil {
		return nil
	}
	m.pump(c, s, sub)
	return nil
}

// pump writes the subscriber's events until the client leaves, the hub
// drops the subscriber, a write fails or the streams are closed.
func (m *Monitor) pump(c *gin.Context, s *stream, sub *subscriber) {
	var ping <-chan time.Time
	if m.cfg.PingInterval > 0 {
		ticker := time.NewTicker(m.cfg.PingInterval)
		defer ticker.Stop()
		ping = ticker.C
	}
	for {
		select {
		case <-c.Request.Context().Done():
			return
		case <-m.streamsDone:
			return
		case <-sub.gone:
			httpapi.Logger(c).Info("event stream dropped because its client reads too slowly",
				"buffer", m.cfg.ClientBuffer)
			return
		case <-ping:
			s.comment("ping")
		case ev := <-sub.events:
			s.event(ev)
			// Send what else is already buffered in the same write.
			for more := true; more; {
				select {
				case ev := <-sub.events:
					s.event(ev)
				default:
					more = false
				}
			}
		}
		if s.flush() != nil {
			return
		}
	}
}

// parseLastEventID reads the Last-Event-ID header, or else the
// lastEventId query parameter, and reports whether either was given.
func parseLastEventID(c *gin.Context) (int64, bool, error) {
	field, value := "Last-Event-ID", c.GetHeader("Last-Event-ID")
	if value == "" {
		field, value = "lastEventId", c.Query("lastEventId")
	}
	if value == "" {
		return 0, false, nil
	}
	id, err := strconv.ParseInt(strings.TrimSpace(value), 10, 64)
	if err != nil || id < 0 {
		return 0, false, httpapi.BadRequest(field, fmt.Sprintf("%s must be a non-negative integer event id, not %q", field, value))
	}
	return id, true, nil
}

// stream writes server-sent events into a buffer that flush sends. The
// first failed write makes every later call a no-op.
type stream struct {
	w       *bufio.Writer
	flusher http.Flusher
	rc      *http.ResponseController
	err     error
}

func (s *stream) comment(text string) {
	if s.err == nil {
		_, s.err = fmt.Fprintf(s.w, ": %s\n\n", text)
	}
}

func (s *stream) event(ev Event) {
	if s.err != nil {
		return
	}
	data, err := json.Marshal(ev)
	if err != nil {
		s.err = err
		return
	}
	_, s.err = fmt.Fprintf(s.w, "id: %d\nevent: %s\ndata: %s\n\n", ev.ID, ev.Type, data)
}

// flush sends the buffered text within streamWriteTimeout.
func (s *stream) flush() error {
	if s.err != nil {
		return s.err
	}
	// A server whose connection has no deadline support keeps the writes
	// unbounded; the net/http server always has it.
	_ = s.rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	if s.err = s.w.Flush(); s.err == nil {
		s.flusher.Flush()
	}
	return s.err
}
