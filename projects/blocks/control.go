package blocks

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// appendKind concatenates the rows of one or more inputs in input order.
// It takes no options. The columns are the union of the inputs' columns
// in first-seen order, and a row gets null for the columns its input
// lacks.
var appendKind = Kind{Type: "append", MinInputs: 1, MaxInputs: -1, Compile: compileAppend}

// assertKind passes rows through unchanged and fails the block on the
// first row where an expression is not true. Options: where (required),
// an expression written as in filter, and message, the text of the
// failure (by default `assertion "WHERE" is not true`). A null or
// non-boolean result counts as not true.
var assertKind = Kind{Type: "assert", MinInputs: 1, MaxInputs: 1, Compile: compileAssert}

// delayKind waits and then passes rows through unchanged. Option: seconds
// (required), a number of 0 or more that may be fractional. The wait ends
// early with the context's error when the context is done.
var delayKind = Kind{Type: "delay", MinInputs: 1, MaxInputs: 1, Compile: compileDelay}

type appendBlock struct{}

func compileAppend(options map[string]any, cc CompileContext) (Block, []OptionError) {
	if problems := newOptionReader(options, cc).finish(); len(problems) > 0 {
		return nil, problems
	}
	return appendBlock{}, nil
}

// Run concatenates the inputs.
func (appendBlock) Run(ctx context.Context, _ *Env, inputs []*Table) (*Table, error) {
	if len(inputs) == 0 || slices.Contains(inputs, nil) {
		return nil, errors.New("expected at least 1 input")
	}
	columns := newColumnSet()
	total := 0
	for _, input := range inputs {
		for _, name := range input.Columns {
			columns.add(name)
		}
		total += len(input.Rows)
	}

	rows := make([]Row, 0, total)
	for _, input := range inputs {
		if len(input.Columns) == len(columns.names) {
			rows = append(rows, input.Rows...)
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			continue
		}
		for i, row := range input.Rows {
			if err := checkContext(ctx, i); err != nil {
				return nil, err
			}
			rows = append(rows, widenRow(row, columns.names))
		}
	}
	return &Table{Columns: columns.names, Rows: rows}, nil
}

// widenRow returns a copy of row with nil for each of columns it lacks.
func widenRow(row Row, columns []string) Row {
	wide := make(Row, len(columns))
	for _, name := range columns {
		wide[name] = row[name]
	}
	return wide
}

type assertBlock struct {
	where   *expression
	message string
}

func compileAssert(options map[string]any, cc CompileContext) (Block, []OptionError) {
	r := newOptionReader(options, cc)
	block := &assertBlock{where: r.expression("where"), message: r.text("message", false)}
	if block.message == "" {
		if source, ok := options["where"].(string); ok {
			block.message = fmt.Sprintf("assertion %q is not true", source)
		}
	}
	if problems := r.finish(); len(problems) > 0 {
		return nil, problems
	}
	return block, nil
}

// Run checks every row and returns the input's rows.
func (b *assertBlock) Run(ctx context.Context, env *Env, inputs []*Table) (*Table, error) {
	input, err := singleInput(inputs)
	if err != nil {
		return nil, err
	}
	if err := b.where.checkFields(input.Columns); err != nil {
		return nil, err
	}

	s := newScope(paramsOf(env), []*expression{b.where})
	// One evaluation may take milliseconds, so a stop is checked on
	// every row; ctx.Err is an atomic load.
	for i, row := range input.Rows {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		s.load(row)
		result, err := s.evaluate(b.where)
		if err != nil {
			return nil, b.where.rowError(i+1, err)
		}
		if result == true {
			continue
		}
		if result == false {
			return nil, fmt.Errorf("row %d: %s", i+1, b.message)
		}
		return nil, fmt.Errorf("row %d: %s (where returned %s)", i+1, b.message, describeResult(result))
	}
	return &Table{Columns: input.Columns, Rows: input.Rows}, nil
}

type delayBlock struct {
	duration time.Duration
}

// maxDelaySeconds is the longest wait time.Duration can represent.
const maxDelaySeconds = float64(math.MaxInt64) / float64(time.Second)

func compileDelay(options map[string]any, cc CompileContext) (Block, []OptionError) {
	r := newOptionReader(options, cc)
	seconds := r.number("seconds", true)
	if seconds < 0 || seconds >= maxDelaySeconds {
		r.addProblem("seconds", "must be between 0 and %.0f, got %v", maxDelaySeconds, seconds)
	}
	if problems := r.finish(); len(problems) > 0 {
		return nil, problems
	}
	return &delayBlock{duration: time.Duration(seconds * float64(time.Second))}, nil
}

// Run waits for the delay and returns the input's rows.
func (b *delayBlock) Run(ctx context.Context, _ *Env, inputs []*Table) (*Table, error) {
	input, err := singleInput(inputs)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	timer := time.NewTimer(b.duration)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-timer.C:
	}
	return &Table{Columns: input.Columns, Rows: input.Rows}, nil
}
