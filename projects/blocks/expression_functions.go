package blocks

import (
	"fmt"
	"time"

	"github.com/expr-lang/expr"
)

// expressionOptions are the expr options every expression compiles with.
// Besides expr's builtins (date, now, duration, upper, lower, trim, abs,
// round, floor, ceil, len and more), expressions get year, month, day and
// dayOfWeek. The builtin date already parses YYYY-MM-DD as midnight UTC,
// the way csv.read reads dates, so it is not replaced.
var expressionOptions = append(budgetOptions(),
	expr.Env(map[string]any{}),
	expr.AllowUndefinedVariables(),
	datePartFunction("year", func(t time.Time) int { return t.Year() }),
	datePartFunction("month", func(t time.Time) int { return int(t.Month()) }),
	datePartFunction("day", func(t time.Time) int { return t.Day() }),
	datePartFunction("dayOfWeek", func(t time.Time) int { return int(t.Weekday()) }),
)

// datePartFunction defines the expression function name, which returns
// part of a date as int64. The argument is a time.Time, or text in the
// form YYYY-MM-DD or RFC 3339. A null argument returns null.
func datePartFunction(name string, part func(time.Time) int) expr.Option {
	implementation := func(args ...any) (any, error) {
		t, ok, err := timeArgument(args[0])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if !ok {
			return nil, nil
		}
		return int64(part(t)), nil
	}
	return expr.Function(name, implementation, new(func(any) any))
}

// timeArgument converts a function argument to a time. It returns false
// for nil.
func timeArgument(v any) (time.Time, bool, error) {
	switch x := v.(type) {
	case nil:
		return time.Time{}, false, nil
	case time.Time:
		return x, true, nil
	case string:
		if t, err := time.Parse(time.DateOnly, x); err == nil {
			return t, true, nil
		}
		if t, err := time.Parse(time.RFC3339, x); err == nil {
			return t, true, nil
		}
		return time.Time{}, false, fmt.Errorf("invalid date %q; expected YYYY-MM-DD or RFC 3339", x)
	}
	return time.Time{}, false, fmt.Errorf("expected a date, got %s", describeValue(v))
}
