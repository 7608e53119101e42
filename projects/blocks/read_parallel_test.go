package blocks

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// writeLargeCSV writes 200,000 rows of unquoted CSV, more than
// minParallelBytes, to a file in dir and returns its name. The second
// column holds integers except in its last cell, a decimal, so that only
// the last piece rules integer out. last replaces the last line when set.
func writeLargeCSV(t *testing.T, dir string, header bool, last string) string {
	t.Helper()
	var text strings.Builder
	text.WriteString("\uFEFF")
	if header {
		text.WriteString("id,amount,flag,day,name\n")
	}
	const rows = 200_000
	for i := range rows - 1 {
		name := fmt.Sprintf("name%d", i%50)
		if i%1000 == 7 {
			name = "" // a null
		}
		fmt.Fprintf(&text, "%d,%d,%t,2024-01-%02d,%s\n", i, i%977, i%2 == 0, i%28+1, name)
	}
	if last == "" {
		last = "199999,12.5,false,2024-02-01,last"
	}
	text.WriteString(last + "\n")
	if text.Len() < minParallelBytes {
		t.Fatalf("test file is %d bytes, want at least %d for the parallel path", text.Len(), minParallelBytes)
	}
	if err := os.WriteFile(filepath.Join(dir, "large.csv"), []byte(text.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return "large.csv"
}

// readSerially returns what the serial path makes of the file.
func readSerially(t *testing.T, block *csvReadBlock, dir string) (*Table, error) {
	t.Helper()
	file, err := os.Open(filepath.Join(dir, block.path))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	columns, records, types, err := block.readRecords(context.Background(), file)
	if err != nil {
		return nil, fmt.Errorf("reading %q: %w", block.path, err)
	}
	return convertRecords(context.Background(), columns, records, types)
}

func TestCSVReadParallelMatchesSerial(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		t.Skip("the parallel path needs two usable cores")
	}
	for _, header := range []bool{true, false} {
		t.Run(fmt.Sprintf("header=%t", header), func(t *testing.T) {
			dir := t.TempDir()
			path := writeLargeCSV(t, dir, header, "")
			block := &csvReadBlock{path: path, delimiter: ',', header: header}
			file, err := os.Open(filepath.Join(dir, path))
			if err != nil {
				t.Fatal(err)
			}
			defer file.Close()
			if _, _, _, ok, err := block.readRecordsParallel(context.Background(), file); !ok || err != nil {
				t.Fatalf("parallel read: ok %t, error %v, want it to take the file", ok, err)
			}

			parallel, err := block.Run(context.Background(), &Env{FilesDir: dir}, nil)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			serial, err := readSerially(t, block, dir)
			if err != nil {
				t.Fatalf("serial read: %v", err)
			}
			if !reflect.DeepEqual(parallel.Columns, serial.Columns) {
				t.Errorf("columns = %v, want %v", parallel.Columns, serial.Columns)
			}
			if len(parallel.Rows) != len(serial.Rows) {
				t.Fatalf("%d rows, want %d", len(parallel.Rows), len(serial.Rows))
			}
			for i := range serial.Rows {
				if !reflect.DeepEqual(parallel.Rows[i], serial.Rows[i]) {
					t.Fatalf("row %d = %v, want %v", i+1, parallel.Rows[i], serial.Rows[i])
				}
			}
			// The decimal in the last row makes the whole column float.
			if got := parallel.Rows[0][parallel.Columns[1]]; got != float64(0) {
				t.Errorf("first amount = %#v, want float64 0", got)
			}
		})
	}
}

func TestCSVReadParallelErrorMatchesSerial(t *testing.T) {
	dir := t.TempDir()
	path := writeLargeCSV(t, dir, true, "1,2,3")
	block := &csvReadBlock{path: path, delimiter: ',', header: true}
	_, err := block.Run(context.Background(), &Env{FilesDir: dir}, nil)
	if err == nil {
		t.Fatal("Run of a file whose last row lacks fields returned no error")
	}
	_, serialErr := readSerially(t, block, dir)
	if serialErr == nil || err.Error() != serialErr.Error() {
		t.Errorf("error = %v, want the serial read's %v", err, serialErr)
	}
	assertErrorContains(t, err, "row 200000", "wrong number of fields")
}
