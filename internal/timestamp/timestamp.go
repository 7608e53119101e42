// Package timestamp provides the time type used in API responses: RFC 3339
// in UTC with exactly three fractional digits.
package timestamp

import (
	"fmt"
	"time"
)

// Layout is the format of every timestamp the API writes.
const Layout = "2006-01-02T15:04:05.000Z07:00"

// Time is a time.Time that marshals as RFC 3339 in UTC with milliseconds.
type Time struct {
	time.Time
}

// Now returns the current time truncated to milliseconds.
func Now() Time {
	return From(time.Now())
}

// From converts t to UTC and truncates it to milliseconds.
func From(t time.Time) Time {
	return Time{t.UTC().Truncate(time.Millisecond)}
}

// Ptr returns a pointer to From(t), for optional fields.
func Ptr(t time.Time) *Time {
	v := From(t)
	return &v
}

// MarshalJSON writes the time in Layout.
func (t Time) MarshalJSON() ([]byte, error) {
	return []byte(`"` + t.UTC().Format(Layout) + `"`), nil
}

// UnmarshalJSON reads any RFC 3339 time.
func (t *Time) UnmarshalJSON(b []byte) error {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return fmt.Errorf("timestamp %s is not a JSON string", b)
	}
	v, err := time.Parse(time.RFC3339Nano, string(b[1:len(b)-1]))
	if err != nil {
		return fmt.Errorf("parsing timestamp: %w", err)
	}
	*t = From(v)
	return nil
}
