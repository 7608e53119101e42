package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"strings"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/lambdaflow/lambdaflow/openapi/client"
)

// Exit codes of the client subcommands, which scripts may rely on.
const (
	exitOK        = 0 // success; with --wait, the job COMPLETED
	exitError     = 1 // any other error, such as serve failing to start
	exitUsage     = 2 // invalid arguments or flags
	exitFailed    = 3 // with --wait, the job ended FAILED
	exitCancelled = 4 // with --wait, the job ended CANCELLED
	exitRejected  = 5 // the server rejected the request with a 4xx
	exitServer    = 6 // the server failed (5xx), could not be reached or sent an unexpected response
)

// Default and environment variables of the client flags.
const (
	defaultServer = "http://127.0.0.1:8080"
	envServer     = "LAMBDAFLOW_SERVER"
	envToken      = "LAMBDAFLOW_TOKEN"
)

// exitCodeError carries the exit code of a failed command.
type exitCodeError struct {
	code int
	err  error
}

func (e *exitCodeError) Error() string { return e.err.Error() }
func (e *exitCodeError) Unwrap() error { return e.err }

// withExitCode returns err with the exit code code.
func withExitCode(code int, err error) error {
	return &exitCodeError{code: code, err: err}
}

// usageError returns an error that exits with exitUsage.
func usageError(format string, args ...any) error {
	return withExitCode(exitUsage, fmt.Errorf(format, args...))
}

// exitCode returns the process exit code for err, an error returned by
// the root command.
func exitCode(err error) int {
	var coded *exitCodeError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &coded):
		return coded.code
	case strings.HasPrefix(err.Error(), "unknown command"), strings.HasPrefix(err.Error(), "unknown flag"):
		return exitUsage
	default:
		return exitError
	}
}

// clientOptions holds the flags every client subcommand takes.
type clientOptions struct {
	server string
	token  string
	output string
	stdout io.Writer
	stderr io.Writer
}

func (o *clientOptions) bindFlags(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&o.server, "server", "", "URL of the lambdaflow service (env "+envServer+", default "+defaultServer+")")
	fs.StringVar(&o.token, "token", "", "API token, sent as a bearer token (env "+envToken+")")
	fs.StringVarP(&o.output, "output", "o", "table", "output format: table or json")
}

// api returns the generated client for the options' server and token.
func (o *clientOptions) api(cmd *cobra.Command) (*client.ClientWithResponses, error) {
	o.stdout, o.stderr = cmd.OutOrStdout(), cmd.ErrOrStderr()
	if o.output != "table" && o.output != "json" {
		return nil, usageError("--output must be table or json, got %q", o.output)
	}
	server := firstSet(o.server, os.Getenv(envServer), defaultServer)
	if u, err := url.Parse(server); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageError("--server must be an http:// or https:// URL such as %s, got %q", defaultServer, server)
	}
	token := firstSet(o.token, os.Getenv(envToken))
	return client.NewClientWithResponses(server, client.WithRequestEditorFn(
		func(_ context.Context, req *http.Request) error {
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			return nil
		}))
}

func firstSet(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

// response is the method set that every generated response type has.
type response interface {
	StatusCode() int
}

// checkResponse returns nil when the request reached the server and got
// one of the wanted statuses, and otherwise an error with the exit code
// for it: exitServer for a transport error (err) or a 5xx, exitRejected
// for a 4xx. The server's problem document, when there is one, is the
// message.
func checkResponse(resp response, err error, want ...int) error {
	if err != nil {
		return withExitCode(exitServer, err)
	}
	status := resp.StatusCode()
	body := responseBody(resp)
	for _, w := range want {
		if status == w {
			return nil
		}
	}
	message := describeError(status, body)
	if status >= 400 && status < 500 {
		return withExitCode(exitRejected, errors.New(message))
	}
	return withExitCode(exitServer, errors.New(message))
}

// responseBody returns the Body field that every generated response
// struct has, the response body as read.
func responseBody(resp response) []byte {
	v := reflect.ValueOf(resp)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return nil
	}
	field := v.Elem().FieldByName("Body")
	if !field.IsValid() || field.Kind() != reflect.Slice {
		return nil
	}
	return field.Bytes()
}

// describeError turns an error response into one line: the status, the
// problem code and detail, and each invalid field.
func describeError(status int, body []byte) string {
	var p client.Problem
	if json.Unmarshal(body, &p) != nil || p.Code == "" {
		text := strings.TrimSpace(string(body))
		if len(text) > 200 {
			text = text[:200] + "..."
		}
		return fmt.Sprintf("the server answered %d %s: %s", status, http.StatusText(status), text)
	}
	message := fmt.Sprintf("%d %s", status, p.Code)
	if p.Detail != nil {
		message += ": " + *p.Detail
	}
	if p.Errors != nil {
		for _, fe := range *p.Errors {
			message += fmt.Sprintf("; %s: %s", fe.Field, fe.Message)
		}
	}
	return message
}

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// exactArgs is cobra.ExactArgs with a usage error's exit code.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.ExactArgs(n)(cmd, args); err != nil {
			return withExitCode(exitUsage, err)
		}
		return nil
	}
}

// noArgs is cobra.NoArgs with a usage error's exit code.
func noArgs(cmd *cobra.Command, args []string) error {
	if err := cobra.NoArgs(cmd, args); err != nil {
		return withExitCode(exitUsage, err)
	}
	return nil
}

// parseJobID reads a job id argument.
func parseJobID(text string) (uuid.UUID, error) {
	id, err := uuid.Parse(text)
	if err != nil {
		return uuid.UUID{}, usageError("job id %q is not a UUID", text)
	}
	return id, nil
}
