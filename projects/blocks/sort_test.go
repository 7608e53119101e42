package blocks

import (
	"cmp"
	"math"
	"slices"
	"testing"
)

func TestSortMixedNumbersAndNulls(t *testing.T) {
	input := newTable([]string{"v", "id"},
		[]any{int64(3), "a"}, []any{nil, "b"}, []any{2.5, "c"}, []any{int64(-1), "d"}, []any{nil, "e"}, []any{3.0, "f"})

	table := runBlock(t, compileKind(t, "sort", `{"by": "v"}`, CompileContext{}), nil, input)
	// 3 and 3.0 are equal, so the stable sort keeps a before f.
	assertValues(t, table, "id", "d", "c", "a", "f", "b", "e")

	table = runBlock(t, compileKind(t, "sort", `{"by": ["v"], "desc": true}`, CompileContext{}), nil, input)
	assertValues(t, table, "id", "a", "f", "c", "d", "b", "e")
}

func TestSortSeveralFields(t *testing.T) {
	input := newTable([]string{"g", "v"},
		[]any{"b", int64(1)}, []any{"a", int64(2)}, []any{"b", int64(0)}, []any{"a", int64(1)})
	table := runBlock(t, compileKind(t, "sort", `{"by": ["g", "v"]}`, CompileContext{}), nil, input)
	assertValues(t, table, "g", "a", "a", "b", "b")
	assertValues(t, table, "v", int64(1), int64(2), int64(0), int64(1))
}

func TestSortDatesAndText(t *testing.T) {
	input := newTable([]string{"d", "s"},
		[]any{date(2014, 1, 2), "b"}, []any{date(2013, 5, 1), "B"}, []any{date(2014, 1, 1), "a"})
	table := runBlock(t, compileKind(t, "sort", `{"by": "d"}`, CompileContext{}), nil, input)
	assertValues(t, table, "s", "B", "a", "b")

	table = runBlock(t, compileKind(t, "sort", `{"by": "s"}`, CompileContext{}), nil, input)
	assertValues(t, table, "s", "B", "a", "b")
}

func TestSortUnknownField(t *testing.T) {
	err := runFails(t, compileKind(t, "sort", `{"by": "zz"}`, CompileContext{}), nil, bigTable(3))
	assertErrorContains(t, err, `by: unknown field "zz"`)
}

func TestSortOptionProblems(t *testing.T) {
	tests := []struct{ options, option, text string }{
		{`{"by": []}`, "by", "at least one field"},
		{`{"by": 3}`, "by", "a field name or an array of field names"},
		{`{"by": ""}`, "by", "must not be empty"},
		{`{"by": "a", "desc": "yes"}`, "desc", "true or false"},
	}
	for _, tt := range tests {
		problems := compileFails(t, "sort", tt.options, CompileContext{})
		if !hasProblem(problems, tt.option, tt.text) {
			t.Errorf("%s: problems = %v, want %s: %s", tt.options, problems, tt.option, tt.text)
		}
	}
}

func TestCompareValuesOrder(t *testing.T) {
	ordered := []any{
		false, true,
		math.NaN(), math.Inf(-1), int64(math.MinInt64), -1.5, int64(-1), 0.0, int64(1), 1.5,
		int64(1) << 53, int64(1)<<53 + 1, float64(1 << 60), int64(math.MaxInt64), math.Inf(1),
		date(2012, 1, 1), date(2013, 1, 1),
		"", "A", "a",
	}
	for i := range ordered {
		for j := range ordered {
			got := compareValues(ordered[i], ordered[j])
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got != want {
				t.Errorf("compareValues(%#v, %#v) = %d, want %d", ordered[i], ordered[j], got, want)
			}
		}
	}
}

func TestCompareValuesEqualNumbers(t *testing.T) {
	if c := compareValues(int64(3), 3.0); c != 0 {
		t.Errorf("compareValues(3, 3.0) = %d", c)
	}
	if c := compareValues(3.0, int64(3)); c != 0 {
		t.Errorf("compareValues(3.0, 3) = %d", c)
	}
}

func TestSortChunksMatchOneSort(t *testing.T) {
	// Three chunks' worth of rows with few distinct keys, so that most
	// rows tie and only a stable merge keeps their input order.
	rows := 3*minRecordsPerWorker + 7
	input := bigTable(rows)
	for i, row := range input.Rows {
		row["k"] = int64((i * 7919) % 13)
		if i%101 == 0 {
			row["k"] = nil
		}
	}
	input.Columns = append(input.Columns, "k")

	for _, desc := range []bool{false, true} {
		options := `{"by": "k", "desc": false}`
		if desc {
			options = `{"by": "k", "desc": true}`
		}
		table := runBlock(t, compileKind(t, "sort", options, CompileContext{}), nil, input)
		want := slices.Clone(input.Rows)
		slices.SortStableFunc(want, func(x, y Row) int {
			a, b := x["k"], y["k"]
			switch {
			case a == nil && b == nil:
				return 0
			case a == nil:
				return 1
			case b == nil:
				return -1
			case desc:
				return cmp.Compare(b.(int64), a.(int64))
			}
			return cmp.Compare(a.(int64), b.(int64))
		})
		for i := range want {
			if table.Rows[i]["n"] != want[i]["n"] {
				t.Fatalf("desc %t: row %d is input row %v, want %v", desc, i, table.Rows[i]["n"], want[i]["n"])
			}
		}
	}
}
