package blocks

import (
	"testing"
)

// joinInputs returns people (left) and cities (right), with a null key on
// each side, a duplicate right key and a shared column "name".
func joinInputs() (left, right *Table) {
	left = newTable([]string{"name", "city_id"},
		[]any{"ann", int64(1)}, []any{"bob", int64(2)}, []any{"cat", nil}, []any{"dan", int64(9)}, []any{"eve", 1.0})
	right = newTable([]string{"id", "name", "country"},
		[]any{int64(1), "Oslo", "NO"}, []any{int64(2), "Lima", "PE"}, []any{int64(2), "Cusco", "PE"}, []any{nil, "Nowhere", "XX"})
	return left, right
}

func TestJoinInner(t *testing.T) {
	left, right := joinInputs()
	block := compileKind(t, "join", `{"on": {"city_id": "id"}}`, CompileContext{})
	table := runBlock(t, block, nil, left, right)
	assertColumns(t, table, "name", "city_id", "id", "country")
	assertValues(t, table, "name", "ann", "bob", "bob", "eve")
	assertValues(t, table, "country", "NO", "PE", "PE", "NO")
	assertValues(t, table, "id", int64(1), int64(2), int64(2), int64(1))
}

func TestJoinLeft(t *testing.T) {
	left, right := joinInputs()
	block := compileKind(t, "join", `{"type": "left", "on": {"city_id": "id"}}`, CompileContext{})
	table := runBlock(t, block, nil, left, right)
	assertValues(t, table, "name", "ann", "bob", "bob", "cat", "dan", "eve")
	assertValues(t, table, "country", "NO", "PE", "PE", nil, nil, "NO")
	for i, row := range table.Rows {
		if len(row) != len(table.Columns) {
			t.Errorf("row %d = %#v, want a key per column", i, row)
		}
	}
}

func TestJoinSeveralKeys(t *testing.T) {
	left := newTable([]string{"a", "b", "x"}, []any{"p", int64(1), "L1"}, []any{"p", int64(2), "L2"})
	right := newTable([]string{"a", "b2", "y"}, []any{"p", int64(2), "R2"}, []any{"q", int64(1), "R1"})
	block := compileKind(t, "join", `{"on": {"a": "a", "b": "b2"}}`, CompileContext{})
	table := runBlock(t, block, nil, left, right)
	assertColumns(t, table, "a", "b", "x", "b2", "y")
	assertValues(t, table, "x", "L2")
	assertValues(t, table, "y", "R2")
}

func TestJoinEmptyInputs(t *testing.T) {
	left, right := joinInputs()
	block := compileKind(t, "join", `{"type": "left", "on": {"city_id": "id"}}`, CompileContext{})
	table := runBlock(t, block, nil, left, newTable(right.Columns))
	assertValues(t, table, "country", nil, nil, nil, nil, nil)

	table = runBlock(t, block, nil, newTable(left.Columns), right)
	if len(table.Rows) != 0 {
		t.Errorf("rows = %d, want 0", len(table.Rows))
	}
}

func TestJoinUnknownField(t *testing.T) {
	left, right := joinInputs()
	err := runFails(t, compileKind(t, "join", `{"on": {"zz": "id"}}`, CompileContext{}), nil, left, right)
	assertErrorContains(t, err, `unknown field "zz" in the left input`)
	err = runFails(t, compileKind(t, "join", `{"on": {"city_id": "zz"}}`, CompileContext{}), nil, left, right)
	assertErrorContains(t, err, `unknown field "zz" in the right input`)
}

func TestJoinWrongInputCount(t *testing.T) {
	left, _ := joinInputs()
	err := runFails(t, compileKind(t, "join", `{"on": {"city_id": "id"}}`, CompileContext{}), nil, left)
	assertErrorContains(t, err, "expected 2 inputs, got 1")
}

func TestJoinOptionProblems(t *testing.T) {
	tests := []struct{ options, option, text string }{
		{`{"on": {"a": "b"}, "type": "outer"}`, "type", `"inner" or "left", got "outer"`},
		{`{"on": {}}`, "on", "at least one pair"},
		{`{"on": {"a": ""}}`, "on.a", "must not be empty"},
		{`{"on": ["a"]}`, "on", "must be an object"},
	}
	for _, tt := range tests {
		problems := compileFails(t, "join", tt.options, CompileContext{})
		if !hasProblem(problems, tt.option, tt.text) {
			t.Errorf("%s: problems = %v, want %s: %s", tt.options, problems, tt.option, tt.text)
		}
	}
}
