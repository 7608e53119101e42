package blocks

import (
	"runtime"
	"sync"
)

// chunkCount returns into how many chunks a loop over n independent rows
// is split: one per usable core, but no chunk under minRecordsPerWorker
// rows.
func chunkCount(n int) int {
	return max(1, min(runtime.GOMAXPROCS(0), n/minRecordsPerWorker))
}

// forChunks splits the indexes 0 to n-1 into chunks contiguous ranges and
// runs fn on each range on a goroutine of its own. Every chunk runs to
// its end or its first error, and forChunks returns the error of the
// first failing chunk, so the error names the same row that a loop over
// all rows in order would have stopped at.
func forChunks(n, chunks int, fn func(chunk, low, high int) error) error {
	if chunks == 1 {
		return fn(0, 0, n)
	}
	size := (n + chunks - 1) / chunks
	errs := make([]error, chunks)
	var wg sync.WaitGroup
	for c := range chunks {
		low, high := min(c*size, n), min((c+1)*size, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[c] = fn(c, low, high)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
