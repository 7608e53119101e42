package blocks

import (
	"context"
	"strings"
	"testing"
	"time"
)

// evaluateOne compiles source as a compute field and returns its value on
// row, with params.
func evaluateOne(t *testing.T, source string, row Row, params map[string]any) any {
	t.Helper()
	cc := CompileContext{Params: map[string]string{}}
	for name := range params {
		cc.Params[name] = "text"
	}
	block, problems := computeKind.Compile(map[string]any{"fields": map[string]any{"out": source}}, cc)
	if len(problems) > 0 {
		t.Fatalf("compiling %q: %v", source, problems)
	}
	columns := sortedKeys(row)
	table := runBlock(t, block, &Env{Params: params}, &Table{Columns: columns, Rows: []Row{row}})
	return table.Rows[0]["out"]
}

func TestExpressionFieldsNamedLikeFunctions(t *testing.T) {
	row := Row{"date": date(2014, 3, 9), "month": int64(3), "year": int64(2014), "day": int64(9), "len": int64(2)}
	tests := []struct {
		source string
		want   any
	}{
		{`month == 3`, true},
		{`month + 1`, int64(4)},
		{`year(date) == year`, true},
		{`month(date) == month && day(date) == day`, true},
		{`date == date("2014-03-09")`, true},
		{`date > date("2014-01-01")`, true},
		{`len + len("ab")`, int64(4)},
		{`dayOfWeek(date)`, int64(0)},
	}
	for _, tt := range tests {
		if got := evaluateOne(t, tt.source, row, nil); got != tt.want {
			t.Errorf("%s = %#v, want %#v", tt.source, got, tt.want)
		}
	}
}

func TestExpressionNumbers(t *testing.T) {
	row := Row{"i": int64(7), "f": 2.5, "big": int64(1) << 62}
	tests := []struct {
		source string
		want   any
	}{
		{`i == 7`, true},
		{`i + 1`, int64(8)},
		{`i * f`, 17.5},
		{`i / 2`, 3.5},
		{`i % 4`, int64(3)},
		{`i > f`, true},
		{`i == 7.0`, true},
		{`-i`, int64(-7)},
		{`abs(-i)`, int64(7)},
		{`round(f)`, 3.0},
		{`big + 1`, int64(1)<<62 + 1},
	}
	for _, tt := range tests {
		if got := evaluateOne(t, tt.source, row, nil); got != tt.want {
			t.Errorf("%s = %#v (%T), want %#v (%T)", tt.source, got, got, tt.want, tt.want)
		}
	}
}

func TestExpressionOtherResults(t *testing.T) {
	row := Row{"a": date(2014, 1, 2), "b": date(2014, 1, 1), "s": "x,y"}
	tests := []struct {
		source string
		want   any
	}{
		{`a - b`, "24h0m0s"},
		{`split(s, ",")`, `["x","y"]`},
		{`{"k": 1}`, `{"k":1}`},
		{`nil`, nil},
		{`upper(s)`, "X,Y"},
	}
	for _, tt := range tests {
		if got := evaluateOne(t, tt.source, row, nil); got != tt.want {
			t.Errorf("%s = %#v, want %#v", tt.source, got, tt.want)
		}
	}
}

func TestExpressionEnvLookup(t *testing.T) {
	row := Row{"Cost Total $": int64(120), "a": int64(1)}
	if got := evaluateOne(t, `$env["Cost Total $"] > 100`, row, nil); got != true {
		t.Errorf(`$env["Cost Total $"] > 100 = %#v`, got)
	}
	if got := evaluateOne(t, `"a" in $env`, row, nil); got != true {
		t.Errorf(`"a" in $env = %#v`, got)
	}
	if got := evaluateOne(t, `"zz" in $env`, row, nil); got != false {
		t.Errorf(`"zz" in $env = %#v`, got)
	}
}

func TestExpressionLetAndPredicates(t *testing.T) {
	row := Row{"a": int64(2), "s": "a,bb,ccc"}
	if got := evaluateOne(t, `let x = a * 2; x + a`, row, nil); got != int64(6) {
		t.Errorf("let = %#v", got)
	}
	if got := evaluateOne(t, `len(filter(split(s, ","), len(#) > 1))`, row, nil); got != int64(2) {
		t.Errorf("filter predicate = %#v", got)
	}
}

func TestExpressionParams(t *testing.T) {
	row := Row{"weather": "rain", "n": int64(3)}
	params := map[string]any{"weather": "rain", "limit": int64(2)}
	if got := evaluateOne(t, `weather == params.weather && n > params.limit`, row, params); got != true {
		t.Errorf("got %#v", got)
	}
	if got := evaluateOne(t, `params["limit"] + 1`, row, params); got != int64(3) {
		t.Errorf("got %#v", got)
	}
}

func TestExpressionFieldNamedParams(t *testing.T) {
	// The name params is reserved for parameters, so a field of that name
	// is hidden.
	row := Row{"params": "field value"}
	params := map[string]any{"x": "parameter"}
	if got := evaluateOne(t, `params.x`, row, params); got != "parameter" {
		t.Errorf("params.x = %#v", got)
	}
}

func TestExpressionDateFunctions(t *testing.T) {
	row := Row{"t": time.Date(2015, 7, 4, 13, 0, 0, 0, time.UTC), "s": "2013-02-03", "r": "2016-05-06T07:08:09Z", "n": nil}
	tests := []struct {
		source string
		want   any
	}{
		{`year(t)`, int64(2015)},
		{`month(t)`, int64(7)},
		{`day(t)`, int64(4)},
		{`dayOfWeek(t)`, int64(6)},
		{`year(s)`, int64(2013)},
		{`month(s)`, int64(2)},
		{`day(r)`, int64(6)},
		{`year(n)`, nil},
		{`year(date("2011-01-01"))`, int64(2011)},
	}
	for _, tt := range tests {
		if got := evaluateOne(t, tt.source, row, nil); got != tt.want {
			t.Errorf("%s = %#v, want %#v", tt.source, got, tt.want)
		}
	}
}

func TestExpressionCompileProblems(t *testing.T) {
	cc := CompileContext{Params: map[string]string{"year": "integer"}}
	tests := []struct {
		where, text string
	}{
		{`weather == "${weather}"`, "refer to a parameter as params.NAME"},
		{`${x} > 1`, "placeholders are not allowed"},
		{`a +`, "unexpected token"},
		{`params.region == "x"`, `no parameter named "region"; the declared parameters are year`},
		{`params["region"] == "x"`, `no parameter named "region"`},
		{`year()`, "not enough arguments"},
		{`   `, "must not be empty"},
	}
	for _, tt := range tests {
		problems := compileFails(t, "filter", `{"where": `+quote(tt.where)+`}`, cc)
		if !hasProblem(problems, "where", tt.text) {
			t.Errorf("%s: problems = %v, want %q", tt.where, problems, tt.text)
		}
	}
}

func TestExpressionUnknownParamWithoutDeclarations(t *testing.T) {
	problems := compileFails(t, "filter", `{"where": "params.x == params.y"}`, CompileContext{})
	if !hasProblem(problems, "where", `no parameter named "x"; none are declared`) {
		t.Errorf("problems = %v", problems)
	}
	if !hasProblem(problems, "where", `no parameter named "y"`) {
		t.Errorf("problems = %v", problems)
	}
}

func TestExpressionProblemPath(t *testing.T) {
	problems := compileFails(t, "compute", `{"fields": {"month": "month(", "ok": "1", "bad": "${x}"}}`, CompileContext{})
	if !hasProblem(problems, "fields.month", "unexpected token") {
		t.Errorf("problems = %v", problems)
	}
	if !hasProblem(problems, "fields.bad", "params.NAME") {
		t.Errorf("problems = %v", problems)
	}
	for _, p := range problems {
		if strings.Contains(p.Message, "\n") {
			t.Errorf("message %q spans several lines", p.Message)
		}
	}
}

func TestExpressionRuntimeErrorRow(t *testing.T) {
	block := compileKind(t, "filter", `{"where": "n > 1"}`, CompileContext{})
	input := newTable([]string{"n"}, []any{int64(5)}, []any{int64(1)}, []any{nil})
	err := runFails(t, block, nil, input)
	assertErrorContains(t, err, "row 3", "where", "<nil>", "??")
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error %q spans several lines", err)
	}
}

func TestExpressionUnknownField(t *testing.T) {
	block := compileKind(t, "filter", `{"where": "wether == \"rain\""}`, CompileContext{})
	input := newTable([]string{"weather"}, []any{"rain"})
	err := runFails(t, block, nil, input)
	assertErrorContains(t, err, `unknown field "wether"`, "weather")

	block = compileKind(t, "filter", `{"where": "$env[\"Cost\"] > 1"}`, CompileContext{})
	err = runFails(t, block, nil, input)
	assertErrorContains(t, err, `unknown field "Cost"`)
}

// quote returns s as a JSON string literal.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String()
}

func TestExpressionDateFunctionErrors(t *testing.T) {
	block := compileKind(t, "compute", `{"fields": {"y": "year(v)"}}`, CompileContext{})
	err := runFails(t, block, nil, newTable([]string{"v"}, []any{"2014-01-01"}, []any{"soon"}))
	assertErrorContains(t, err, "row 2", "fields.y", `year: invalid date "soon"`)

	err = runFails(t, block, nil, newTable([]string{"v"}, []any{int64(5)}))
	assertErrorContains(t, err, "row 1", "year: expected a date, got 5 (integer)")
}

func TestExpressionConcurrentRuns(t *testing.T) {
	block := compileKind(t, "compute", `{"fields": {"double": "n * 2", "p": "params.k"}}`,
		CompileContext{Params: map[string]string{"k": "integer"}})
	input := bigTable(3 * checkInterval)
	results := make(chan *Table, 8)
	for worker := range 8 {
		go func() {
			table, err := block.Run(context.Background(), &Env{Params: map[string]any{"k": int64(worker)}}, []*Table{input})
			if err != nil {
				t.Error(err)
			}
			results <- table
		}()
	}
	seen := map[any]bool{}
	for range 8 {
		table := <-results
		if table == nil {
			continue
		}
		for i, row := range table.Rows {
			if row["double"] != int64(2*i) {
				t.Fatalf("row %d: double = %#v", i, row["double"])
			}
		}
		seen[table.Rows[0]["p"]] = true
	}
	if len(seen) != 8 {
		t.Errorf("runs saw %d distinct params, want 8", len(seen))
	}
}

func TestExpressionSizeLimits(t *testing.T) {
	deep := strings.Repeat("(", MaxExpressionDepth+1) + "x" + strings.Repeat(")", MaxExpressionDepth+1)
	long := "x == \"" + strings.Repeat("a", MaxExpressionLength) + "\""
	shallow := strings.Repeat("(", MaxExpressionDepth) + "x" + strings.Repeat(")", MaxExpressionDepth)
	for name, source := range map[string]string{"deep": deep, "long": long} {
		if _, problems := compileExpression("where", source, CompileContext{}); len(problems) != 1 || problems[0].Option != "where" {
			t.Errorf("%s expression: problems %+v, want one at where", name, problems)
		}
	}
	if _, problems := compileExpression("where", shallow, CompileContext{}); len(problems) != 0 {
		t.Errorf("expression nested %d deep: problems %+v, want none", MaxExpressionDepth, problems)
	}
}
