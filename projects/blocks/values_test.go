package blocks

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"
)

func TestNormalizeValue(t *testing.T) {
	moment := date(2014, 1, 1)
	tests := []struct {
		in, want any
	}{
		{nil, nil},
		{true, true},
		{int64(5), int64(5)},
		{5, int64(5)},
		{int32(-2), int64(-2)},
		{uint8(9), int64(9)},
		{float32(0.5), 0.5},
		{1.25, 1.25},
		{"x", "x"},
		{moment, moment},
		{36 * time.Hour, "36h0m0s"},
		{[]any{1, "a"}, `[1,"a"]`},
		{map[string]any{"b": 1, "a": 2}, `{"a":2,"b":1}`},
	}
	for _, tt := range tests {
		got, err := normalizeValue(tt.in)
		if err != nil {
			t.Errorf("normalizeValue(%#v) = %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("normalizeValue(%#v) = %#v, want %#v", tt.in, got, tt.want)
		}
	}
	if _, err := normalizeValue(uint64(math.MaxUint64)); err == nil {
		t.Error("normalizeValue(MaxUint64) returned no error")
	}
	if _, err := normalizeValue(time.UTC); err == nil {
		t.Error("normalizeValue(*time.Location) returned no error")
	}
}

func TestAppendKeyEquality(t *testing.T) {
	same := [][2]any{
		{int64(1), 1.0},
		{0.0, math.Copysign(0, -1)},
		{math.NaN(), math.NaN()},
		{date(2014, 1, 1), date(2014, 1, 1).In(time.FixedZone("", 3600))},
		{"a", "a"},
		{nil, nil},
	}
	for _, pair := range same {
		if string(appendKey(nil, pair[0])) != string(appendKey(nil, pair[1])) {
			t.Errorf("keys of %#v and %#v differ", pair[0], pair[1])
		}
	}
	different := [][2]any{
		{int64(1), "1"},
		{int64(1), true},
		{1.5, int64(1)},
		{"", nil},
		{false, nil},
		{int64(0), date(1970, 1, 1)},
	}
	for _, pair := range different {
		if string(appendKey(nil, pair[0])) == string(appendKey(nil, pair[1])) {
			t.Errorf("keys of %#v and %#v are equal", pair[0], pair[1])
		}
	}
	// Length prefixes keep adjacent text fields from running together.
	ab := appendKey(appendKey(nil, "a"), "bc")
	abc := appendKey(appendKey(nil, "ab"), "c")
	if string(ab) == string(abc) {
		t.Error(`keys of ("a", "bc") and ("ab", "c") are equal`)
	}
}

// TestBlocksCancelled runs every block that loops over rows on an input
// larger than checkInterval with a cancelled context.
func TestBlocksCancelled(t *testing.T) {
	input := bigTable(5 * checkInterval)
	tests := []struct {
		typ, options string
		inputs       []*Table
	}{
		{"filter", `{"where": "n >= 0"}`, []*Table{input}},
		{"compute", `{"fields": {"m": "n + 1"}}`, []*Table{input}},
		{"select", `{"fields": ["n"]}`, []*Table{input}},
		{"aggregate", `{"groupBy": ["n"], "aggregates": {"c": "count()"}}`, []*Table{input}},
		{"join", `{"on": {"n": "n"}}`, []*Table{input, input}},
		{"sort", `{"by": "n"}`, []*Table{input}},
		{"limit", `{"rows": 1}`, []*Table{input}},
		{"append", `{}`, []*Table{input, bigTable(3)}},
		{"assert", `{"where": "n >= 0"}`, []*Table{input}},
		{"delay", `{"seconds": 60}`, []*Table{input}},
		{"inline", `{"rows": [{"a": 1}]}`, nil},
	}
	for _, tt := range tests {
		block := compileKind(t, tt.typ, tt.options, CompileContext{})
		_, err := block.Run(cancelledContext(), &Env{}, tt.inputs)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s: error = %v, want context.Canceled", tt.typ, err)
		}
	}
}

// laterCancelledContext reports itself cancelled from the nth call of Err
// on, to check that a loop looks at its context again after starting.
type laterCancelledContext struct {
	context.Context
	calls, nth int
}

func (c *laterCancelledContext) Err() error {
	c.calls++
	if c.calls >= c.nth {
		return context.Canceled
	}
	return nil
}

func TestBlocksCancelledMidway(t *testing.T) {
	input := bigTable(5 * checkInterval)
	tests := []struct {
		typ, options string
		env          *Env
		inputs       []*Table
	}{
		{"filter", `{"where": "n >= 0"}`, &Env{}, []*Table{input}},
		{"compute", `{"fields": {"m": "n + 1"}}`, &Env{}, []*Table{input}},
		{"aggregate", `{"groupBy": ["n"]}`, &Env{}, []*Table{input}},
		{"csv.read", `{"path": "birdstrikes.csv"}`, &Env{FilesDir: examplesDir}, nil},
		{"json.read", `{"path": "flights-20k.json"}`, &Env{FilesDir: examplesDir}, nil},
	}
	for _, tt := range tests {
		ctx := &laterCancelledContext{Context: context.Background(), nth: 3}
		block := compileKind(t, tt.typ, tt.options, CompileContext{})
		_, err := block.Run(ctx, tt.env, tt.inputs)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s: error = %v, want context.Canceled", tt.typ, err)
		}
	}
}

func TestNormalizeValueDefinedTypes(t *testing.T) {
	tests := []struct {
		in, want any
	}{
		{time.March, int64(3)},
		{time.Sunday, int64(0)},
	}
	for _, tt := range tests {
		got, err := normalizeValue(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("normalizeValue(%#v) = %#v, %v; want %#v", tt.in, got, err, tt.want)
		}
	}
}
