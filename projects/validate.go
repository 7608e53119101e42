package projects

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/lambdaflow/lambdaflow/internal/httpapi"
	"github.com/lambdaflow/lambdaflow/projects/blocks"
)

// Definition size limits. Every block state change rewrites the job's
// block list, so the cost of a job grows with the square of its blocks.
const (
	// MaxBlocks is the largest number of blocks in a project.
	MaxBlocks = 500
	// MaxParameters is the largest number of parameters in a project.
	MaxParameters = 100
)

// placeholder matches ${name} in option strings.
var placeholder = regexp.MustCompile(`\$\{([^}]*)\}`)

// ReservedNames are the first path segments of the server's own routes
// at the root. A project with one of these names would have
// Omniscope-style routes, /{project}/w/..., that the server's own routes
// hide.
var ReservedNames = []string{"admin", "api", "healthz", "metrics", "readyz", "swagger"}

// Validate checks the whole definition and returns every problem found,
// each naming its place, such as blocks[2].options.where. A nil result
// means the definition can be saved.
func (p *Project) Validate() []httpapi.FieldError {
	v := &validator{}
	if !namePattern.MatchString(p.Name) {
		v.add("name", "must match ^[A-Za-z][A-Za-z0-9_.-]{0,63}$, got %q", p.Name)
	} else if slices.Contains(ReservedNames, p.Name) {
		v.add("name", "%q is reserved because the server serves /%s itself, so the project's /%s/w/ routes could not be reached; choose another name", p.Name, p.Name, p.Name)
	}
	if p.Timeout != "" {
		if d, err := time.ParseDuration(p.Timeout); err != nil || d <= 0 {
			v.add("timeout", "must be a positive Go duration such as 30s or 5m, got %q", p.Timeout)
		}
	}
	v.parameters(p.Parameters)
	v.blocks(p)
	if p.Result != "" {
		if _, ok := p.block(p.Result); !ok {
			v.add("result", "names no block: %q", p.Result)
		}
	}
	return v.errs
}

type validator struct {
	errs []httpapi.FieldError
}

func (v *validator) add(field, format string, args ...any) {
	v.errs = append(v.errs, httpapi.FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

func (v *validator) parameters(params []Parameter) {
	if len(params) > MaxParameters {
		v.add("parameters", "a project has at most %d parameters, got %d", MaxParameters, len(params))
		return
	}
	seen := map[string]bool{}
	for i := range params {
		def := &params[i]
		field := fmt.Sprintf("parameters[%d]", i)
		if !namePattern.MatchString(def.Name) {
			v.add(field+".name", "must match ^[A-Za-z][A-Za-z0-9_.-]{0,63}$, got %q", def.Name)
		} else if seen[def.Name] {
			v.add(field+".name", "duplicate parameter name %q", def.Name)
		}
		seen[def.Name] = true
		v.parameter(field, def)
	}
}

func (v *validator) parameter(field string, def *Parameter) {
	if !parameterTypes[def.Type] {
		v.add(field+".type", "must be one of text, number, integer, boolean, date, datetime, choice, file; got %q", def.Type)
		return
	}
	if def.Type == TypeChoice && len(def.Options) == 0 {
		v.add(field+".options", "a choice parameter needs at least one option")
	}
	if def.Type != TypeChoice && len(def.Options) > 0 {
		v.add(field+".options", "only choice parameters take options")
	}
	if def.Min != nil && def.Max != nil && *def.Min > *def.Max {
		v.add(field+".min", "min %s is greater than max %s", formatFloat(*def.Min), formatFloat(*def.Max))
	}
	if def.MinLength != nil && *def.MinLength < 0 {
		v.add(field+".minLength", "must not be negative")
	}
	if def.MaxLength != nil && *def.MaxLength < 0 {
		v.add(field+".maxLength", "must not be negative")
	}
	if def.Pattern != "" {
		if _, err := regexp.Compile(def.Pattern); err != nil {
			v.add(field+".pattern", "is not a valid regular expression: %v", err)
		}
	}
	if def.Default != nil {
		if _, err := def.convert(def.Default); err != nil {
			v.add(field+".default", "%v", err)
		}
	}
}

func (v *validator) blocks(p *Project) {
	if len(p.Blocks) == 0 {
		v.add("blocks", "a project needs at least one block")
		return
	}
	if len(p.Blocks) > MaxBlocks {
		v.add("blocks", "a project has at most %d blocks, got %d", MaxBlocks, len(p.Blocks))
		return
	}
	types := map[string]string{}
	for _, def := range p.Parameters {
		types[def.Name] = def.Type
	}
	index := map[string]int{}
	for i := range p.Blocks {
		b := &p.Blocks[i]
		field := fmt.Sprintf("blocks[%d]", i)
		if !namePattern.MatchString(b.Name) {
			v.add(field+".name", "must match ^[A-Za-z][A-Za-z0-9_.-]{0,63}$, got %q", b.Name)
		} else if _, dup := index[b.Name]; dup {
			v.add(field+".name", "duplicate block name %q", b.Name)
		} else {
			index[b.Name] = i
		}
	}
	for i := range p.Blocks {
		v.block(fmt.Sprintf("blocks[%d]", i), &p.Blocks[i], index, types)
	}
	v.writePaths(p.Blocks)
	if cycle := findCycle(p.Blocks, index); cycle != nil {
		v.add(fmt.Sprintf("blocks[%d].inputs", index[cycle[0]]), "inputs form a cycle: %s", strings.Join(cycle, " -> "))
	}
}

func (v *validator) block(field string, b *Block, index map[string]int, params map[string]string) {
	for j, in := range b.Inputs {
		if _, ok := index[in]; !ok {
			v.add(fmt.Sprintf("%s.inputs[%d]", field, j), "names no block: %q", in)
		}
	}
	kind, ok := blocks.Lookup(b.Type)
	if !ok {
		v.add(field+".type", "unknown block type %q; known types: %s", b.Type, strings.Join(blocks.Types(), ", "))
		return
	}
	v.inputCount(field, b, kind)
	for _, ref := range placeholders(b.Options, "") {
		if _, ok := params[ref.name]; !ok {
			v.add(field+".options"+ref.path, "placeholder ${%s} names no parameter", ref.name)
		}
	}
	_, optErrs := kind.Compile(b.Options, blocks.CompileContext{Params: params, Deferred: true})
	for _, e := range optErrs {
		v.add(field+".options."+e.Option, "%s", e.Message)
	}
}

func (v *validator) inputCount(field string, b *Block, kind blocks.Kind) {
	n := len(b.Inputs)
	switch {
	case kind.MaxInputs == 0 && n > 0:
		v.add(field+".inputs", "a %s block takes no inputs, got %d", b.Type, n)
	case n < kind.MinInputs && kind.MinInputs == kind.MaxInputs:
		v.add(field+".inputs", "a %s block needs exactly %d input(s), got %d", b.Type, kind.MinInputs, n)
	case n < kind.MinInputs:
		v.add(field+".inputs", "a %s block needs at least %d input(s), got %d", b.Type, kind.MinInputs, n)
	case kind.MaxInputs >= 0 && n > kind.MaxInputs:
		v.add(field+".inputs", "a %s block takes at most %d input(s), got %d", b.Type, kind.MaxInputs, n)
	}
}

// placeholderRef is one ${name} found at path inside a block's options.
type placeholderRef struct {
	path string
	name string
}

// placeholders lists every ${name} in the string values of v, in a
// stable order.
func placeholders(v any, path string) []placeholderRef {
	var refs []placeholderRef
	switch x := v.(type) {
	case string:
		for _, m := range placeholder.FindAllStringSubmatch(x, -1) {
			refs = append(refs, placeholderRef{path: path, name: m[1]})
		}
	case []any:
		for i, item := range x {
			refs = append(refs, placeholders(item, path+"["+strconv.Itoa(i)+"]")...)
		}
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			refs = append(refs, placeholders(x[k], path+"."+k)...)
		}
	}
	return refs
}

// findCycle returns the block names along one cycle of the input graph,
// starting and ending with the same name, or nil when the graph is a DAG.
func findCycle(list []Block, index map[string]int) []string {
	const (
		unvisited = iota
		visiting
		done
	)
	state := make([]int, len(list))
	var stack []string
	var visit func(i int) []string
	visit = func(i int) []string {
		state[i] = visiting
		stack = append(stack, list[i].Name)
		for _, in := range list[i].Inputs {
			j, ok := index[in]
			if !ok {
				continue
			}
			if state[j] == visiting {
				start := slices.Index(stack, in)
				return append(append([]string{}, stack[start:]...), in)
			}
			if state[j] == unvisited {
				if c := visit(j); c != nil {
					return c
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[i] = done
		return nil
	}
	for i := range list {
		if state[i] == unvisited {
			if c := visit(i); c != nil {
				return c
			}
		}
	}
	return nil
}

// writePaths rejects two writing blocks with the same path, since the
// second would overwrite the first's file in the job's output directory.
func (v *validator) writePaths(list []Block) {
	seen := map[string]string{}
	for i, b := range list {
		if b.Type != "csv.write" && b.Type != "json.write" {
			continue
		}
		path, ok := b.Options["path"].(string)
		if !ok {
			continue
		}
		key := filepath.Clean(path)
		if first, dup := seen[key]; dup {
			v.add(fmt.Sprintf("blocks[%d].options.path", i), "block %q already writes %q; give each writing block its own path", first, path)
			continue
		}
		seen[key] = b.Name
	}
}
