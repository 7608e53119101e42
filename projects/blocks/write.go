package blocks

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// csvWriteKind writes its input as CSV to a file in the job's output
// directory and passes the rows through. Option: path (required). Parent
// directories are created. The header lists the columns. Nulls are empty
// cells, floats are written in the shortest form that reads back exactly
// (without exponent), and dates are YYYY-MM-DD at midnight UTC and RFC
// 3339 otherwise. The file appears only when writing completes.
var csvWriteKind = Kind{Type: "csv.write", MinInputs: 1, MaxInputs: 1, Compile: compileCSVWrite}

// jsonWriteKind writes its input to a file in the job's output directory
// as a JSON array of objects with keys in column order, and passes the
// rows through. Option: path (required). Dates are written as in
// csv.write, and floats with a fraction or exponent, so that json.read
// reads 2.0 back as a float. A NaN or infinite float fails the block
// because JSON cannot represent it.
var jsonWriteKind = Kind{Type: "json.write", MinInputs: 1, MaxInputs: 1, Compile: compileJSONWrite}

// writeBlock is csv.write or json.write, which differ in encode.
type writeBlock struct {
	path   string
	encode func(ctx context.Context, w io.Writer, table *Table) error
}

func compileCSVWrite(options map[string]any, cc CompileContext) (Block, []OptionError) {
	return compileWrite(options, cc, encodeCSV)
}

func compileJSONWrite(options map[string]any, cc CompileContext) (Block, []OptionError) {
	return compileWrite(options, cc, encodeJSON)
}

func compileWrite(options map[string]any, cc CompileContext,
	encode func(context.Context, io.Writer, *Table) error) (Block, []OptionError) {
	r := newOptionReader(options, cc)
	block := &writeBlock{path: r.path("path"), encode: encode}
	if problems := r.finish(); len(problems) > 0 {
		return nil, problems
	}
	return block, nil
}

// Run writes the file and returns the input's rows.
func (b *writeBlock) Run(ctx context.Context, env *Env, inputs []*Table) (*Table, error) {
	input, err := singleInput(inputs)
	if err != nil {
		return nil, err
	}
	err = writeInRoot(env.OutputDir, b.path, func(w io.Writer) error {
		return b.encode(ctx, w, input)
	})
	if err != nil {
		return nil, fmt.Errorf("writing %q: %w", b.path, err)
	}
	return &Table{Columns: input.Columns, Rows: input.Rows}, nil
}

// csvWriteBatch is how many rows encodeCSV formats on every core at once
// before writing them, which bounds the text it holds in memory.
const csvWriteBatch = 64 * checkInterval

// encodeCSV writes table as CSV with a header row. A large table is
// formatted in batches, each split into chunks that are formatted on
// every core and written in order. encoding/csv quotes every record on
// its own, so the text is the same as from one writer.
func encodeCSV(ctx context.Context, w io.Writer, table *Table) error {
	writer := csv.NewWriter(w)
	if err := writer.Write(table.Columns); err != nil {
		return err
	}
	if chunkCount(len(table.Rows)) == 1 {
		if err := writeCSVRows(ctx, writer, table, 0, len(table.Rows)); err != nil {
			return err
		}
		writer.Flush()
		return writer.Error()
	}
	writer.Flush()
	if err := writer.Error(); err != nil {
		return err
	}

	for start := 0; start < len(table.Rows); start += csvWriteBatch {
		end := min(start+csvWriteBatch, len(table.Rows))
		chunks := chunkCount(end - start)
		buffers := make([]bytes.Buffer, chunks)
		err := forChunks(end-start, chunks, func(chunk, low, high int) error {
			chunkWriter := csv.NewWriter(&buffers[chunk])
			if err := writeCSVRows(ctx, chunkWriter, table, start+low, start+high); err != nil {
				return err
			}
			chunkWriter.Flush()
			return chunkWriter.Error()
		})
		if err != nil {
			return err
		}
		for i := range buffers {
			if _, err := w.Write(buffers[i].Bytes()); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeCSVRows writes the rows from low to high of table to writer.
func writeCSVRows(ctx context.Context, writer *csv.Writer, table *Table, low, high int) error {
	record := make([]string, len(table.Columns))
	for i := low; i < high; i++ {
		if err := checkContext(ctx, i); err != nil {
			return err
		}
		row := table.Rows[i]
		for j, name := range table.Columns {
			record[j] = formatCell(row[name])
		}
		if err := writer.Write(record); err != nil {
			return err
		}
	}
	return nil
}

// formatCell renders a value as CSV cell text.
func formatCell(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case time.Time:
		return formatTime(x)
	}
	return fmt.Sprint(v)
}

// formatTime renders t as YYYY-MM-DD when it is midnight UTC, and in RFC
// 3339 with any fraction of a second otherwise.
func formatTime(t time.Time) string {
	utc := t.UTC()
	if utc.Hour() == 0 && utc.Minute() == 0 && utc.Second() == 0 && utc.Nanosecond() == 0 {
		return utc.Format(time.DateOnly)
	}
	return t.Format(time.RFC3339Nano)
}

// encodeJSON writes table as a JSON array of objects, one object per line.
func encodeJSON(ctx context.Context, w io.Writer, table *Table) error {
	keys := make([][]byte, len(table.Columns))
	for i, name := range table.Columns {
		keys[i] = appendJSONString(nil, name)
	}

	var line []byte
	if _, err := io.WriteString(w, "["); err != nil {
		return err
	}
	for i, row := range table.Rows {
		if err := checkContext(ctx, i); err != nil {
			return err
		}
		line = line[:0]
		if i > 0 {
			line = append(line, ',')
		}
		var err error
		line, err = appendJSONObject(append(line, '\n'), row, table.Columns, keys)
		if err != nil {
			return fmt.Errorf("row %d: %w", i+1, err)
		}
		if _, err := w.Write(line); err != nil {
			return err
		}
	}
	_, err := io.WriteString(w, "\n]\n")
	return err
}

// appendJSONObject appends row as a JSON object with keys in column order.
func appendJSONObject(buf []byte, row Row, columns []string, keys [][]byte) ([]byte, error) {
	buf = append(buf, '{')
	for j, name := range columns {
		if j > 0 {
			buf = append(buf, ',')
		}
		buf = append(append(buf, keys[j]...), ':')
		var err error
		if buf, err = appendJSONValue(buf, row[name]); err != nil {
			return nil, fmt.Errorf("field %q: %w", name, err)
		}
	}
	return append(buf, '}'), nil
}

// appendJSONValue appends v as a JSON value.
func appendJSONValue(buf []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(buf, "null"...), nil
	case bool:
		return strconv.AppendBool(buf, x), nil
	case int64:
		return strconv.AppendInt(buf, x, 10), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("%v cannot be written as JSON", x)
		}
		text := strconv.FormatFloat(x, 'g', -1, 64)
		if !strings.ContainsAny(text, ".e") {
			text += ".0"
		}
		return append(buf, text...), nil
	case string:
		return appendJSONString(buf, x), nil
	case time.Time:
		return appendJSONString(buf, formatTime(x)), nil
	}
	text, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(buf, text...), nil
}

// appendJSONString appends s as a JSON string. Unlike json.Marshal it
// leaves <, > and & unescaped, because the file is not embedded in HTML.
func appendJSONString(buf []byte, s string) []byte {
	var encoded bytes.Buffer
	encoder := json.NewEncoder(&encoded)
	encoder.SetEscapeHTML(false)
	_ = encoder.Encode(s) // Encoding a string cannot fail.
	return append(buf, bytes.TrimSuffix(encoded.Bytes(), []byte("\n"))...)
}
