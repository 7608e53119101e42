package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode"

	"github.com/gin-gonic/gin"
)

// DefaultMaxBodyBytes bounds a request body when the caller gives no limit.
const DefaultMaxBodyBytes = 4 << 20

// DecodeJSON reads c's body as one JSON value into v, rejecting unknown
// fields, trailing data and bodies over maxBytes (0 means
// DefaultMaxBodyBytes) or over the limit of LimitBody, whichever is
// smaller. An empty body leaves v unchanged when allowEmpty
// is true. Every failure is a 4xx problem naming the field at fault.
func DecodeJSON(c *gin.Context, v any, maxBytes int64, allowEmpty bool) error {
	return decodeBody(c, v, maxBytes, allowEmpty, true)
}

// DecodeJSONAllowUnknown is DecodeJSON for clients written against
// another API, which may send fields this one does not know: it ignores
// unknown fields instead of rejecting them.
func DecodeJSONAllowUnknown(c *gin.Context, v any, maxBytes int64, allowEmpty bool) error {
	return decodeBody(c, v, maxBytes, allowEmpty, false)
}

func decodeBody(c *gin.Context, v any, maxBytes int64, allowEmpty, strict bool) error {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBodyBytes
	}
	if limit := BodyLimit(c); limit > 0 && limit < maxBytes {
		maxBytes = limit
	}
	ct := c.ContentType()
	if ct != "" && ct != "application/json" && !strings.HasSuffix(ct, "+json") {
		return NewProblem(http.StatusUnsupportedMediaType, CodeUnsupportedMediaType,
			fmt.Sprintf("content type %q is not supported; send application/json", ct))
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return TooLarge(maxBytes)
		}
		return BadRequest("", fmt.Sprintf("reading request body: %v", err))
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if allowEmpty {
			return nil
		}
		return BadRequest("", "request body is empty; send a JSON object")
	}
	return Unmarshal(body, v, strict)
}

// Unmarshal decodes body as one JSON value into v, with numbers as
// json.Number, and returns a 400 problem naming the field at fault.
// When strict is true, unknown fields are rejected.
func Unmarshal(body []byte, v any, strict bool) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if strict {
		dec.DisallowUnknownFields()
	}
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return jsonProblem(err)
	}
	if dec.More() {
		return BadRequest("", "request body holds more than one JSON value")
	}
	return nil
}

// jsonProblem turns an encoding/json error into a 400 naming the field.
func jsonProblem(err error) *Problem {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		field := jsonPath(typeErr.Field)
		if field == "" {
			field = "(body)"
		}
		return BadRequest(field, fmt.Sprintf("%s must be %s, not JSON %s", field, jsonKind(typeErr.Type.Kind().String()), typeErr.Value))
	case errors.As(err, &syntaxErr):
		return BadRequest("", fmt.Sprintf("request body is not valid JSON at byte %d: %v", syntaxErr.Offset, err))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return BadRequest(field, fmt.Sprintf("unknown field %q", field))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return BadRequest("", "request body is truncated JSON")
	default:
		return BadRequest("", fmt.Sprintf("request body is not valid JSON: %v", err))
	}
}

// jsonPath drops the names of embedded Go structs from an
// UnmarshalTypeError path, such as "Project.name", leaving the JSON path.
// Embedded struct names start with an upper-case letter while the API's
// JSON field names do not.
func jsonPath(field string) string {
	parts := strings.Split(field, ".")
	kept := parts[:0]
	for i, part := range parts {
		if i < len(parts)-1 && part != "" && unicode.IsUpper(rune(part[0])) {
			continue
		}
		kept = append(kept, part)
	}
	return strings.Join(kept, ".")
}

func jsonKind(goKind string) string {
	switch goKind {
	case "slice", "array":
		return "an array"
	case "map", "struct":
		return "an object"
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "int", "int64", "int32", "uint", "uint64", "float64", "float32":
		return "a number"
	default:
		return "a " + goKind
	}
}
