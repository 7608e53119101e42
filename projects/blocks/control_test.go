package blocks

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestAppendUnionColumns(t *testing.T) {
	first := newTable([]string{"a", "b"}, []any{int64(1), "x"})
	second := newTable([]string{"c", "a"}, []any{true, int64(2)}, []any{false, int64(3)})
	third := newTable([]string{"b"})
	table := runBlock(t, compileKind(t, "append", `{}`, CompileContext{}), nil, first, second, third)
	assertColumns(t, table, "a", "b", "c")
	assertValues(t, table, "a", int64(1), int64(2), int64(3))
	assertValues(t, table, "b", "x", nil, nil)
	assertValues(t, table, "c", nil, true, false)
	for i, row := range table.Rows {
		if len(row) != 3 {
			t.Errorf("row %d = %#v, want a key per column", i, row)
		}
	}
}

func TestAppendSingleInput(t *testing.T) {
	input := bigTable(3)
	table := runBlock(t, compileKind(t, "append", `{}`, CompileContext{}), nil, input)
	assertValues(t, table, "n", int64(0), int64(1), int64(2))
}

func TestAssertPassesRows(t *testing.T) {
	block := compileKind(t, "assert", `{"where": "n >= 0", "message": "n must not be negative"}`, CompileContext{})
	input := bigTable(3)
	table := runBlock(t, block, nil, input)
	assertValues(t, table, "n", int64(0), int64(1), int64(2))
}

func TestAssertFailsOnFirstBadRow(t *testing.T) {
	block := compileKind(t, "assert", `{"where": "n < 2", "message": "n must stay below 2"}`, CompileContext{})
	err := runFails(t, block, nil, bigTable(5))
	assertErrorContains(t, err, "row 3: n must stay below 2")
}

func TestAssertNullIsNotTrue(t *testing.T) {
	block := compileKind(t, "assert", `{"where": "flag"}`, CompileContext{})
	input := newTable([]string{"flag"}, []any{true}, []any{nil})
	err := runFails(t, block, nil, input)
	assertErrorContains(t, err, "row 2", `assertion "flag" is not true`, "where returned null")

	input = newTable([]string{"flag"}, []any{"yes"})
	err = runFails(t, block, nil, input)
	assertErrorContains(t, err, "row 1", `where returned "yes" (text)`)
}

func TestDelayPassesRows(t *testing.T) {
	block := compileKind(t, "delay", `{"seconds": 0.001}`, CompileContext{})
	table := runBlock(t, block, nil, bigTable(2))
	assertValues(t, table, "n", int64(0), int64(1))

	if got := block.(*delayBlock).duration; got != time.Millisecond {
		t.Errorf("duration = %v, want 1ms", got)
	}
}

func TestDelayCancelled(t *testing.T) {
	block := compileKind(t, "delay", `{"seconds": 3600}`, CompileContext{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := block.Run(ctx, &Env{}, []*Table{bigTable(1)})
		done <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("error = %v, want context.Canceled", err)
	}
}

func TestDelayOptionProblems(t *testing.T) {
	tests := []struct{ options, text string }{
		{`{"seconds": -1}`, "between 0 and"},
		{`{"seconds": 1e300}`, "between 0 and"},
		{`{"seconds": "soon"}`, `must be a number, got "soon"`},
		{`{"seconds": true}`, "must be a number, got true"},
	}
	for _, tt := range tests {
		problems := compileFails(t, "delay", tt.options, CompileContext{})
		if !hasProblem(problems, "seconds", tt.text) {
			t.Errorf("%s: problems = %v, want %q", tt.options, problems, tt.text)
		}
	}
}
