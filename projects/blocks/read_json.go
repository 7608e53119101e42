package blocks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// jsonReadKind reads a JSON file from the files directory that holds an
// array of objects. Option: path (required). Integer numbers become int64
// and other numbers float64. Strings stay text, including dates. Nested
// objects and arrays become their compact JSON text. The columns are the
// union of the objects' keys in first-seen order.
var jsonReadKind = Kind{Type: "json.read", MinInputs: 0, MaxInputs: 0, Compile: compileJSONRead}

// inlineKind produces rows written in its options. Option: rows (required),
// an array of objects whose values convert as in json.read. Because
// options arrive as decoded maps, which keep no key order, the keys of
// each row are taken in sorted order when building the column list.
var inlineKind = Kind{Type: "inline", MinInputs: 0, MaxInputs: 0, Compile: compileInline}

type jsonReadBlock struct {
	path string
}

func compileJSONRead(options map[string]any, cc CompileContext) (Block, []OptionError) {
	r := newOptionReader(options, cc)
	block := &jsonReadBlock{path: r.path("path")}
	if problems := r.finish(); len(problems) > 0 {
		return nil, problems
	}
	return block, nil
}

// Run reads and converts the file.
func (b *jsonReadBlock) Run(ctx context.Context, env *Env, _ []*Table) (*Table, error) {
	file, err := openInRoot(env.FilesDir, b.path)
	if err != nil {
		return nil, fmt.Errorf("opening %q: %w", b.path, err)
	}
	defer file.Close()

	table, err := decodeJSONRows(ctx, file)
	if err != nil {
		return nil, fmt.Errorf("reading %q: %w", b.path, err)
	}
	return table, nil
}

// columnSet collects column names in first-seen order.
type columnSet struct {
	names []string
	index map[string]int
}

func newColumnSet() *columnSet {
	return &columnSet{names: []string{}, index: make(map[string]int)}
}

func (c *columnSet) add(name string) {
	if _, ok := c.index[name]; !ok {
		c.index[name] = len(c.names)
		c.names = append(c.names, name)
	}
}

// fillMissing sets every column a row lacks to nil, so that all rows of
// the table have the same keys.
func (c *columnSet) fillMissing(rows []Row) {
	for _, row := range rows {
		if len(row) == len(c.names) {
			continue
		}
		for _, name := range c.names {
			if _, ok := row[name]; !ok {
				row[name] = nil
			}
		}
	}
}

// decodeJSONRows streams a JSON array of objects into a table.
func decodeJSONRows(ctx context.Context, input io.Reader) (*Table, error) {
	decoder := json.NewDecoder(input)
	token, err := decoder.Token()
	if errors.Is(err, io.EOF) {
		return nil, errors.New("the file is empty; expected a JSON array of objects")
	}
	if err != nil {
		return nil, err
	}
	if token != json.Delim('[') {
		return nil, fmt.Errorf("expected a JSON array of objects, got %s", describeToken(token))
	}

	columns := newColumnSet()
	var rows []Row
	for decoder.More() {
		if len(rows)%checkInterval == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		row, err := decodeJSONObject(decoder, columns)
		if err != nil {
			return nil, fmt.Errorf("array element %d: %w", len(rows)+1, err)
		}
		rows = append(rows, row)
	}
	if _, err := decoder.Token(); err != nil {
		return nil, err
	}
	if _, err := decoder.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("unexpected data after the JSON array")
	}

	columns.fillMissing(rows)
	return &Table{Columns: columns.names, Rows: rows}, nil
}

// decodeJSONObject decodes the next object of the array into a row,
// adding new keys to columns.
func decodeJSONObject(decoder *json.Decoder, columns *columnSet) (Row, error) {
	token, err := decoder.Token()
	if err != nil {
		return nil, err
	}
	if token != json.Delim('{') {
		if delim, ok := token.(json.Delim); ok && delim == '[' {
			return nil, errors.New("expected an object, got an array")
		}
		return nil, fmt.Errorf("expected an object, got %s", describeToken(token))
	}

	row := make(Row)
	for decoder.More() {
		token, err := decoder.Token()
		if err != nil {
			return nil, err
		}
		key := token.(string)
		var raw json.RawMessage
		if err := decoder.Decode(&raw); err != nil {
			return nil, fmt.Errorf("key %q: %w", key, err)
		}
		if row[key], err = convertRawJSON(raw); err != nil {
			return nil, fmt.Errorf("key %q: %w", key, err)
		}
		columns.add(key)
	}
	_, err = decoder.Token()
	return row, err
}

// convertRawJSON converts one JSON value to a table value.
func convertRawJSON(raw json.RawMessage) (any, error) {
	switch raw[0] {
	case 'n':
		return nil, nil
	case 't':
		return true, nil
	case 'f':
		return false, nil
	case '"':
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	case '{', '[':
		var compact bytes.Buffer
		err := json.Compact(&compact, raw)
		return compact.String(), err
	}
	return convertJSONNumber(string(raw))
}

// convertJSONNumber returns int64 for an integer literal within range and
// float64 for any other number, so 2.0 stays a float.
func convertJSONNumber(text string) (any, error) {
	if !strings.ContainsAny(text, ".eE") {
		if n, err := strconv.ParseInt(text, 10, 64); err == nil {
			return n, nil
		}
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil {
		return nil, fmt.Errorf("invalid number %s", text)
	}
	return f, nil
}

func describeToken(token json.Token) string {
	switch t := token.(type) {
	case json.Delim:
		if t == '{' {
			return "an object"
		}
		return "an array"
	case string:
		return "text " + strconv.Quote(t)
	case nil:
		return "null"
	}
	return fmt.Sprint(token)
}

type inlineBlock struct {
	table Table
}

func compileInline(options map[string]any, cc CompileContext) (Block, []OptionError) {
	r := newOptionReader(options, cc)
	table := inlineRows(r)
	if problems := r.finish(); len(problems) > 0 {
		return nil, problems
	}
	return &inlineBlock{table: table}, nil
}

// inlineRows reads the rows option into a table.
func inlineRows(r *optionReader) Table {
	v, ok := r.value("rows", true)
	if !ok {
		return Table{}
	}
	items, isList := v.([]any)
	if !isList {
		r.addProblem("rows", "must be an array of objects, got %s", describeOption(v))
		return Table{}
	}

	columns := newColumnSet()
	rows := make([]Row, 0, len(items))
	for i, item := range items {
		object, isObject := item.(map[string]any)
		if !isObject {
			r.addProblem(fmt.Sprintf("rows[%d]", i), "must be an object, got %s", describeOption(item))
			continue
		}
		row := make(Row, len(object))
		for _, key := range sortedKeys(object) {
			value, err := convertOptionValue(object[key])
			if err != nil {
				r.addProblem(fmt.Sprintf("rows[%d].%s", i, key), "%v", err)
			}
			row[key] = value
			columns.add(key)
		}
		rows = append(rows, row)
	}
	columns.fillMissing(rows)
	return Table{Columns: columns.names, Rows: rows}
}

// convertOptionValue converts a decoded option value to a table value, as
// convertRawJSON does for JSON text.
func convertOptionValue(v any) (any, error) {
	switch x := v.(type) {
	case nil, bool, string, float64, time.Time:
		return v, nil
	case float32:
		return float64(x), nil
	case json.Number:
		return convertJSONNumber(x.String())
	case map[string]any, []any:
		text, err := json.Marshal(x)
		if err != nil {
			return nil, fmt.Errorf("converting to JSON text: %w", err)
		}
		return string(text), nil
	}
	if n, ok := goInteger(v); ok {
		return n, nil
	}
	return nil, fmt.Errorf("unsupported value of type %T", v)
}

// Run returns the rows given in the options. Every run returns the same
// row maps, which is safe because blocks never modify their input rows.
func (b *inlineBlock) Run(ctx context.Context, _ *Env, _ []*Table) (*Table, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return &Table{Columns: slices.Clone(b.table.Columns), Rows: slices.Clone(b.table.Rows)}, nil
}
