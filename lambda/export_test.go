package lambda

import (
	"time"

	"github.com/lambdaflow/lambdaflow/pool"
)

// SetClock makes the service read the time from now, so that tests can
// move past a retention period without waiting for it.
func (s *Service) SetClock(now func() time.Time) {
	s.now = now
}

// WorkflowStateOf returns a job's state as the Omniscope-style routes
// show it.
func WorkflowStateOf(job *pool.Job) WorkflowJobState {
	return workflowState(job)
}
