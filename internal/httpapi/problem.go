// Package httpapi holds the HTTP plumbing shared by the domain packages:
// RFC 9457 problem documents, the one place that turns handler errors into
// responses, and request ids.
package httpapi

import (
	"errors"
	"fmt"
	"net/http"
)

// Stable problem codes. Clients branch on these, never on titles.
const (
	CodeValidationFailed       = "VALIDATION_FAILED"
	CodeBadRequest             = "BAD_REQUEST"
	CodeProjectNotFound        = "PROJECT_NOT_FOUND"
	CodeProjectExists          = "PROJECT_EXISTS"
	CodeJobNotFound            = "JOB_NOT_FOUND"
	CodeOutputNotFound         = "OUTPUT_NOT_FOUND"
	CodeJobFinished            = "JOB_FINISHED"
	CodeQueueFull              = "QUEUE_FULL"
	CodePreconditionFailed     = "PRECONDITION_FAILED"
	CodeWorkflowAlreadyRunning = "WORKFLOW_ALREADY_RUNNING"
	CodePayloadTooLarge        = "PAYLOAD_TOO_LARGE"
	CodeUnsupportedMediaType   = "UNSUPPORTED_MEDIA_TYPE"
	CodeNotFound               = "NOT_FOUND"
	CodeMethodNotAllowed       = "METHOD_NOT_ALLOWED"
	CodeShuttingDown           = "SHUTTING_DOWN"
	CodeDatabaseUnavailable    = "DATABASE_UNAVAILABLE"
	CodeUnauthorized           = "UNAUTHORIZED"
	CodeForbidden              = "FORBIDDEN"
	CodeInternal               = "INTERNAL"
)

// FieldError names one invalid field of a request and what is wrong.
type FieldError struct {
	// Field is the path of the field, such as blocks[2].options.where.
	Field string `json:"field"`
	// Message describes what is wrong and what was expected.
	Message string `json:"message"`
}

// Problem is an RFC 9457 problem document. It is also an error, so a
// handler can return it.
type Problem struct {
	// Type is a URI reference naming the problem type; "about:blank"
	// when the code is enough.
	Type string `json:"type"`
	// Title is a short summary of the problem type.
	Title string `json:"title"`
	// Status repeats the HTTP status code.
	Status int `json:"status"`
	// Detail explains this occurrence.
	Detail string `json:"detail,omitempty"`
	// Instance is the request path.
	Instance string `json:"instance,omitempty"`
	// Code is the stable machine-readable code.
	Code string `json:"code"`
	// RequestID matches the request_id of the server's log lines.
	RequestID string `json:"requestId,omitempty"`
	// Errors lists every invalid field when Code is VALIDATION_FAILED.
	Errors []FieldError `json:"errors,omitempty"`
	// QueueDepth is the number of waiting jobs when Code is QUEUE_FULL.
	QueueDepth *int `json:"queueDepth,omitempty"`

	// RetryAfter, when positive, is sent as the Retry-After header in
	// seconds.
	RetryAfter int `json:"-"`
}

// Error returns the problem's code and detail.
func (p *Problem) Error() string {
	return fmt.Sprintf("%s: %s", p.Code, p.Detail)
}

// NewProblem returns a problem with the given status, code and detail.
func NewProblem(status int, code, detail string) *Problem {
	return &Problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Code: code, Detail: detail}
}

// MaxFieldErrors is the most field errors a problem lists; a request with
// more problems gets the first ones and a last entry counting the rest.
const MaxFieldErrors = 100

// Validation returns a 422 VALIDATION_FAILED problem listing errs, at
// most MaxFieldErrors of them.
func Validation(detail string, errs []FieldError) *Problem {
	p := NewProblem(http.StatusUnprocessableEntity, CodeValidationFailed, detail)
	if len(errs) > MaxFieldErrors {
		rest := len(errs) - MaxFieldErrors
		errs = append(errs[:MaxFieldErrors:MaxFieldErrors], FieldError{Field: "(more)",
			Message: fmt.Sprintf("%d more problems are not listed; fix these and send the request again", rest)})
	}
	p.Errors = errs
	return p
}

// BadRequest returns a 400 problem for a body that cannot be read, with
// the field at fault when one is known.
func BadRequest(field, message string) *Problem {
	p := NewProblem(http.StatusBadRequest, CodeBadRequest, message)
	if field != "" {
		p.Errors = []FieldError{{Field: field, Message: message}}
	}
	return p
}

// NotFound returns a 404 problem with the given code.
func NotFound(code, detail string) *Problem {
	return NewProblem(http.StatusNotFound, code, detail)
}

// AsProblem returns err as a problem: the problem itself when err wraps
// one, else a 500 that hides err's text from the client.
func AsProblem(err error) *Problem {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	return NewProblem(http.StatusInternalServerError, CodeInternal, "internal error; the server log has details under this request id")
}
