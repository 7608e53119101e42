package pool

import (
	"time"

	"github.com/lambdaflow/lambdaflow/internal/timestamp"
)

// EventType distinguishes job events from block events.
type EventType string

// Event types.
const (
	EventJob   EventType = "job"
	EventBlock EventType = "block"
)

// Event is one state change of a job or of one of its block runs.
type Event struct {
	Type EventType
	// JobID, Project and Instance name the job. Instance is the instance
	// id of a lambda job, else nil.
	JobID    string
	Project  string
	Instance *string
	// Block and BlockType name the block run of a block event and are
	// empty for a job event.
	Block     string
	BlockType string
	// State is the new State of the job, or the new BlockState of the
	// block run, as a string.
	State string
	// Time is when the pool applied the change.
	Time time.Time
	// SubmittedAt, StartedAt and FinishedAt are the job's timestamps
	// after the change, for a job event. For a block event, StartedAt
	// and FinishedAt are the block run's, and DurationMs its run time
	// once it ended, when the runner reported one.
	SubmittedAt time.Time
	StartedAt   *time.Time
	FinishedAt  *time.Time
	DurationMs  *int64
	// Attempt is the job's attempt, 1 or 2.
	Attempt int
}

// Observe registers fn to receive every job and block state change, in
// the order the pool applies them: the initial QUEUED or BLOCKED state of
// a submitted job, each later job state, and each change of a block run's
// state. Jobs recovered by Start are reported with their state after
// recovery, so Observe should be called before Start.
//
// The pool calls fn with its mutex held, so fn must return quickly, must
// not block and must not call the pool. It is safe for concurrent use.
func (p *Pool) Observe(fn func(Event)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.observers = append(p.observers, fn)
}

// observeLocked reports the changes from prev to next, two records of the
// same job: first the block runs whose state changed, then the job's
// state when it changed. A nil prev reports the job's state alone, as for
// a new job.
func (p *Pool) observeLocked(prev, next *Job) {
	if len(p.observers) == 0 {
		return
	}
	for _, e := range changeEvents(prev, next, time.Now()) {
		p.emitLocked(e)
	}
}

// changeEvents returns the events of the change from prev to next, as
// observeLocked reports them.
func changeEvents(prev, next *Job, now time.Time) []Event {
	var events []Event
	if prev != nil {
		events = appendBlockEvents(events, prev, next, now)
	}
	if prev == nil || prev.State != next.State {
		events = append(events, jobEvent(next, now))
	}
	return events
}

// observeRecoveredLocked reports a job that recovery queued again: the
// block runs it reset and its state, even when the state is unchanged, so
// that observers learn of every job active after a start.
func (p *Pool) observeRecoveredLocked(prev, next *Job) {
	if len(p.observers) == 0 {
		return
	}
	now := time.Now()
	for _, e := range appendBlockEvents(nil, prev, next, now) {
		p.emitLocked(e)
	}
	p.emitLocked(jobEvent(next, now))
}

// appendBlockEvents appends to events an event for each block run whose
// state differs between prev and next.
func appendBlockEvents(events []Event, prev, next *Job, now time.Time) []Event {
	before := make(map[string]BlockState, len(prev.Blocks))
	for _, b := range prev.Blocks {
		before[b.Name] = b.State
	}
	for _, b := range next.Blocks {
		if state, ok := before[b.Name]; ok && state == b.State {
			continue
		}
		events = append(events, blockEvent(next, b, now))
	}
	return events
}

func (p *Pool) emitLocked(e Event) {
	for _, fn := range p.observers {
		fn(e)
	}
}

func jobEvent(job *Job, now time.Time) Event {
	return Event{
		Type: EventJob, JobID: job.ID, Project: job.Project, Instance: clonePtr(job.Instance),
		State: string(job.State), Time: now, Attempt: job.Attempt,
		SubmittedAt: job.SubmittedAt.Time, StartedAt: timePtr(job.StartedAt), FinishedAt: timePtr(job.FinishedAt),
	}
}

func blockEvent(job *Job, run BlockRun, now time.Time) Event {
	return Event{
		Type: EventBlock, JobID: job.ID, Project: job.Project, Instance: clonePtr(job.Instance),
		Block: run.Name, BlockType: run.Type, State: string(run.State), Time: now, Attempt: job.Attempt,
		SubmittedAt: job.SubmittedAt.Time, StartedAt: timePtr(run.StartedAt), FinishedAt: timePtr(run.FinishedAt),
		DurationMs: clonePtr(run.DurationMs),
	}
}

func timePtr(t *timestamp.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := t.Time
	return &v
}

// observeChangesLocked reports changes, which are about to be applied, in
// their order.
func (p *Pool) observeChangesLocked(changes []change) {
	for _, c := range changes {
		p.observeLocked(c.aj.job, c.next)
	}
}
