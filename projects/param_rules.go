package projects

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	playground "github.com/go-playground/validator/v10"
)

// Validator tags of the parameter rules that the validator does not
// provide itself.
const (
	// tagChoice checks a choice whose options cannot be written as the
	// parameter of a oneof tag, such as options with commas or quotes.
	tagChoice = "choice"
	// tagPattern checks Parameter.Pattern, which may hold commas and
	// pipes that a tag parameter cannot hold.
	tagPattern = "pattern"
	// tagRelativePath checks that a file value stays inside its
	// directory.
	tagRelativePath = "relpath"
)

// simpleOption matches the choice options that a oneof tag can list as
// they are: no spaces, commas, pipes, quotes or the validator's escapes.
var simpleOption = regexp.MustCompile(`^[A-Za-z0-9_.:/@+-]+$`)

// paramValidator checks converted parameter values against the rules
// derived from their declarations, with go-playground/validator. A
// playground.Validate is safe for concurrent use.
var paramValidator = newParamValidator()

// parameterKey is the context key under which the rules that need the
// whole declaration (tagChoice, tagPattern) find it.
type parameterKey struct{}

// patterns caches compiled patterns by their text. Validation rejects a
// definition whose pattern does not compile, so the cache only grows with
// the patterns of stored projects.
var patterns sync.Map

func newParamValidator() *playground.Validate {
	v := playground.New()
	must := func(err error) {
		if err != nil {
			panic(err) // only an invalid tag name fails, which is a bug
		}
	}
	must(v.RegisterValidationCtx(tagChoice, func(ctx context.Context, fl playground.FieldLevel) bool {
		def, _ := ctx.Value(parameterKey{}).(*Parameter)
		return def != nil && slices.Contains(def.Options, fl.Field().String())
	}))
	must(v.RegisterValidationCtx(tagPattern, func(ctx context.Context, fl playground.FieldLevel) bool {
		def, _ := ctx.Value(parameterKey{}).(*Parameter)
		if def == nil {
			return false
		}
		re, err := compilePattern(def.Pattern)
		// A pattern that does not compile was rejected when the project
		// was saved, so it constrains nothing here.
		return err != nil || re.MatchString(fl.Field().String())
	}))
	must(v.RegisterValidation(tagRelativePath, func(fl playground.FieldLevel) bool {
		return relativePath(fl.Field().String())
	}))
	return v
}

func compilePattern(pattern string) (*regexp.Regexp, error) {
	if re, ok := patterns.Load(pattern); ok {
		return re.(*regexp.Regexp), nil
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, err
	}
	patterns.Store(pattern, re)
	return re, nil
}

// rules returns the validator tags that a value of def must pass, in the
// order they are checked: range or length, options, path, pattern.
func (def *Parameter) rules() string {
	var tags []string
	switch def.Type {
	case TypeNumber, TypeInteger:
		if def.Min != nil {
			tags = append(tags, "min="+formatFloat(*def.Min))
		}
		if def.Max != nil {
			tags = append(tags, "max="+formatFloat(*def.Max))
		}
		return strings.Join(tags, ",")
	}
	// On strings, the validator's min and max count characters (runes).
	if def.MinLength != nil {
		tags = append(tags, fmt.Sprintf("min=%d", *def.MinLength))
	}
	if def.MaxLength != nil {
		tags = append(tags, fmt.Sprintf("max=%d", *def.MaxLength))
	}
	switch def.Type {
	case TypeChoice:
		tags = append(tags, def.choiceRule())
	case TypeFile:
		tags = append(tags, tagRelativePath)
	}
	if def.Pattern != "" {
		tags = append(tags, tagPattern)
	}
	return strings.Join(tags, ",")
}

// choiceRule returns a oneof tag listing the options, or tagChoice when an
// option cannot be written inside a tag.
func (def *Parameter) choiceRule() string {
	if len(def.Options) == 0 {
		return tagChoice
	}
	for _, option := range def.Options {
		if !simpleOption.MatchString(option) {
			return tagChoice
		}
	}
	return "oneof=" + strings.Join(def.Options, " ")
}

// check validates a converted value (float64, int64, string, bool or
// time.Time) against def's rules and returns the first rule it breaks as
// an error saying what was expected.
func (def *Parameter) check(v any) error {
	value := v
	switch x := v.(type) {
	case int64:
		// The bounds are float64 and may have a fraction, which the
		// validator rejects as the parameter of min on an integer.
		value = float64(x)
	case float64, string:
	default:
		return nil // booleans, dates and date-times have no constraints
	}
	tags := def.rules()
	if tags == "" {
		return nil
	}
	ctx := context.WithValue(context.Background(), parameterKey{}, def)
	err := paramValidator.VarCtx(ctx, value, tags)
	var failures playground.ValidationErrors
	if !errors.As(err, &failures) || len(failures) == 0 {
		return err
	}
	return def.ruleError(failures[0].Tag(), failures[0].Param(), v)
}

// ruleError describes the broken rule tag with its parameter for value.
func (def *Parameter) ruleError(tag, param string, value any) error {
	s, isString := value.(string)
	switch {
	case tag == "min" && isString:
		return fmt.Errorf("must be at least %s characters long, got %d", param, utf8.RuneCountInString(s))
	case tag == "max" && isString:
		return fmt.Errorf("must be at most %s characters long, got %d", param, utf8.RuneCountInString(s))
	case tag == "min":
		return fmt.Errorf("must be at least %s, got %s", param, formatText(value))
	case tag == "max":
		return fmt.Errorf("must be at most %s, got %s", param, formatText(value))
	case tag == "oneof" || tag == tagChoice:
		return fmt.Errorf("must be one of %s, got %s", strings.Join(def.Options, ", "), quote(s))
	case tag == tagRelativePath:
		return fmt.Errorf("must be a relative path inside the files directory, got %s", quote(s))
	case tag == tagPattern:
		return fmt.Errorf("must match the pattern %s, got %s", def.Pattern, quote(s))
	}
	return fmt.Errorf("breaks the rule %s=%s, got %v", tag, param, value)
}
