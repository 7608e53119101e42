package blocks

import (
	"math"
	"testing"
)

func TestAggregateFunctionsWithNulls(t *testing.T) {
	block := compileKind(t, "aggregate", `{"groupBy": ["g"], "aggregates": {
		"rows": "count()", "values": "count(v)", "distinct": "countDistinct(v)",
		"total": "sum(v)", "mean": "avg(v)", "low": "min(v)", "high": "max(v)"}}`, CompileContext{})
	input := newTable([]string{"g", "v"},
		[]any{"a", int64(2)}, []any{"b", nil}, []any{"a", nil}, []any{"a", int64(4)},
		[]any{"a", int64(2)}, []any{"b", nil}, []any{nil, int64(7)})
	table := runBlock(t, block, nil, input)

	assertColumns(t, table, "g", "distinct", "high", "low", "mean", "rows", "total", "values")
	assertValues(t, table, "g", "a", "b", nil)
	assertValues(t, table, "rows", int64(4), int64(2), int64(1))
	assertValues(t, table, "values", int64(3), int64(0), int64(1))
	assertValues(t, table, "distinct", int64(2), int64(0), int64(1))
	assertValues(t, table, "total", int64(8), nil, int64(7))
	assertValues(t, table, "mean", 8.0/3, nil, 7.0)
	assertValues(t, table, "low", int64(2), nil, int64(7))
	assertValues(t, table, "high", int64(4), nil, int64(7))
}

func TestAggregateSumTypes(t *testing.T) {
	block := compileKind(t, "aggregate", `{"aggregates": {"s": "sum(v)", "m": "avg(v)"}}`, CompileContext{})

	table := runBlock(t, block, nil, newTable([]string{"v"}, []any{int64(1)}, []any{int64(2)}))
	assertValues(t, table, "s", int64(3))
	assertValues(t, table, "m", 1.5)

	table = runBlock(t, block, nil, newTable([]string{"v"}, []any{int64(1)}, []any{0.5}, []any{int64(2)}))
	assertValues(t, table, "s", 3.5)

	err := runFails(t, block, nil, newTable([]string{"v"}, []any{int64(math.MaxInt64)}, []any{int64(1)}))
	assertErrorContains(t, err, "row 2", "aggregates.s", "overflows int64")

	err = runFails(t, block, nil, newTable([]string{"v"}, []any{int64(1)}, []any{"x"}))
	assertErrorContains(t, err, "row 2", "aggregates.m", `avg needs numbers, got "x" (text)`)
}

func TestAggregateNoGroupByEmptyInput(t *testing.T) {
	block := compileKind(t, "aggregate", `{"aggregates": {"n": "count()", "c": "count(v)", "s": "sum(v)",
		"a": "avg(v)", "lo": "min(v)", "d": "countDistinct(v)"}}`, CompileContext{})
	table := runBlock(t, block, nil, newTable([]string{"v"}))
	if len(table.Rows) != 1 {
		t.Fatalf("rows = %d, want 1", len(table.Rows))
	}
	row := table.Rows[0]
	want := Row{"n": int64(0), "c": int64(0), "d": int64(0), "s": nil, "a": nil, "lo": nil}
	for name, value := range want {
		if got, ok := row[name]; !ok || got != value {
			t.Errorf("%s = %#v, want %#v", name, got, value)
		}
	}
}

func TestAggregateGroupByEmptyInput(t *testing.T) {
	block := compileKind(t, "aggregate", `{"groupBy": ["g"], "aggregates": {"n": "count()"}}`, CompileContext{})
	table := runBlock(t, block, nil, newTable([]string{"g"}))
	if len(table.Rows) != 0 {
		t.Errorf("rows = %d, want 0", len(table.Rows))
	}
	assertColumns(t, table, "g", "n")
}

func TestAggregateGroupsEqualNumbers(t *testing.T) {
	block := compileKind(t, "aggregate", `{"groupBy": ["k", "s"], "aggregates": {"n": "count()"}}`, CompileContext{})
	input := newTable([]string{"k", "s"},
		[]any{int64(1), "x"}, []any{1.0, "x"}, []any{1.5, "x"}, []any{int64(1), "y"}, []any{date(2014, 1, 1), "x"})
	table := runBlock(t, block, nil, input)
	assertValues(t, table, "k", int64(1), 1.5, int64(1), date(2014, 1, 1))
	assertValues(t, table, "n", int64(2), int64(1), int64(1), int64(1))
}

func TestAggregateGroupByOnly(t *testing.T) {
	block := compileKind(t, "aggregate", `{"groupBy": ["k"]}`, CompileContext{})
	table := runBlock(t, block, nil, newTable([]string{"k"}, []any{"a"}, []any{"b"}, []any{"a"}))
	assertColumns(t, table, "k")
	assertValues(t, table, "k", "a", "b")
}

func TestAggregateMinMaxText(t *testing.T) {
	block := compileKind(t, "aggregate", `{"aggregates": {"lo": "min(s)", "hi": "max(s)", "first": "min(d)"}}`,
		CompileContext{})
	input := newTable([]string{"s", "d"}, []any{"b", date(2014, 1, 2)}, []any{"a", nil}, []any{"c", date(2013, 1, 1)})
	table := runBlock(t, block, nil, input)
	assertValues(t, table, "lo", "a")
	assertValues(t, table, "hi", "c")
	assertValues(t, table, "first", date(2013, 1, 1))
}

func TestAggregateQuotedField(t *testing.T) {
	block := compileKind(t, "aggregate", `{"aggregates": {"total": "sum(\"Cost (USD)\")", "spaced": "sum( Cost Total $ )"}}`,
		CompileContext{})
	input := newTable([]string{"Cost (USD)", "Cost Total $"}, []any{int64(2), int64(5)}, []any{int64(3), nil})
	table := runBlock(t, block, nil, input)
	assertValues(t, table, "total", int64(5))
	assertValues(t, table, "spaced", int64(5))
}

func TestAggregateUnknownFields(t *testing.T) {
	input := newTable([]string{"a"}, []any{int64(1)})
	err := runFails(t, compileKind(t, "aggregate", `{"groupBy": ["zz"]}`, CompileContext{}), nil, input)
	assertErrorContains(t, err, `groupBy: unknown field "zz"`)

	err = runFails(t, compileKind(t, "aggregate", `{"aggregates": {"x": "sum(b)"}}`, CompileContext{}), nil, input)
	assertErrorContains(t, err, `aggregates.x: unknown field "b"`)
}

func TestAggregateOptionProblems(t *testing.T) {
	tests := []struct{ options, option, text string }{
		{`{"aggregates": {"x": "median(v)"}}`, "aggregates.x", `unknown function "median"`},
		{`{"aggregates": {"x": "sum()"}}`, "aggregates.x", "sum needs a field"},
		{`{"aggregates": {"x": "count"}}`, "aggregates.x", "invalid aggregate"},
		{`{"aggregates": {"x": "sum(a) + 1"}}`, "aggregates.x", "invalid aggregate"},
		{`{"aggregates": {"x": "sum(a), max(b)"}}`, "aggregates.x", "quote a field name"},
		{`{"aggregates": {"x": "sum(\"a)"}}`, "aggregates.x", "invalid quoted field name"},
		{`{"aggregates": {"x": 3}}`, "aggregates.x", "must be text"},
		{`{"groupBy": ["g"], "aggregates": {"g": "count()"}}`, "aggregates.g", "name of a groupBy field"},
		{`{"groupBy": "g"}`, "groupBy", "must be an array"},
		{`{"groupBy": []}`, "aggregates", "missing"},
	}
	for _, tt := range tests {
		problems := compileFails(t, "aggregate", tt.options, CompileContext{})
		if !hasProblem(problems, tt.option, tt.text) {
			t.Errorf("%s: problems = %v, want %s: %s", tt.options, problems, tt.option, tt.text)
		}
	}
}

func TestAggregateReportsEveryBadAggregate(t *testing.T) {
	problems := compileFails(t, "aggregate", `{"aggregates": {"a": "median(v)", "b": "mode(v)", "c": "count()"}}`,
		CompileContext{})
	if len(problems) != 2 {
		t.Errorf("problems = %v, want one for a and one for b", problems)
	}
}
