// Package blocks is the library of data blocks a workflow is built from.
// A block takes the tables of its inputs and produces one table.
package blocks

import (
	"context"
)

// Row is one record, field name to value. Values are nil (a null), bool,
// int64, float64, string or time.Time.
type Row = map[string]any

// Table is the data flowing between blocks. Rows must not be modified by a
// block that received them as input, because several blocks may read the
// same table concurrently.
type Table struct {
	// Columns lists the field names in output order.
	Columns []string
	Rows    []Row
}

// Env is the environment a block runs in.
type Env struct {
	// FilesDir is the root that reading blocks resolve paths against.
	FilesDir string
	// OutputDir is the job's own directory for writing blocks. The first
	// block that writes a file creates it.
	OutputDir string
	// Params holds the job's typed parameter values, as expressions see
	// them under params.
	Params map[string]any
}

// Block is a compiled block, ready to run any number of times.
type Block interface {
	// Run produces the block's table from its inputs, in the order the
	// definition lists them. It returns promptly with ctx's error once
	// ctx is done.
	Run(ctx context.Context, env *Env, inputs []*Table) (*Table, error)
}

// OptionError names an invalid option of a block. Option is the path
// inside the block's options, such as "where" or "aggregates.days".
type OptionError struct {
	Option  string
	Message string
}

// CompileContext is the project information that compiling a block needs.
type CompileContext struct {
	// Params maps each declared parameter name to its type ("text",
	// "number", "integer", "boolean", "date", "datetime", "choice",
	// "file"); expressions may refer to params.NAME only for these.
	Params map[string]string
	// Deferred is true when the options still hold ${name} placeholders
	// (a template being saved). Checks that need the final values, such
	// as whether a path stays inside its directory, are then made only
	// on the text outside placeholders.
	Deferred bool
}

// Kind describes one block type.
type Kind struct {
	// Type is the name used in definitions, such as "csv.read".
	Type string
	// MinInputs and MaxInputs bound the number of inputs; MaxInputs -1
	// means any number.
	MinInputs, MaxInputs int
	// Compile checks options and returns the block, or every problem.
	Compile func(options map[string]any, cc CompileContext) (Block, []OptionError)
}
