// Package projects holds workflow templates: the definition format, its
// validation, storage, the HTTP routes under /api/v1/projects and the DAG
// executor that runs a job's blocks.
package projects

import (
	"regexp"
	"time"

	"github.com/lambdaflow/lambdaflow/internal/timestamp"
)

// namePattern is the rule for project, block and parameter names.
var namePattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]{0,63}$`)

// Project is a workflow template: typed parameters and a DAG of blocks.
type Project struct {
	// Name identifies the project; it matches ^[A-Za-z][A-Za-z0-9_.-]{0,63}$.
	Name        string `json:"name" example:"seattle-weather"`
	Description string `json:"description,omitempty"`
	// Parameters declares the values a run can be given.
	Parameters []Parameter `json:"parameters" binding:"optional"`
	// Blocks lists the DAG's blocks; inputs name earlier or later blocks.
	Blocks []Block `json:"blocks"`
	// Result names the block whose rows a job returns inline.
	Result string `json:"result,omitempty"`
	// Timeout bounds each job of the project, as a Go duration such as
	// "5m"; empty means no limit.
	Timeout string `json:"timeout,omitempty" example:"5m"`
}

// Parameter declares one typed parameter.
type Parameter struct {
	Name string `json:"name"`
	// Type is text, number, integer, boolean, date (YYYY-MM-DD),
	// datetime (RFC 3339), choice or file.
	Type        string `json:"type" enums:"text,number,integer,boolean,date,datetime,choice,file"`
	Description string `json:"description,omitempty"`
	// Options lists the allowed values of a choice.
	Options []string `json:"options,omitempty"`
	// Default is used when neither the request nor the project's current
	// values give one.
	Default  any  `json:"default,omitempty" extensions:"x-nullable"`
	Required bool `json:"required,omitempty"`
	// Min and Max bound number and integer values.
	Min *float64 `json:"min,omitempty" format:"double"`
	Max *float64 `json:"max,omitempty" format:"double"`
	// MinLength and MaxLength bound text lengths in characters.
	MinLength *int `json:"minLength,omitempty"`
	MaxLength *int `json:"maxLength,omitempty"`
	// Pattern is a regular expression (RE2) a text value must match.
	Pattern string `json:"pattern,omitempty"`
}

// Block is one step of the DAG.
type Block struct {
	Name string `json:"name"`
	// Type is a block type such as csv.read, filter or aggregate.
	Type string `json:"type"`
	// Inputs names the blocks whose rows this block reads, in order.
	Inputs []string `json:"inputs,omitempty"`
	// Options configure the block; string values may hold ${name}
	// placeholders for parameter values.
	Options map[string]any `json:"options,omitempty"`
}

// Record is a stored project with its current parameter values.
type Record struct {
	Project
	// Values holds the current value of each parameter that has one, used
	// by plain executions.
	Values map[string]any `json:"values"`
	// Version increases with every change; the ETag is derived from it.
	Version   int64          `json:"version" example:"3"`
	CreatedAt timestamp.Time `json:"createdAt" swaggertype:"string" format:"date-time"`
	UpdatedAt timestamp.Time `json:"updatedAt" swaggertype:"string" format:"date-time"`
}

// timeout returns the project's job timeout, zero when none is set or the
// stored text does not parse (validation rejects such text on save).
func (p *Project) timeout() time.Duration {
	d, err := time.ParseDuration(p.Timeout)
	if err != nil {
		return 0
	}
	return d
}

// block returns the block with the given name.
func (p *Project) block(name string) (*Block, bool) {
	for i := range p.Blocks {
		if p.Blocks[i].Name == name {
			return &p.Blocks[i], true
		}
	}
	return nil, false
}
