package main

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lambdaflow/lambdaflow/openapi/client"
)

// newClientCommands returns the subcommands that call a running service
// through the generated client.
func newClientCommands() []*cobra.Command {
	return []*cobra.Command{
		newProjectsCommand(), newExecuteCommand(), newInvokeCommand(),
		newJobsCommand(), newJobCommand(), newStopCommand(), newSettingsCommand(),
	}
}

func newProjectsCommand() *cobra.Command {
	o := &clientOptions{}
	cmd := &cobra.Command{
		Use:   "projects",
		Short: "List the projects",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			api, err := o.api(cmd)
			if err != nil {
				return err
			}
			resp, err := api.ListProjectsWithResponse(cmd.Context())
			if err := checkResponse(resp, err, http.StatusOK); err != nil {
				return err
			}
			if o.output == "json" {
				return printJSON(o.stdout, resp.JSON200)
			}
			t := newTable(o.stdout, "NAME", "PARAMETERS", "DESCRIPTION")
			for _, p := range resp.JSON200.Projects {
				var names []string
				if p.Parameters != nil {
					for _, param := range *p.Parameters {
						names = append(names, param.Name+":"+string(param.Type))
					}
				}
				description := ""
				if p.Description != nil {
					description = *p.Description
				}
				t.row(p.Name, strings.Join(names, " "), description)
			}
			return t.flush()
		},
	}
	o.bindFlags(cmd)
	return cmd
}

func newJobsCommand() *cobra.Command {
	o := &clientOptions{}
	var states []string
	var project string
	var limit, offset int
	cmd := &cobra.Command{
		Use:   "jobs",
		Short: "List jobs, newest first",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			api, err := o.api(cmd)
			if err != nil {
				return err
			}
			params := &client.ListJobsParams{Limit: &limit, Offset: &offset}
			if project != "" {
				params.Project = &project
			}
			for _, s := range states {
				filter := append(derefStates(params.State), client.ListJobsParamsState(strings.ToUpper(s)))
				params.State = &filter
			}
			resp, err := api.ListJobsWithResponse(cmd.Context(), params)
			if err := checkResponse(resp, err, http.StatusOK); err != nil {
				return err
			}
			if o.output == "json" {
				return printJSON(o.stdout, resp.JSON200)
			}
			t := newTable(o.stdout, "ID", "PROJECT", "KIND", "STATE", "SUBMITTED", "DURATION")
			for _, job := range resp.JSON200.Jobs {
				duration := ""
				if d, ok := jobDuration(&job); ok {
					duration = d.String()
				}
				t.row(job.Id.String(), job.Project, string(job.Kind), string(job.State),
					job.SubmittedAt.Local().Format(time.DateTime), duration)
			}
			return t.flush()
		},
	}
	o.bindFlags(cmd)
	fs := cmd.Flags()
	fs.StringSliceVar(&states, "state", nil, "keep jobs in this state (QUEUED, BLOCKED, RUNNING, CANCELLING, COMPLETED, FAILED, CANCELLED); repeatable")
	fs.StringVar(&project, "project", "", "keep the jobs of this project")
	fs.IntVar(&limit, "limit", 50, "maximum number of jobs, 1 to 500")
	fs.IntVar(&offset, "offset", 0, "number of jobs to skip")
	return cmd
}

func derefStates(states *[]client.ListJobsParamsState) []client.ListJobsParamsState {
	if states == nil {
		return nil
	}
	return *states
}

func newJobCommand() *cobra.Command {
	o := &clientOptions{}
	var wait bool
	cmd := &cobra.Command{
		Use:   "job JOB_ID",
		Short: "Show a job: state, blocks and result",
		Long: "Show a job: state, blocks and result. With --wait, wait for the job to end first;\n" +
			"the exit code then tells how it ended.",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := o.api(cmd)
			if err != nil {
				return err
			}
			id, err := parseJobID(args[0])
			if err != nil {
				return err
			}
			var job *client.Job
			if wait {
				job, err = waitForJob(cmd.Context(), api, args[0], o.stderr)
				if err != nil {
					return err
				}
			} else {
				resp, err := api.GetJobWithResponse(cmd.Context(), id)
				if err := checkResponse(resp, err, http.StatusOK); err != nil {
					return err
				}
				job = resp.JSON200
			}
			if o.output == "json" {
				err = printJSON(o.stdout, job)
			} else {
				err = printJob(o.stdout, job)
			}
			if err != nil || !wait {
				return err
			}
			return finalStateError(job)
		},
	}
	o.bindFlags(cmd)
	cmd.Flags().BoolVar(&wait, "wait", false, "wait for the job to end, showing its blocks on stderr")
	return cmd
}

func newStopCommand() *cobra.Command {
	o := &clientOptions{}
	var reason string
	cmd := &cobra.Command{
		Use:   "stop JOB_ID",
		Short: "Stop a job",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := o.api(cmd)
			if err != nil {
				return err
			}
			id, err := parseJobID(args[0])
			if err != nil {
				return err
			}
			req := client.StopRequest{}
			if reason != "" {
				req.Reason = &reason
			}
			resp, err := api.StopJobWithResponse(cmd.Context(), id, req)
			if err := checkResponse(resp, err, http.StatusOK); err != nil {
				return err
			}
			if o.output == "json" {
				return printJSON(o.stdout, resp.JSON200)
			}
			fmt.Fprintf(o.stdout, "%s %s\n", resp.JSON200.Id, resp.JSON200.State)
			return nil
		},
	}
	o.bindFlags(cmd)
	cmd.Flags().StringVar(&reason, "reason", "", "why the job is stopped, kept in its stop record")
	return cmd
}

func newSettingsCommand() *cobra.Command {
	o := &clientOptions{}
	var concurrentJobs, queueLimit, clusterJobs int
	cmd := &cobra.Command{
		Use:   "settings",
		Short: "Show the pool settings, or change them",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			api, err := o.api(cmd)
			if err != nil {
				return err
			}
			var settings *client.Settings
			changed := cmd.Flags().Changed
			if changed("concurrent-jobs") || changed("queue-limit") || changed("cluster-concurrent-jobs") {
				update := client.SettingsUpdate{}
				if cmd.Flags().Changed("concurrent-jobs") {
					update.ConcurrentJobs = &concurrentJobs
				}
				if cmd.Flags().Changed("queue-limit") {
					update.QueueLimit = &queueLimit
				}
				if changed("cluster-concurrent-jobs") {
					update.ClusterConcurrentJobs = &clusterJobs
				}
				resp, err := api.UpdateSettingsWithResponse(cmd.Context(), update)
				if err := checkResponse(resp, err, http.StatusOK); err != nil {
					return err
				}
				settings = resp.JSON200
			} else {
				resp, err := api.GetSettingsWithResponse(cmd.Context())
				if err := checkResponse(resp, err, http.StatusOK); err != nil {
					return err
				}
				settings = resp.JSON200
			}
			if o.output == "json" {
				return printJSON(o.stdout, settings)
			}
			t := newTable(o.stdout, "SETTING", "VALUE")
			t.row("concurrentJobs", fmt.Sprint(settings.ConcurrentJobs))
			t.row("requestedConcurrentJobs", fmt.Sprint(settings.RequestedConcurrentJobs))
			t.row("maxConcurrentJobs", fmt.Sprint(settings.MaxConcurrentJobs))
			t.row("queueLimit", fmt.Sprint(settings.QueueLimit))
			clusterLimit := "none"
			if settings.ClusterConcurrentJobs != nil {
				clusterLimit = fmt.Sprint(*settings.ClusterConcurrentJobs)
			}
			t.row("clusterConcurrentJobs", clusterLimit)
			return t.flush()
		},
	}
	o.bindFlags(cmd)
	cmd.Flags().IntVar(&concurrentJobs, "concurrent-jobs", 0, "set the requested slot limit (capped at the server's usable cores)")
	cmd.Flags().IntVar(&queueLimit, "queue-limit", 0, "set the maximum number of waiting jobs")
	cmd.Flags().IntVar(&clusterJobs, "cluster-concurrent-jobs", 0,
		"set the cap on the running jobs of all nodes of a cluster (PATCH /api/v1/settings with null removes it)")
	return cmd
}
