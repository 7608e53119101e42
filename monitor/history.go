package monitor

import (
	"sort"
	"sync"
	"time"
)

// history is a bounded ring of samples in time order. It is safe for
// concurrent use.
type history struct {
	// mu guards the fields below.
	mu sync.RWMutex
	// ring holds up to cap(ring) samples; start indexes the oldest.
	ring  []Sample
	start int
}

func newHistory(capacity int) *history {
	return &history{ring: make([]Sample, 0, max(capacity, 1))}
}

// add appends s, dropping the oldest sample when the ring is full. A
// sample not newer than the last one is dropped, which keeps the ring in
// time order when the clock steps back.
func (h *history) add(s Sample) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if n := len(h.ring); n > 0 && !s.Time.After(h.atLocked(n-1).Time) {
		return
	}
	if len(h.ring) < cap(h.ring) {
		h.ring = append(h.ring, s)
		return
	}
	h.ring[h.start] = s
	h.start = (h.start + 1) % len(h.ring)
}

func (h *history) atLocked(i int) *Sample {
	return &h.ring[(h.start+i)%len(h.ring)]
}

// between returns a copy of the samples with from <= Time < to, oldest
// first.
func (h *history) between(from, to time.Time) []Sample {
	h.mu.RLock()
	defer h.mu.RUnlock()
	n := len(h.ring)
	first := sort.Search(n, func(i int) bool { return !h.atLocked(i).Time.Before(from) })
	last := sort.Search(n, func(i int) bool { return !h.atLocked(i).Time.Before(to) })
	out := make([]Sample, 0, max(last-first, 0))
	for i := first; i < last; i++ {
		out = append(out, *h.atLocked(i))
	}
	return out
}

// latest returns the newest sample, or false when there is none.
func (h *history) latest() (Sample, bool) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if len(h.ring) == 0 {
		return Sample{}, false
	}
	return *h.atLocked(len(h.ring) - 1), true
}

// len returns the number of samples held.
func (h *history) len() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.ring)
}
