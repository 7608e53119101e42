package blocks

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"io"
	"os"
	"runtime"
	"sync"
)

// minParallelBytes is the smallest file that csv.read parses on several
// cores. Below it, reading the whole file first costs more than the
// goroutines save.
const minParallelBytes = 4 << 20

// readRecordsParallel parses a large file on every usable core: it reads
// the file into memory, which holds its bytes besides the records until it
// returns, cuts it into one piece per core at line breaks and parses the
// pieces at once. That is only right when no field is quoted,
// since a quoted field may hold a line break, so a file with a double
// quote anywhere returns ok false, and so does any parse error: the
// caller then parses serially, which also reports errors with their
// exact row and line. A ctx error is returned as it is.
func (b *csvReadBlock) readRecordsParallel(ctx context.Context, file *os.File) (
	columns []string, records [][]string, types []columnType, ok bool, err error) {
	workers := runtime.GOMAXPROCS(0)
	info, err := file.Stat()
	if err != nil || workers < 2 || info.Size() < minParallelBytes {
		return nil, nil, nil, false, nil
	}
	data, err := io.ReadAll(file)
	if err != nil {
		return nil, nil, nil, false, err
	}
	if bytes.IndexByte(data, '"') >= 0 {
		return nil, nil, nil, false, nil
	}

	header := csv.NewReader(bytes.NewReader(data))
	header.Comma = b.delimiter
	first, err := header.Read()
	if err != nil {
		return nil, nil, nil, false, nil
	}
	columns, inferences, err := b.startColumns(first)
	if err != nil {
		return nil, nil, nil, false, nil
	}
	// Without a header, the first record, already read and without its
	// byte order mark, is the first data row.
	total := 0
	if !b.header {
		total = 1
		for i, cell := range first {
			inferences[i].observe(cell)
		}
	}

	pieces := splitLines(data[header.InputOffset():], workers)
	results := make([]csvPiece, len(pieces))
	var wg sync.WaitGroup
	for i, piece := range pieces {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = b.parsePiece(ctx, piece, len(columns))
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, nil, nil, false, err
	}

	for _, result := range results {
		if result.err != nil {
			return nil, nil, nil, false, nil
		}
		total += len(result.records)
		for i := range inferences {
			inferences[i] = inferences[i].merge(result.inferences[i])
		}
	}
	records = make([][]string, 0, total)
	if !b.header {
		records = append(records, first)
	}
	for _, result := range results {
		records = append(records, result.records...)
	}
	types = make([]columnType, len(inferences))
	for i, inference := range inferences {
		types[i] = inference.result()
	}
	return columns, records, types, true, nil
}

// csvPiece is what parsePiece returns for one piece of a file.
type csvPiece struct {
	records    [][]string
	inferences []typeInference
	err        error
}

// parsePiece parses one piece of unquoted CSV text whose records have
// fields fields each.
func (b *csvReadBlock) parsePiece(ctx context.Context, piece []byte, fields int) csvPiece {
	reader := csv.NewReader(bytes.NewReader(piece))
	reader.Comma = b.delimiter
	reader.FieldsPerRecord = fields
	result := csvPiece{inferences: make([]typeInference, fields)}
	for i := range result.inferences {
		result.inferences[i] = newTypeInference()
	}
	for count := 0; ; count++ {
		if err := checkContext(ctx, count); err != nil {
			result.err = err
			return result
		}
		record, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return result
		}
		if err != nil {
			result.err = err
			return result
		}
		for i, cell := range record {
			result.inferences[i].observe(cell)
		}
		result.records = append(result.records, record)
	}
}

// splitLines cuts data into at most n pieces of about equal size, each
// ending with a line break or at the end of data.
func splitLines(data []byte, n int) [][]byte {
	var pieces [][]byte
	size := len(data)/n + 1
	for len(data) > 0 {
		end := min(size, len(data))
		if i := bytes.IndexByte(data[end-1:], '\n'); i >= 0 {
			end += i
		} else {
			end = len(data)
		}
		pieces = append(pieces, data[:end])
		data = data[end:]
	}
	return pieces
}
