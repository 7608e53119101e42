package projects

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lambdaflow/lambdaflow/internal/httpapi"
)

// Parameter types.
const (
	TypeText     = "text"
	TypeNumber   = "number"
	TypeInteger  = "integer"
	TypeBoolean  = "boolean"
	TypeDate     = "date"
	TypeDatetime = "datetime"
	TypeChoice   = "choice"
	TypeFile     = "file"
)

const dateLayout = "2006-01-02"

var parameterTypes = map[string]bool{
	TypeText: true, TypeNumber: true, TypeInteger: true, TypeBoolean: true,
	TypeDate: true, TypeDatetime: true, TypeChoice: true, TypeFile: true,
}

// Bind checks values against the project's parameters and returns them
// typed: text, choice and file as string, number as float64, integer as
// int64, boolean as bool, date and datetime as time.Time. A parameter
// missing from values takes the project's current value, then its
// default; a required one with none of them is an error. Every problem is
// reported, each naming field+"."+name.
func (p *Project) Bind(field string, values, current map[string]any) (map[string]any, []httpapi.FieldError) {
	typed, errs := p.Convert(field, values)
	for i := range p.Parameters {
		def := &p.Parameters[i]
		if _, given := values[def.Name]; given {
			continue
		}
		raw, ok := current[def.Name]
		source := "current value"
		if !ok && def.Default != nil {
			raw, ok, source = def.Default, true, "default"
		}
		if !ok {
			if def.Required {
				errs = append(errs, httpapi.FieldError{Field: field + "." + def.Name,
					Message: fmt.Sprintf("missing required %s parameter %q", def.Type, def.Name)})
			}
			continue
		}
		v, err := def.convert(raw)
		if err != nil {
			errs = append(errs, httpapi.FieldError{Field: field + "." + def.Name,
				Message: fmt.Sprintf("the project's %s %v", source, err)})
			continue
		}
		typed[def.Name] = v
	}
	return typed, errs
}

// Convert checks each given value against its parameter's declaration and
// returns the typed values. Names the project does not declare are errors.
func (p *Project) Convert(field string, values map[string]any) (map[string]any, []httpapi.FieldError) {
	var errs []httpapi.FieldError
	typed := make(map[string]any, len(values))
	for _, name := range sortedKeys(values) {
		def, ok := p.parameter(name)
		if !ok {
			errs = append(errs, httpapi.FieldError{Field: field + "." + name,
				Message: fmt.Sprintf("unknown parameter %q; the project declares %s", name, p.parameterNames())})
			continue
		}
		v, err := def.convert(values[name])
		if err != nil {
			errs = append(errs, httpapi.FieldError{Field: field + "." + name, Message: err.Error()})
			continue
		}
		typed[name] = v
	}
	return typed, errs
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// parameter returns the declaration of the named parameter.
func (p *Project) parameter(name string) (*Parameter, bool) {
	for i := range p.Parameters {
		if p.Parameters[i].Name == name {
			return &p.Parameters[i], true
		}
	}
	return nil, false
}

func (p *Project) parameterNames() string {
	if len(p.Parameters) == 0 {
		return "no parameters"
	}
	names := make([]string, len(p.Parameters))
	for i, def := range p.Parameters {
		names[i] = def.Name
	}
	return strings.Join(names, ", ")
}

// convert turns a JSON value into the parameter's Go type and checks its
// constraints with the validator rules of def (see rules). Strings are
// converted only where the meaning is unambiguous: "42" for a number,
// "true" for a boolean, "2014-03-01" for a date.
func (def *Parameter) convert(raw any) (any, error) {
	v, err := def.coerce(raw)
	if err != nil {
		return nil, err
	}
	if err := def.check(v); err != nil {
		return nil, err
	}
	return v, nil
}

// MaxTextLength is the longest value, in bytes, of a text, choice or file
// parameter, whatever the parameter's own maxLength allows. Values reach
// expressions and ${name} placeholders, so a bound on them bounds what an
// expression can build from them.
const MaxTextLength = 64 << 10

func (def *Parameter) coerce(raw any) (any, error) {
	switch def.Type {
	case TypeText, TypeChoice, TypeFile:
		s, ok := raw.(string)
		if !ok {
			return nil, fmt.Errorf("must be a string, got %s", describe(raw))
		}
		if len(s) > MaxTextLength {
			return nil, fmt.Errorf("is %d bytes long; values are limited to %d bytes", len(s), MaxTextLength)
		}
		return s, nil
	case TypeNumber:
		return toFloat(raw)
	case TypeInteger:
		return toInteger(raw)
	case TypeBoolean:
		return toBool(raw)
	case TypeDate:
		return toTime(raw, dateLayout, "a date in the form YYYY-MM-DD")
	case TypeDatetime:
		return toTime(raw, time.RFC3339Nano, "an RFC 3339 date-time such as 2014-03-01T12:00:00Z")
	}
	return nil, fmt.Errorf("has unknown type %q", def.Type)
}

func toFloat(raw any) (any, error) {
	switch x := raw.(type) {
	case json.Number:
		return parseFloat(string(x))
	case float64:
		return x, nil
	case int:
		return float64(x), nil
	case int64:
		return float64(x), nil
	case string:
		return parseFloat(x)
	}
	return nil, fmt.Errorf("must be a number, got %s", describe(raw))
}

// decimalNumber is the JSON number syntax, the only text a number or
// integer parameter takes: no spaces, underscores, hexadecimal or Inf.
var decimalNumber = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)

func parseFloat(s string) (any, error) {
	if !decimalNumber.MatchString(s) {
		return nil, fmt.Errorf("must be a number, got %s", quote(s))
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return nil, fmt.Errorf("must be a finite number, got %s", quote(s))
	}
	return f, nil
}

func toInteger(raw any) (any, error) {
	var s string
	switch x := raw.(type) {
	case json.Number:
		s = string(x)
	case string:
		s = x
	case int:
		return int64(x), nil
	case int64:
		return x, nil
	case float64:
		if x != math.Trunc(x) || math.Abs(x) > 1<<53 {
			return nil, fmt.Errorf("must be an integer, got %s", formatFloat(x))
		}
		return int64(x), nil
	default:
		return nil, fmt.Errorf("must be an integer, got %s", describe(raw))
	}
	if !decimalNumber.MatchString(s) {
		return nil, fmt.Errorf("must be an integer, got %s", quote(s))
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err == nil {
		return n, nil
	}
	// An integral number written with a fraction or exponent, such as
	// 5.0 or 1e3, is still an integer.
	f, ferr := strconv.ParseFloat(s, 64)
	if ferr != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return nil, fmt.Errorf("must be an integer, got %s", quote(s))
	}
	return int64(f), nil
}

func toBool(raw any) (any, error) {
	switch x := raw.(type) {
	case bool:
		return x, nil
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
		return nil, fmt.Errorf("must be true or false, got %s", quote(x))
	}
	return nil, fmt.Errorf("must be a boolean, got %s", describe(raw))
}

func toTime(raw any, layout, expected string) (any, error) {
	switch x := raw.(type) {
	case string:
		t, err := time.Parse(layout, strings.TrimSpace(x))
		if err != nil {
			return nil, fmt.Errorf("must be %s, got %q", expected, x)
		}
		return t.UTC(), nil
	case time.Time:
		return x.UTC(), nil
	}
	return nil, fmt.Errorf("must be %s, got %s", expected, describe(raw))
}

// maxQuoted is the longest value, in bytes, that an error message quotes
// whole. Longer values are cut, so a huge value cannot make a huge
// response.
const maxQuoted = 80

// quote returns s quoted for an error message, cut to maxQuoted bytes.
func quote(s string) string {
	if len(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	cut := maxQuoted
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + fmt.Sprintf(" (%d bytes, cut)", len(s))
}

// describe names the JSON type of v for error messages.
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number, float64, int, int64:
		return fmt.Sprintf("the number %v", x)
	case string:
		return "the string " + quote(x)
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// JSONValues returns typed values in their JSON form: dates as
// YYYY-MM-DD, date-times as RFC 3339, everything else unchanged.
func (p *Project) JSONValues(typed map[string]any) map[string]any {
	out := make(map[string]any, len(typed))
	for name, v := range typed {
		out[name] = formatJSON(p, name, v)
	}
	return out
}

func formatJSON(p *Project, name string, v any) any {
	t, ok := v.(time.Time)
	if !ok {
		return v
	}
	if def, found := p.parameter(name); found && def.Type == TypeDate {
		return t.Format(dateLayout)
	}
	return t.Format(time.RFC3339Nano)
}

// formatText returns v as it replaces a ${name} placeholder.
func formatText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return formatFloat(x)
	case bool:
		return strconv.FormatBool(x)
	case time.Time:
		if x.Equal(x.Truncate(24 * time.Hour)) {
			return x.Format(dateLayout)
		}
		return x.Format(time.RFC3339)
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

func formatFloat(f float64) string {
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// relativePath reports whether s is a non-empty relative path that stays
// inside its directory.
func relativePath(s string) bool {
	if s == "" || strings.HasPrefix(s, "/") || strings.HasPrefix(s, `\`) {
		return false
	}
	for _, part := range strings.FieldsFunc(s, func(r rune) bool { return r == '/' || r == '\\' }) {
		if part == ".." {
			return false
		}
	}
	return true
}
