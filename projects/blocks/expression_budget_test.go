package blocks

import (
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestPathologicalExpressionsFail runs expressions that would build
// gigabytes of text or loop a trillion times. Each must fail with a
// budget error within seconds and without allocating past a bound.
func TestPathologicalExpressionsFail(t *testing.T) {
	input := newTable([]string{"s"}, []any{strings.Repeat("q", 60000)})
	cases := []struct {
		where, want string
	}{
		{`len(reduce(1..40, #acc + #acc, "x")) > 0`, "bytes of text"},
		{`len(reduce(1..40, #acc + s, "")) > 0`, "bytes of text"},
		{`len(replace(s, "", s)) > 0`, "bytes of text"},
		{`len(repeat(s, 1000000)) > 0`, "bytes of text"},
		{`len(map(1..900000, s + s)) > 0`, "bytes of text"},
		{`len(map(1..500, upper(s))) > 0`, "bytes of text"},
		{`len(join(map(1..400, s), ",")) > 0`, "bytes of text"},
		{`len(toJSON(map(1..400, s))) > 0`, "bytes of text"},
		{`len(string(map(1..400, s))) > 0`, "bytes of text"},
		{`all(1..900000, all(1..900000, true))`, "memory budget exceeded"},
		{`len(map(1..999999, map(1..999999, #))) > 0`, "memory budget exceeded"},
		{`len(reduce(1..40, concat(#acc, #acc), [1])) > 0`, "memory budget exceeded"},
	}
	for _, c := range cases {
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		block := compileKind(t, "filter", `{"where": `+quoteJSON(t, c.where)+`}`, CompileContext{})
		err := runFails(t, block, nil, input)
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q, want it to contain %q", c.where, err, c.want)
		}
		if elapsed := time.Since(start); elapsed > 10*time.Second {
			t.Errorf("%s: took %s, want well under 10s", c.where, elapsed)
		}
		if allocated := after.TotalAlloc - before.TotalAlloc; allocated > 1<<30 {
			t.Errorf("%s: allocated %d MiB, want under 1 GiB", c.where, allocated>>20)
		}
	}
}

func TestBoundedFunctionsKeepResults(t *testing.T) {
	input := newTable([]string{"s", "n"}, []any{"ab", int64(2)})
	block := compileKind(t, "compute", `{"fields": {
		"plus": "s + \"-\" + s", "sum": "n + 1", "rep": "repeat(s, 2)", "rpl": "replace(s, \"a\", \"x\")",
		"up": "upper(s)", "joined": "join([s, s], \"/\")", "json": "toJSON([n])", "text": "string(n)", "b64": "toBase64(s)"}}`, CompileContext{})
	row := runBlock(t, block, nil, input).Rows[0]
	want := map[string]any{"plus": "ab-ab", "sum": 3, "rep": "abab", "rpl": "xb", "up": "AB", "joined": "ab/ab",
		"json": "[\n  2\n]", "text": "2", "b64": "YWI="}
	for field, value := range want {
		if got := row[field]; fmt.Sprint(got) != fmt.Sprint(value) {
			t.Errorf("%s = %#v, want %#v", field, got, value)
		}
	}
}

func TestBoundedFunctionsKeepTypeChecks(t *testing.T) {
	problems := compileFails(t, "filter", `{"where": "upper(1) == \"1\""}`, CompileContext{})
	if len(problems) == 0 {
		t.Fatal("upper(1) compiled")
	}
}

func quoteJSON(t *testing.T, s string) string {
	t.Helper()
	data, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
