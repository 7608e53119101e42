package blocks

import (
	"testing"
)

func TestFilterNullCountsAsFalse(t *testing.T) {
	block := compileKind(t, "filter", `{"where": "flag"}`, CompileContext{})
	input := newTable([]string{"id", "flag"},
		[]any{int64(1), true}, []any{int64(2), nil}, []any{int64(3), false}, []any{int64(4), true})
	table := runBlock(t, block, nil, input)
	assertColumns(t, table, "id", "flag")
	assertValues(t, table, "id", int64(1), int64(4))
}

func TestFilterNonBooleanFails(t *testing.T) {
	block := compileKind(t, "filter", `{"where": "n"}`, CompileContext{})
	input := newTable([]string{"n"}, []any{true}, []any{int64(5)})
	err := runFails(t, block, nil, input)
	assertErrorContains(t, err, "row 2", "where returned 5 (integer)", "expected true, false or null")
}

func TestFilterEmptyInput(t *testing.T) {
	block := compileKind(t, "filter", `{"where": "n > 1"}`, CompileContext{})
	table := runBlock(t, block, nil, newTable([]string{"n"}))
	assertColumns(t, table, "n")
	if table.Rows == nil || len(table.Rows) != 0 {
		t.Errorf("rows = %#v, want an empty slice", table.Rows)
	}
}

func TestFilterKeepsInputRowsUnchanged(t *testing.T) {
	block := compileKind(t, "filter", `{"where": "n >= 0"}`, CompileContext{})
	input := newTable([]string{"n"}, []any{int64(1)})
	runBlock(t, block, nil, input)
	if len(input.Rows[0]) != 1 || input.Rows[0]["n"] != int64(1) {
		t.Errorf("input row changed to %#v", input.Rows[0])
	}
}

func TestComputeAddsAndReplaces(t *testing.T) {
	block := compileKind(t, "compute", `{"fields": {"z": "a + 1", "a": "a * 10", "b": "a"}}`, CompileContext{})
	input := newTable([]string{"a", "c"}, []any{int64(1), "x"}, []any{int64(2), "y"})
	table := runBlock(t, block, nil, input)
	assertColumns(t, table, "a", "c", "b", "z")
	assertValues(t, table, "a", int64(10), int64(20))
	// b and z see the input value of a, not the computed one.
	assertValues(t, table, "b", int64(1), int64(2))
	assertValues(t, table, "z", int64(2), int64(3))
	assertValues(t, table, "c", "x", "y")
	assertValues(t, input, "a", int64(1), int64(2))
}

func TestComputeRuntimeError(t *testing.T) {
	block := compileKind(t, "compute", `{"fields": {"x": "upper(s)"}}`, CompileContext{})
	input := newTable([]string{"s"}, []any{"a"}, []any{int64(3)})
	err := runFails(t, block, nil, input)
	assertErrorContains(t, err, "row 2", "fields.x")
}

func TestComputeUnsupportedResult(t *testing.T) {
	block := compileKind(t, "compute", `{"fields": {"x": "timezone(\"UTC\")"}}`, CompileContext{})
	err := runFails(t, block, nil, newTable([]string{"s"}, []any{"a"}))
	assertErrorContains(t, err, "row 1", "fields.x", "unsupported result type")
}

func TestComputeOptionProblems(t *testing.T) {
	problems := compileFails(t, "compute", `{"fields": {}}`, CompileContext{})
	if !hasProblem(problems, "fields", "at least one field") {
		t.Errorf("problems = %v", problems)
	}
	problems = compileFails(t, "compute", `{"fields": {"a": 1}}`, CompileContext{})
	if !hasProblem(problems, "fields.a", "must be text, got 1") {
		t.Errorf("problems = %v", problems)
	}
	problems = compileFails(t, "compute", `{"fields": ["a"]}`, CompileContext{})
	if !hasProblem(problems, "fields", "must be an object") {
		t.Errorf("problems = %v", problems)
	}
}

func TestSelectFieldsAndRename(t *testing.T) {
	input := newTable([]string{"a", "b", "c"}, []any{int64(1), "x", nil})
	tests := []struct {
		name, options string
		columns       []string
	}{
		{"fields", `{"fields": ["c", "a"]}`, []string{"c", "a"}},
		{"rename", `{"rename": {"b": "bee"}}`, []string{"a", "bee", "c"}},
		{"both", `{"fields": ["b", "a"], "rename": {"a": "A"}}`, []string{"b", "A"}},
		{"swap", `{"rename": {"a": "b", "b": "a"}}`, []string{"b", "a", "c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			table := runBlock(t, compileKind(t, "select", tt.options, CompileContext{}), nil, input)
			assertColumns(t, table, tt.columns...)
			row := table.Rows[0]
			if len(row) != len(tt.columns) {
				t.Errorf("row = %#v, want only %q", row, tt.columns)
			}
		})
	}

	table := runBlock(t, compileKind(t, "select", `{"rename": {"a": "b", "b": "a"}}`, CompileContext{}), nil, input)
	assertValues(t, table, "b", int64(1))
	assertValues(t, table, "a", "x")
}

func TestSelectUnknownField(t *testing.T) {
	input := newTable([]string{"a", "b"}, []any{int64(1), "x"})
	err := runFails(t, compileKind(t, "select", `{"fields": ["a", "zz"]}`, CompileContext{}), nil, input)
	assertErrorContains(t, err, `unknown field "zz"`)

	err = runFails(t, compileKind(t, "select", `{"rename": {"yy": "y"}}`, CompileContext{}), nil, input)
	assertErrorContains(t, err, `unknown field "yy"`)

	err = runFails(t, compileKind(t, "select", `{"rename": {"a": "b"}}`, CompileContext{}), nil, input)
	assertErrorContains(t, err, `would both be named "b"`)
}

func TestSelectOptionProblems(t *testing.T) {
	tests := []struct{ options, option, text string }{
		{`{}`, "fields", "give fields, rename or both"},
		{`{"fields": []}`, "fields", "at least one field"},
		{`{"fields": "a"}`, "fields", "must be an array of field names"},
		{`{"rename": {"a": ""}}`, "rename.a", "must not be empty"},
		{`{"fields": ["a"], "rename": {"b": "c"}}`, "rename.b", "which fields does not keep"},
		{`{"rename": {"a": "x", "b": "x"}}`, "rename.b", `renames to "x"`},
		{`{"fields": ["a", "b"], "rename": {"a": "b"}}`, "rename.a", "which fields also keeps"},
	}
	for _, tt := range tests {
		problems := compileFails(t, "select", tt.options, CompileContext{})
		if !hasProblem(problems, tt.option, tt.text) {
			t.Errorf("%s: problems = %v, want %s: %s", tt.options, problems, tt.option, tt.text)
		}
	}
}

func TestLimitRows(t *testing.T) {
	input := bigTable(5)
	tests := []struct {
		rows string
		want int
	}{
		{"0", 0},
		{"3", 3},
		{"5", 5},
		{"100", 5},
	}
	for _, tt := range tests {
		table := runBlock(t, compileKind(t, "limit", `{"rows": `+tt.rows+`}`, CompileContext{}), nil, input)
		if len(table.Rows) != tt.want {
			t.Errorf("rows %s: got %d rows, want %d", tt.rows, len(table.Rows), tt.want)
		}
	}

	table := runBlock(t, compileKind(t, "limit", `{"rows": 2}`, CompileContext{}), nil, input)
	assertValues(t, table, "n", int64(0), int64(1))
	if cap(table.Rows) != 2 {
		t.Errorf("cap(rows) = %d; appending would write into the input's rows", cap(table.Rows))
	}
}

// chunkedRows is enough rows for filter and compute to split them into
// chunks on two or more cores.
const chunkedRows = 3 * minRecordsPerWorker

func TestFilterChunksKeepOrder(t *testing.T) {
	block := compileKind(t, "filter", `{"where": "n % 3 == 0"}`, CompileContext{})
	table := runBlock(t, block, nil, bigTable(chunkedRows))
	if len(table.Rows) != chunkedRows/3 {
		t.Fatalf("%d rows kept, want %d", len(table.Rows), chunkedRows/3)
	}
	for i, row := range table.Rows {
		if row["n"] != int64(3*i) {
			t.Fatalf("kept row %d has n = %v, want %d", i, row["n"], 3*i)
		}
	}
}

func TestFilterChunksReportFirstError(t *testing.T) {
	block := compileKind(t, "filter", `{"where": "n"}`, CompileContext{})
	input := bigTable(chunkedRows)
	for i := range input.Rows {
		input.Rows[i]["n"] = false
	}
	// Row 17 fails in the first chunk and the last row in the last one.
	input.Rows[16]["n"] = int64(5)
	input.Rows[chunkedRows-1]["n"] = int64(6)
	err := runFails(t, block, nil, input)
	assertErrorContains(t, err, "row 17:", "where returned 5 (integer)")
}

func TestComputeChunksKeepOrder(t *testing.T) {
	block := compileKind(t, "compute", `{"fields": {"double": "n * 2"}}`, CompileContext{})
	table := runBlock(t, block, nil, bigTable(chunkedRows))
	if len(table.Rows) != chunkedRows {
		t.Fatalf("%d rows, want %d", len(table.Rows), chunkedRows)
	}
	for i, row := range table.Rows {
		if row["n"] != int64(i) || row["double"] != int64(2*i) {
			t.Fatalf("row %d = %v, want n %d and double %d", i, row, i, 2*i)
		}
	}
}

func TestComputeChunksReportFirstError(t *testing.T) {
	block := compileKind(t, "compute", `{"fields": {"x": "upper(s)"}}`, CompileContext{})
	input := bigTable(chunkedRows)
	input.Rows[20]["s"] = int64(1)
	input.Rows[chunkedRows-1]["s"] = int64(2)
	err := runFails(t, block, nil, input)
	assertErrorContains(t, err, "row 21:", "fields.x")
}
