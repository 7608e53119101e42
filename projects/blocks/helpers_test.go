package blocks

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// examplesDir holds the example data files of the repository.
const examplesDir = "../../examples/files"

// decodeOptions decodes options the way definitions are decoded, with
// numbers as json.Number.
func decodeOptions(t testing.TB, text string) map[string]any {
	t.Helper()
	decoder := json.NewDecoder(strings.NewReader(text))
	decoder.UseNumber()
	var options map[string]any
	if err := decoder.Decode(&options); err != nil {
		t.Fatalf("decoding options %s: %v", text, err)
	}
	return options
}

// compileKind compiles a block of type typ from JSON options and fails the
// test on any problem.
func compileKind(t testing.TB, typ, options string, cc CompileContext) Block {
	t.Helper()
	kind, ok := Lookup(typ)
	if !ok {
		t.Fatalf("Lookup(%q) found no kind", typ)
	}
	block, problems := kind.Compile(decodeOptions(t, options), cc)
	if len(problems) > 0 {
		t.Fatalf("compiling %s %s: %v", typ, options, problems)
	}
	return block
}

// compileFails compiles a block that must not compile and returns the
// problems.
func compileFails(t testing.TB, typ, options string, cc CompileContext) []OptionError {
	t.Helper()
	kind, ok := Lookup(typ)
	if !ok {
		t.Fatalf("Lookup(%q) found no kind", typ)
	}
	block, problems := kind.Compile(decodeOptions(t, options), cc)
	if len(problems) == 0 {
		t.Fatalf("compiling %s %s: expected problems, got none", typ, options)
	}
	if block != nil {
		t.Errorf("compiling %s %s: expected a nil block with problems", typ, options)
	}
	return problems
}

// hasProblem reports whether problems contains one at option whose
// message contains text.
func hasProblem(problems []OptionError, option, text string) bool {
	for _, p := range problems {
		if p.Option == option && strings.Contains(p.Message, text) {
			return true
		}
	}
	return false
}

// runBlock runs block with a background context and fails the test on an
// error.
func runBlock(t testing.TB, block Block, env *Env, inputs ...*Table) *Table {
	t.Helper()
	if env == nil {
		env = &Env{}
	}
	table, err := block.Run(context.Background(), env, inputs)
	if err != nil {
		t.Fatalf("running block: %v", err)
	}
	return table
}

// runFails runs block and returns its error, failing the test when there
// is none.
func runFails(t testing.TB, block Block, env *Env, inputs ...*Table) error {
	t.Helper()
	if env == nil {
		env = &Env{}
	}
	table, err := block.Run(context.Background(), env, inputs)
	if err == nil {
		t.Fatalf("running block: expected an error, got a table with %d rows", len(table.Rows))
	}
	return err
}

// cancelledContext returns a context that is already cancelled.
func cancelledContext() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// newTable builds a table whose rows have values in column order.
func newTable(columns []string, values ...[]any) *Table {
	table := &Table{Columns: columns, Rows: []Row{}}
	for _, row := range values {
		r := make(Row, len(columns))
		for i, name := range columns {
			r[name] = row[i]
		}
		table.Rows = append(table.Rows, r)
	}
	return table
}

// bigTable builds a table of n rows with an int64 column "n" counting from
// 0 and a text column "s".
func bigTable(n int) *Table {
	table := &Table{Columns: []string{"n", "s"}, Rows: make([]Row, n)}
	for i := range table.Rows {
		table.Rows[i] = Row{"n": int64(i), "s": "x"}
	}
	return table
}

// columnValues returns the values of column name in row order.
func columnValues(table *Table, name string) []any {
	values := make([]any, len(table.Rows))
	for i, row := range table.Rows {
		values[i] = row[name]
	}
	return values
}

func assertColumns(t testing.TB, table *Table, want ...string) {
	t.Helper()
	if !reflect.DeepEqual(table.Columns, want) {
		t.Errorf("columns = %q, want %q", table.Columns, want)
	}
}

func assertValues(t testing.TB, table *Table, column string, want ...any) {
	t.Helper()
	got := columnValues(table, column)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("column %q = %#v, want %#v", column, got, want)
	}
}

func assertErrorContains(t testing.TB, err error, parts ...string) {
	t.Helper()
	for _, part := range parts {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q does not contain %q", err, part)
		}
	}
}

func date(year int, month time.Month, day int) time.Time {
	return time.Date(year, month, day, 0, 0, 0, 0, time.UTC)
}

// jsonText returns data compacted, for comparing JSON output.
func jsonText(t testing.TB, data []byte) string {
	t.Helper()
	var compact bytes.Buffer
	if err := json.Compact(&compact, data); err != nil {
		t.Fatalf("compacting JSON %s: %v", data, err)
	}
	return compact.String()
}
