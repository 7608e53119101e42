package lambda

import "time"

// SetClock makes the service read the time from now, so that tests can
// move past a retention period without waiting for it.
func (s *Service) SetClock(now func() time.Time) {
	s.now = now
}
