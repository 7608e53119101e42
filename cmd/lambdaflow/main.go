// Command lambdaflow runs data workflows on request through a FIFO pool of
// slots. `lambdaflow serve` starts the service; the other subcommands are
// a client of its API.
//
// The comments below are the general part of the OpenAPI document, which
// `make openapi` generates with swag from these and the handlers'
// annotations.
//
//	@title						lambdaflow API
//	@version					1.0
//	@description				lambdaflow runs data workflows on request through one FIFO pool of slots. A project is a workflow template; a job is one run of it. Native routes live under /api/v1 and report errors as RFC 9457 problem documents (application/problem+json) with a stable code. The Omniscope-style routes under /{project}/w/ report errors as {errorType, errorMessage}. Timestamps are RFC 3339 in UTC with milliseconds. Durations in requests are Go duration strings such as "30s" or "5m"; durations in responses are integer milliseconds in fields whose names end in Ms. Ids are UUIDv7 strings. Every response carries an X-Request-Id header, which the server log and problem documents repeat; a request may set its own, of at most 64 characters.
//	@BasePath					/
//	@tag.name					projects
//	@tag.description			Workflow templates, their current parameter values and plain executions
//	@tag.name					lambda
//	@tag.description			Parameterised runs of a project in ephemeral instances
//	@tag.name					jobs
//	@tag.description			Job state, blocks, results, outputs and stopping
//	@tag.name					settings
//	@tag.description			Pool limits
//	@tag.name					omniscope
//	@tag.description			Routes compatible with Omniscope workflow clients, at the root
//	@tag.name					health
//	@tag.description			Liveness and readiness probes
//	@securityDefinitions.apikey	BearerAuth
//	@in							header
//	@name						Authorization
//	@description				API token from the server's --tokens-file, sent as "Authorization: Bearer TOKEN". A server started without --tokens-file takes no token.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	if err := newRootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "lambdaflow:", err)
		os.Exit(exitCode(err))
	}
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "lambdaflow",
		Short:         "Run data workflows on request, in parallel, through one FIFO pool",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return withExitCode(exitUsage, err)
	})
	root.AddCommand(newServeCommand())
	root.AddCommand(newClientCommands()...)
	return root
}
