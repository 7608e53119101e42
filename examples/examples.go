// Package examples ships the example projects and the data they read,
// compiled into the binary so that a new installation can run them at
// once.
package examples

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	"github.com/lambdaflow/lambdaflow/projects"
)

//go:embed files/*.csv files/*.json projects/*.json
var content embed.FS

// Projects returns the example definitions with their current values.
func Projects() ([]*projects.Record, error) {
	names, err := fs.Glob(content, "projects/*.json")
	if err != nil {
		return nil, err
	}
	recs := make([]*projects.Record, 0, len(names))
	for _, name := range names {
		rec, err := decode(name)
		if err != nil {
			return nil, err
		}
		recs = append(recs, rec)
	}
	return recs, nil
}

func decode(name string) (*projects.Record, error) {
	data, err := content.ReadFile(name)
	if err != nil {
		return nil, err
	}
	var rec projects.Record
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&rec); err != nil {
		return nil, fmt.Errorf("decoding example %s: %w", name, err)
	}
	if errs := rec.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("example %s is invalid: %s: %s", name, errs[0].Field, errs[0].Message)
	}
	if rec.Values == nil {
		rec.Values = map[string]any{}
	}
	return &rec, nil
}

// Install copies the example data into filesDir, keeping files that
// already exist there, and stores the example projects when store holds
// no project at all. It returns the number of projects stored.
func Install(ctx context.Context, filesDir string, store projects.Store) (int, error) {
	if err := copyFiles(filesDir); err != nil {
		return 0, err
	}
	n, err := store.Count(ctx)
	if err != nil || n > 0 {
		return 0, err
	}
	recs, err := Projects()
	if err != nil {
		return 0, err
	}
	for _, rec := range recs {
		if err := store.Create(ctx, rec); err != nil && !errors.Is(err, projects.ErrExists) {
			return 0, fmt.Errorf("storing example %s: %w", rec.Name, err)
		}
	}
	return len(recs), nil
}

func copyFiles(filesDir string) error {
	if err := os.MkdirAll(filesDir, 0o755); err != nil {
		return fmt.Errorf("creating files directory: %w", err)
	}
	entries, err := fs.ReadDir(content, "files")
	if err != nil {
		return err
	}
	for _, e := range entries {
		dst := filepath.Join(filesDir, e.Name())
		if _, err := os.Stat(dst); err == nil {
			continue
		}
		data, err := content.ReadFile(path.Join("files", e.Name()))
		if err != nil {
			return err
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			return fmt.Errorf("copying example data %s: %w", e.Name(), err)
		}
	}
	return nil
}
