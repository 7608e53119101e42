package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lambdaflow/lambdaflow/openapi/client"
)

// pollInterval is how often --wait reads the job.
const pollInterval = 200 * time.Millisecond

// runOptions are the flags of execute and invoke.
type runOptions struct {
	clientOptions
	blocks  []string
	timeout string
	wait    bool
}

func (o *runOptions) bindFlags(cmd *cobra.Command) {
	o.clientOptions.bindFlags(cmd)
	fs := cmd.Flags()
	fs.StringSliceVar(&o.blocks, "block", nil, "run only this block and the blocks it needs; repeatable")
	fs.StringVar(&o.timeout, "timeout", "", "limit of the job's run time, a Go duration such as 30s or 5m")
	fs.BoolVar(&o.wait, "wait", false, "wait for the job to end, showing its blocks on stderr, and print its result")
}

func (o *runOptions) blockList() *[]string {
	if len(o.blocks) == 0 {
		return nil
	}
	return &o.blocks
}

func newExecuteCommand() *cobra.Command {
	o := &runOptions{}
	var cancelExisting bool
	cmd := &cobra.Command{
		Use:   "execute PROJECT",
		Short: "Run a project with its current parameter values",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := o.api(cmd)
			if err != nil {
				return err
			}
			req := client.ExecuteRequest{Blocks: o.blockList(), CancelExisting: &cancelExisting}
			if o.timeout != "" {
				req.Timeout = &o.timeout
			}
			resp, err := api.ExecuteProjectWithResponse(cmd.Context(), args[0], req)
			if err := checkResponse(resp, err, http.StatusAccepted); err != nil {
				return err
			}
			return o.finish(cmd.Context(), api, resp.JSON202)
		},
	}
	o.bindFlags(cmd)
	cmd.Flags().BoolVar(&cancelExisting, "cancel-existing", false, "stop the project's running or waiting jobs first")
	return cmd
}

func newInvokeCommand() *cobra.Command {
	o := &runOptions{}
	var params []string
	var keep bool
	cmd := &cobra.Command{
		Use:   "invoke PROJECT",
		Short: "Run a parameterised instance of a project (lambda)",
		Long: "Run a parameterised instance of a project. Each --param name=value sets one parameter;\n" +
			"the server converts the text to the parameter's type. Parameters left out take the\n" +
			"project's current value, then their default.",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := o.api(cmd)
			if err != nil {
				return err
			}
			req, err := o.invokeRequest(params, keep)
			if err != nil {
				return err
			}
			resp, err := api.InvokeLambdaWithResponse(cmd.Context(), args[0], req)
			if err := checkResponse(resp, err, http.StatusAccepted); err != nil {
				return err
			}
			return o.finish(cmd.Context(), api, resp.JSON202)
		},
	}
	o.bindFlags(cmd)
	cmd.Flags().StringArrayVar(&params, "param", nil, "parameter value as name=value; repeatable")
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the instance readable after its job ended (deleteExecutionOnFinish false)")
	return cmd
}

func (o *runOptions) invokeRequest(params []string, keep bool) (client.InvokeRequest, error) {
	values := map[string]*client.AnyValue{}
	for _, p := range params {
		name, value, found := strings.Cut(p, "=")
		if !found || name == "" {
			return client.InvokeRequest{}, usageError("--param %q must have the form name=value", p)
		}
		if _, dup := values[name]; dup {
			return client.InvokeRequest{}, usageError("--param %s is given more than once", name)
		}
		v := client.AnyValue(value)
		values[name] = &v
	}
	req := client.InvokeRequest{Parameters: &values, Blocks: o.blockList()}
	if o.timeout != "" {
		req.Timeout = &o.timeout
	}
	if keep {
		deleteOnFinish := false
		req.DeleteExecutionOnFinish = &deleteOnFinish
	}
	return req, nil
}

// finish prints the queued job, or with --wait waits for its end, prints
// its result and returns the exit code of its final state.
func (o *runOptions) finish(ctx context.Context, api *client.ClientWithResponses, job *client.Job) error {
	if !o.wait {
		if o.output == "json" {
			return printJSON(o.stdout, job)
		}
		fmt.Fprintf(o.stdout, "%s %s\n", job.Id, job.State)
		return nil
	}
	final, err := waitForJob(ctx, api, job.Id.String(), o.stderr)
	if err != nil {
		return err
	}
	if o.output == "json" {
		err = printJSON(o.stdout, final)
	} else if final.Result != nil && final.State == client.StateCOMPLETED {
		err = printRows(o.stdout, final.Result.Rows)
	}
	if err != nil {
		return err
	}
	return finalStateError(final)
}

// finalStateError returns nil for a COMPLETED job and an error with the
// exit code of a FAILED or CANCELLED one.
func finalStateError(job *client.Job) error {
	switch job.State {
	case client.StateFAILED:
		message := "job " + job.Id.String() + " failed"
		if job.Error != nil {
			message += ": " + job.Error.Message
		}
		return withExitCode(exitFailed, fmt.Errorf("%s", message))
	case client.StateCANCELLED:
		return withExitCode(exitCancelled, fmt.Errorf("job %s was cancelled", job.Id))
	}
	return nil
}

// waitForJob reads the job every pollInterval until it is final, and
// writes each change of its state and of its blocks' states to progress.
func waitForJob(ctx context.Context, api *client.ClientWithResponses, id string, progress io.Writer) (*client.Job, error) {
	jobID, err := parseJobID(id)
	if err != nil {
		return nil, err
	}
	reported := map[string]string{}
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		resp, err := api.GetJobWithResponse(ctx, jobID)
		if err := checkResponse(resp, err, http.StatusOK); err != nil {
			return nil, err
		}
		job := resp.JSON200
		reportProgress(progress, job, reported)
		switch job.State {
		case client.StateCOMPLETED, client.StateFAILED, client.StateCANCELLED:
			return job, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
	}
}

// reportProgress writes the job's state and each block's state once per
// change; reported holds what was written before.
func reportProgress(w io.Writer, job *client.Job, reported map[string]string) {
	state := string(job.State)
	if job.WaitingFor != nil && job.Position != nil {
		state += fmt.Sprintf(" (position %d, waiting for %s)", *job.Position, job.WaitingFor.Reason)
	}
	if reported[""] != state {
		reported[""] = state
		fmt.Fprintf(w, "job %s %s\n", job.Id, state)
	}
	for _, b := range job.Blocks {
		line := string(b.State)
		if b.DurationMs != nil {
			line += " in " + formatMs(b.DurationMs)
		}
		if b.RowsOut != nil {
			line += fmt.Sprintf(", %d rows", *b.RowsOut)
		}
		if b.Error != nil {
			line += ": " + *b.Error
		}
		if reported["block "+b.Name] != line {
			reported["block "+b.Name] = line
			fmt.Fprintf(w, "  block %-12s %s\n", b.Name, line)
		}
	}
}
