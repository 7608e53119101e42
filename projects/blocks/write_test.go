package blocks

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// mixedTable has one column of each value type and a row of nulls.
func mixedTable() *Table {
	return newTable([]string{"i", "f", "s", "b", "d", "t"},
		[]any{int64(-3), 2.5, "a,\"b\"", true, date(2014, 1, 2), time.Date(2014, 1, 2, 3, 4, 5, 600, time.UTC)},
		[]any{nil, 3.0, "", false, nil, nil},
		[]any{int64(7), 1e21, "x", nil, date(2015, 6, 7), time.Date(2014, 1, 2, 3, 4, 5, 0, time.FixedZone("", 3600))},
	)
}

func TestCSVWriteFormats(t *testing.T) {
	dir := t.TempDir()
	block := compileKind(t, "csv.write", `{"path": "out/nested/data.csv"}`, CompileContext{})
	input := mixedTable()
	table := runBlock(t, block, &Env{OutputDir: dir}, input)
	if len(table.Rows) != len(input.Rows) {
		t.Errorf("rows = %d, want the %d input rows", len(table.Rows), len(input.Rows))
	}

	written, err := os.ReadFile(filepath.Join(dir, "out", "nested", "data.csv"))
	if err != nil {
		t.Fatal(err)
	}
	want := "i,f,s,b,d,t\n" +
		"-3,2.5,\"a,\"\"b\"\"\",true,2014-01-02,2014-01-02T03:04:05.0000006Z\n" +
		",3,,false,,\n" +
		"7,1000000000000000000000,x,,2015-06-07,2014-01-02T03:04:05+01:00\n"
	if string(written) != want {
		t.Errorf("file =\n%s\nwant\n%s", written, want)
	}
}

func TestCSVWriteRoundTrip(t *testing.T) {
	dir := t.TempDir()
	read := compileKind(t, "csv.read", `{"path": "seattle-weather.csv"}`, CompileContext{})
	original := runBlock(t, read, &Env{FilesDir: examplesDir})
	runBlock(t, compileKind(t, "csv.write", `{"path": "seattle-weather.csv"}`, CompileContext{}),
		&Env{OutputDir: dir}, original)

	again := runBlock(t, read, &Env{FilesDir: dir})
	assertColumns(t, again, original.Columns...)
	for i := range original.Rows {
		for _, name := range original.Columns {
			want, got := original.Rows[i][name], again.Rows[i][name]
			// A float column with only whole numbers reads back as
			// integers, so compare numbers by value.
			if compareValues(want, got) != 0 {
				t.Fatalf("row %d %s = %#v, want %#v", i+1, name, got, want)
			}
		}
	}
}

func TestJSONWriteFormats(t *testing.T) {
	dir := t.TempDir()
	block := compileKind(t, "json.write", `{"path": "data.json"}`, CompileContext{})
	runBlock(t, block, &Env{OutputDir: dir}, mixedTable())

	written, err := os.ReadFile(filepath.Join(dir, "data.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := `[` +
		`{"i":-3,"f":2.5,"s":"a,\"b\"","b":true,"d":"2014-01-02","t":"2014-01-02T03:04:05.0000006Z"},` +
		`{"i":null,"f":3.0,"s":"","b":false,"d":null,"t":null},` +
		`{"i":7,"f":1e+21,"s":"x","b":null,"d":"2015-06-07","t":"2014-01-02T03:04:05+01:00"}]`
	if got := jsonText(t, written); got != want {
		t.Errorf("file =\n%s\nwant\n%s", got, want)
	}
}

func TestJSONWriteRoundTrip(t *testing.T) {
	dir := t.TempDir()
	input := mixedTable()
	runBlock(t, compileKind(t, "json.write", `{"path": "data.json"}`, CompileContext{}), &Env{OutputDir: dir}, input)
	again := runBlock(t, compileKind(t, "json.read", `{"path": "data.json"}`, CompileContext{}), &Env{FilesDir: dir})
	assertColumns(t, again, input.Columns...)
	assertValues(t, again, "i", int64(-3), nil, int64(7))
	assertValues(t, again, "f", 2.5, 3.0, 1e21)
	assertValues(t, again, "s", "a,\"b\"", "", "x")
}

func TestJSONWriteEmptyTable(t *testing.T) {
	dir := t.TempDir()
	runBlock(t, compileKind(t, "json.write", `{"path": "empty.json"}`, CompileContext{}), &Env{OutputDir: dir},
		newTable([]string{"a"}))
	written, err := os.ReadFile(filepath.Join(dir, "empty.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got := jsonText(t, written); got != "[]" {
		t.Errorf("file = %s, want []", got)
	}
}

func TestJSONWriteRejectsNaN(t *testing.T) {
	dir := t.TempDir()
	block := compileKind(t, "json.write", `{"path": "bad.json"}`, CompileContext{})
	input := newTable([]string{"f"}, []any{1.0}, []any{math.NaN()})
	err := runFails(t, block, &Env{OutputDir: dir}, input)
	assertErrorContains(t, err, "row 2", `field "f"`, "NaN")
	assertNoFiles(t, dir)
}

func TestWriteCancelledLeavesNoFile(t *testing.T) {
	for _, typ := range []string{"csv.write", "json.write"} {
		dir := t.TempDir()
		block := compileKind(t, typ, `{"path": "out.txt"}`, CompileContext{})
		_, err := block.Run(cancelledContext(), &Env{OutputDir: dir}, []*Table{bigTable(10)})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s: error = %v, want context.Canceled", typ, err)
		}
		assertNoFiles(t, dir)
	}
}

func TestWriteReplacesExistingFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.csv")
	if err := os.WriteFile(path, []byte("old content that is longer\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	runBlock(t, compileKind(t, "csv.write", `{"path": "out.csv"}`, CompileContext{}), &Env{OutputDir: dir},
		newTable([]string{"a"}, []any{int64(1)}))
	written, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(written) != "a\n1\n" {
		t.Errorf("file = %q", written)
	}
}

// assertNoFiles fails the test when dir contains any entry.
func assertNoFiles(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, entry := range entries {
		t.Errorf("unexpected file %s left in the output directory", entry.Name())
	}
}

func TestJSONWriteEscapesStrings(t *testing.T) {
	dir := t.TempDir()
	input := newTable([]string{"a <b>"}, []any{"x & \"y\"\n\u00e9"})
	runBlock(t, compileKind(t, "json.write", `{"path": "s.json"}`, CompileContext{}), &Env{OutputDir: dir}, input)
	written, err := os.ReadFile(filepath.Join(dir, "s.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"a <b>":"x & \"y\"\n` + "\u00e9" + `"}]`
	if got := jsonText(t, written); got != want {
		t.Errorf("file = %s, want %s", got, want)
	}
}

func TestEncodeCSVChunksMatchOneWriter(t *testing.T) {
	// More than one batch, with cells that need quoting and nulls.
	input := bigTable(csvWriteBatch + 3*minRecordsPerWorker + 5)
	for i, row := range input.Rows {
		switch i % 5 {
		case 1:
			row["s"] = "a,\"b\"\nc"
		case 2:
			row["s"] = nil
		case 3:
			row["s"] = 1.5
		}
	}
	var chunked bytes.Buffer
	if err := encodeCSV(context.Background(), &chunked, input); err != nil {
		t.Fatalf("encodeCSV: %v", err)
	}

	var serial bytes.Buffer
	writer := csv.NewWriter(&serial)
	if err := writer.Write(input.Columns); err != nil {
		t.Fatal(err)
	}
	if err := writeCSVRows(context.Background(), writer, input, 0, len(input.Rows)); err != nil {
		t.Fatal(err)
	}
	writer.Flush()
	if !bytes.Equal(chunked.Bytes(), serial.Bytes()) {
		t.Errorf("chunked CSV differs from one writer's: %d bytes, want %d", chunked.Len(), serial.Len())
	}
}
