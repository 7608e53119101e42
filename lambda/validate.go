package lambda

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	playground "github.com/go-playground/validator/v10"

	"github.com/lambdaflow/lambdaflow/internal/httpapi"
)

// requestValidator checks the `validate` tags of request structs. A
// playground.Validate is safe for concurrent use.
var requestValidator = newRequestValidator()

func newRequestValidator() *playground.Validate {
	v := playground.New()
	// Errors name the JSON field, not the Go one.
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			return ""
		}
		return name
	})
	return v
}

// checkStruct validates the `validate` tags of req and returns one field
// error per broken rule.
func checkStruct(req any) []httpapi.FieldError {
	err := requestValidator.Struct(req)
	var failures playground.ValidationErrors
	if !errors.As(err, &failures) {
		if err != nil {
			return []httpapi.FieldError{{Field: "(body)", Message: err.Error()}}
		}
		return nil
	}
	errs := make([]httpapi.FieldError, len(failures))
	for i, f := range failures {
		errs[i] = httpapi.FieldError{Field: fieldPath(f.Namespace()), Message: ruleMessage(f)}
	}
	return errs
}

// fieldPath drops the struct name that starts a validator namespace, such
// as "InvokeRequest.idempotencyKey".
func fieldPath(namespace string) string {
	_, rest, found := strings.Cut(namespace, ".")
	if !found {
		return namespace
	}
	return rest
}

func ruleMessage(f playground.FieldError) string {
	switch f.Tag() {
	case "max":
		return fmt.Sprintf("must be at most %s characters long", f.Param())
	case "printascii":
		return "must hold printable ASCII characters only"
	}
	return fmt.Sprintf("breaks the rule %s %s", f.Tag(), f.Param())
}
