package blocks

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// checkInterval is how many rows a loop handles between checks of its
// context, so that cancellation stops it promptly without a check per row.
const checkInterval = 1000

// csvReadKind reads a CSV file from the files directory. Options: path
// (required), delimiter (one character, default ",") and header (default
// true). Without a header the columns are named c1, c2 and so on, and an
// empty header cell is named the same way after its position.
//
// Each column's type is inferred over all its non-empty cells: integer
// (int64), float (float64), boolean (true or false in any case), date
// (YYYY-MM-DD, read as midnight UTC) or else text. A number with a leading
// zero, such as "02134", keeps the column text, and so do "NaN" and "Inf".
// Cells are not trimmed. Empty cells are null. A row with the wrong number
// of fields or bad quoting fails the block with its row and line number.
var csvReadKind = Kind{Type: "csv.read", MinInputs: 0, MaxInputs: 0, Compile: compileCSVRead}

type csvReadBlock struct {
	path      string
	delimiter rune
	header    bool
}

func compileCSVRead(options map[string]any, cc CompileContext) (Block, []OptionError) {
	r := newOptionReader(options, cc)
	block := &csvReadBlock{path: r.path("path"), delimiter: ',', header: r.boolean("header", true)}
	if text := r.text("delimiter", false); text != "" && !r.isDeferred(text) {
		block.delimiter = checkDelimiter(r, text)
	}
	if problems := r.finish(); len(problems) > 0 {
		return nil, problems
	}
	return block, nil
}

// checkDelimiter returns the one character of text, or records a problem
// when encoding/csv cannot use it as a delimiter.
func checkDelimiter(r *optionReader, text string) rune {
	delimiter, size := utf8.DecodeRuneInString(text)
	switch {
	case size != len(text):
		r.addProblem("delimiter", "must be one character, got %q", text)
	case delimiter == '"' || delimiter == '\r' || delimiter == '\n' || delimiter == utf8.RuneError:
		r.addProblem("delimiter", "cannot be %q; use a character other than a quote or line break", text)
	default:
		return delimiter
	}
	return ','
}

// Run reads the file and converts its cells to the inferred types.
func (b *csvReadBlock) Run(ctx context.Context, env *Env, _ []*Table) (*Table, error) {
	file, err := openInRoot(env.FilesDir, b.path)
	if err != nil {
		return nil, fmt.Errorf("opening %q: %w", b.path, err)
	}
	defer file.Close()

	columns, records, types, ok, err := b.readRecordsParallel(ctx, file)
	if err != nil {
		return nil, fmt.Errorf("reading %q: %w", b.path, err)
	}
	if !ok {
		if _, err := file.Seek(0, io.SeekStart); err != nil {
			return nil, fmt.Errorf("reading %q: %w", b.path, err)
		}
		if columns, records, types, err = b.readRecords(ctx, file); err != nil {
			return nil, fmt.Errorf("reading %q: %w", b.path, err)
		}
	}
	return convertRecords(ctx, columns, records, types)
}

// readRecords streams the CSV text and returns the column names, the
// records of the data rows and the type inferred for each column.
func (b *csvReadBlock) readRecords(ctx context.Context, input io.Reader) ([]string, [][]string, []columnType, error) {
	reader := csv.NewReader(input)
	reader.Comma = b.delimiter

	var columns []string
	var records [][]string
	var inferences []typeInference
	for count := 0; ; count++ {
		if err := checkContext(ctx, count); err != nil {
			return nil, nil, nil, err
		}
		record, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil && columns == nil && b.header {
			return nil, nil, nil, fmt.Errorf("header: %w", err)
		}
		if err != nil {
			return nil, nil, nil, fmt.Errorf("row %d: %w", len(records)+1, err)
		}
		if columns == nil {
			if columns, inferences, err = b.startColumns(record); err != nil {
				return nil, nil, nil, err
			}
			if b.header {
				continue
			}
		}
		for i, cell := range record {
			inferences[i].observe(cell)
		}
		records = append(records, record)
	}

	types := make([]columnType, len(inferences))
	for i, inference := range inferences {
		types[i] = inference.result()
	}
	return columns, records, types, nil
}

// startColumns names the columns from the first record, after dropping a
// UTF-8 byte order mark, and starts their type inference.
func (b *csvReadBlock) startColumns(first []string) ([]string, []typeInference, error) {
	first[0] = strings.TrimPrefix(first[0], "\uFEFF")
	columns, err := headerColumns(first, b.header)
	if err != nil {
		return nil, nil, err
	}
	inferences := make([]typeInference, len(columns))
	for i := range inferences {
		inferences[i] = newTypeInference()
	}
	return columns, inferences, nil
}

// headerColumns names the columns from the first record. Without a header
// the columns are c1, c2, and so on. An empty header cell is named after
// its position in the same way.
func headerColumns(first []string, header bool) ([]string, error) {
	columns := make([]string, len(first))
	seen := make(map[string]bool, len(first))
	for i, name := range first {
		if !header || name == "" {
			name = "c" + strconv.Itoa(i+1)
		}
		if seen[name] {
			return nil, fmt.Errorf("header names the column %q twice", name)
		}
		seen[name] = true
		columns[i] = name
	}
	return columns, nil
}

// minRecordsPerWorker is the least number of records worth a goroutine
// of its own in convertRecords.
const minRecordsPerWorker = 16 * checkInterval

// convertRecords builds the rows, converting each cell to its column's
// type. A large file is converted in contiguous chunks, one per usable
// core, since each row is independent of the others.
func convertRecords(ctx context.Context, columns []string, records [][]string, types []columnType) (*Table, error) {
	rows := make([]Row, len(records))
	workers := max(1, min(runtime.GOMAXPROCS(0), len(records)/minRecordsPerWorker))
	chunk := (len(records) + workers - 1) / workers
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		low, high := w*chunk, min((w+1)*chunk, len(records))
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[w] = convertChunk(ctx, columns, types, records[low:high], rows[low:high])
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	if columns == nil {
		columns = []string{}
	}
	return &Table{Columns: columns, Rows: rows}, nil
}

// convertChunk converts records into rows, a slice of the same length.
func convertChunk(ctx context.Context, columns []string, types []columnType, records [][]string, rows []Row) error {
	converters := make([]*cellConverter, len(types))
	for i, typ := range types {
		converters[i] = newCellConverter(typ)
	}
	for r, record := range records {
		if r%checkInterval == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		row := make(Row, len(columns))
		for i, name := range columns {
			row[name] = converters[i].convert(record[i])
		}
		rows[r] = row
	}
	return nil
}
