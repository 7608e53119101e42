package pool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/lambdaflow/lambdaflow/internal/auth"
	"github.com/lambdaflow/lambdaflow/internal/httpapi"
)

// Maximum lengths of the fields of a stop request, in characters.
const (
	maxStopByLength     = 200
	maxStopReasonLength = 1000
)

// JobList is one page of jobs, newest first.
type JobList struct {
	Jobs []*Job `json:"jobs"`
	// Total counts all jobs that match the filter.
	Total int `json:"total"`
	// Limit and Offset repeat the page that was returned.
	Limit  int `json:"limit"`
	Offset int `json:"offset"`
}

// StopRequest is the optional body of POST /jobs/{job}/stop.
type StopRequest struct {
	// Reason explains why the job is stopped, at most 1000 characters.
	Reason string `json:"reason,omitempty" maxLength:"1000" example:"not needed any more"`
	// By names who stops the job, at most 200 characters. Empty means the
	// client's IP address. When the service uses API tokens, By is
	// ignored and the record names the token's role and id, such as
	// "runner:1a2b3c4d".
	By string `json:"by,omitempty" maxLength:"200" example:"nightly-report"`
}

// Register adds the job and settings endpoints to rg, the /api/v1 group.
func (p *Pool) Register(rg *gin.RouterGroup) {
	handlers{svc: p, outputRoot: p.cfg.OutputRoot}.register(rg)
}

// jobService is the job pool behind the job and settings endpoints: a
// *Pool or a *Cluster.
type jobService interface {
	Jobs(ctx context.Context, filter JobFilter) ([]*Job, int, error)
	Job(ctx context.Context, id string) (*Job, error)
	StopJob(ctx context.Context, id, by, reason string) (*Job, error)
	Settings() Settings
	UpdateSettings(ctx context.Context, update SettingsUpdate) (Settings, error)
}

// handlers serves the job and settings endpoints of a jobService whose
// jobs write their outputs under outputRoot.
type handlers struct {
	svc        jobService
	outputRoot string
}

func (h handlers) register(rg *gin.RouterGroup) {
	rg.GET("/jobs", httpapi.Handle(h.listJobs))
	rg.GET("/jobs/:job", httpapi.Handle(h.getJob))
	rg.POST("/jobs/:job/stop", httpapi.Handle(h.stopJob))
	rg.GET("/jobs/:job/definition", httpapi.Handle(h.getDefinition))
	rg.GET("/jobs/:job/outputs/*file", httpapi.Handle(h.getOutput))
	rg.GET("/settings", httpapi.Handle(h.getSettings))
	rg.PATCH("/settings", httpapi.Handle(h.patchSettings))
}

// SubmitProblem maps an error of Pool.Submit to the problem document that
// a submitting handler returns: a *QueueFullError becomes 429 QUEUE_FULL
// with Retry-After and queueDepth, and ErrClosed becomes 503
// SHUTTING_DOWN. Other errors are returned unchanged, and so become a 500.
func SubmitProblem(err error) error {
	var full *QueueFullError
	switch {
	case errors.As(err, &full):
		problem := httpapi.NewProblem(http.StatusTooManyRequests, httpapi.CodeQueueFull,
			fmt.Sprintf("the queue is full: %d jobs wait and the limit is %d; retry later", full.Depth, full.Limit))
		depth := full.Depth
		problem.QueueDepth = &depth
		problem.RetryAfter = max(int((full.RetryAfter+time.Second-1)/time.Second), 1)
		return problem
	case errors.Is(err, ErrClosed):
		return httpapi.NewProblem(http.StatusServiceUnavailable, httpapi.CodeShuttingDown,
			"the server is shutting down and accepts no new jobs; retry once it is back")
	default:
		return err
	}
}

// jobProblem maps an error of a job lookup or stop to a problem document.
func jobProblem(err error, id string) error {
	switch {
	case errors.Is(err, ErrJobNotFound):
		return httpapi.NotFound(httpapi.CodeJobNotFound, fmt.Sprintf("job %q not found", id))
	case errors.Is(err, ErrJobFinished):
		return httpapi.NewProblem(http.StatusConflict, httpapi.CodeJobFinished,
			fmt.Sprintf("job %s has already finished, so it cannot be stopped", id))
	default:
		return err
	}
}

// listJobs lists jobs.
//
//	@Summary		List jobs
//	@ID				listJobs
//	@Description	Lists jobs newest first, filtered by state and project, one page at a time.
//	@Tags			jobs
//	@Produce		json
//	@Param			state	query		[]string	false	"Keep the jobs in these states. Repeat the parameter or separate states with commas"	collectionFormat(multi)	Enums(QUEUED,BLOCKED,RUNNING,CANCELLING,COMPLETED,FAILED,CANCELLED)
//	@Param			project	query		string		false	"Keep the jobs of this project"
//	@Param			limit	query		int			false	"Maximum number of jobs returned, 1 to 500"	default(50)	minimum(1)	maximum(500)
//	@Param			offset	query		int			false	"Number of jobs to skip"					default(0)	minimum(0)
//	@Success		200		{object}	JobList
//	@Failure		422		{object}	httpapi.Problem	"An invalid query parameter"
//	@Security		BearerAuth
//	@Router			/api/v1/jobs [get]
func (h handlers) listJobs(c *gin.Context) error {
	filter, err := parseJobQuery(c)
	if err != nil {
		return err
	}
	jobs, total, err := h.svc.Jobs(c.Request.Context(), filter)
	if err != nil {
		return err
	}
	if jobs == nil {
		jobs = []*Job{}
	}
	c.JSON(http.StatusOK, JobList{Jobs: jobs, Total: total, Limit: filter.Limit, Offset: filter.Offset})
	return nil
}

// parseJobQuery reads the query of GET /jobs into a filter, or returns a
// 422 problem naming every invalid parameter.
func parseJobQuery(c *gin.Context) (JobFilter, error) {
	filter := JobFilter{Project: c.Query("project"), Limit: DefaultListLimit}
	var errs []httpapi.FieldError
	for _, value := range c.QueryArray("state") {
		for _, name := range strings.Split(value, ",") {
			state := State(strings.ToUpper(strings.TrimSpace(name)))
			if !state.valid() {
				errs = append(errs, httpapi.FieldError{Field: "state", Message: fmt.Sprintf(
					"state %q is not one of QUEUED, BLOCKED, RUNNING, CANCELLING, COMPLETED, FAILED or CANCELLED", name)})
				continue
			}
			filter.States = append(filter.States, state)
		}
	}
	if value, ok := c.GetQuery("limit"); ok {
		n, err := strconv.Atoi(value)
		if err != nil || n < 1 || n > MaxListLimit {
			errs = append(errs, httpapi.FieldError{Field: "limit", Message: fmt.Sprintf("limit must be an integer from 1 to %d, not %q", MaxListLimit, value)})
		}
		filter.Limit = n
	}
	if value, ok := c.GetQuery("offset"); ok {
		n, err := strconv.Atoi(value)
		if err != nil || n < 0 {
			errs = append(errs, httpapi.FieldError{Field: "offset", Message: fmt.Sprintf("offset must be an integer of 0 or more, not %q", value)})
		}
		filter.Offset = n
	}
	if len(errs) > 0 {
		return JobFilter{}, httpapi.Validation("invalid query parameters", errs)
	}
	return filter, nil
}

// JobDefinition is the snapshot a job runs: the project definition and
// the parameter values as they were when the job was submitted.
type JobDefinition struct {
	ID         string         `json:"id" format:"uuid"`
	Project    string         `json:"project"`
	Definition map[string]any `json:"definition"`
	Parameters map[string]any `json:"parameters"`
	// Blocks lists the blocks requested with the job, else null (all).
	Blocks []string `json:"blocks" extensions:"x-nullable"`
}

// getDefinition godoc
//
//	@Summary		Get the definition a job runs
//	@ID				getJobDefinition
//	@Description	Returns the snapshot of the project definition and the parameters the job was submitted with, which later changes to the project do not affect.
//	@Tags			jobs
//	@Produce		json
//	@Param			job	path		string	true	"Job id (UUID)"	format(uuid)
//	@Success		200	{object}	JobDefinition
//	@Failure		404	{object}	httpapi.Problem
//	@Security		BearerAuth
//	@Router			/api/v1/jobs/{job}/definition [get]
func (h handlers) getDefinition(c *gin.Context) error {
	id := c.Param("job")
	job, err := h.svc.Job(c.Request.Context(), id)
	if err != nil {
		return jobProblem(err, id)
	}
	var def map[string]any
	if len(job.Definition) > 0 {
		if err := json.Unmarshal(job.Definition, &def); err != nil {
			return fmt.Errorf("decoding definition of job %s: %w", id, err)
		}
	}
	c.JSON(http.StatusOK, JobDefinition{ID: job.ID, Project: job.Project, Definition: def,
		Parameters: job.Parameters, Blocks: job.Only})
	return nil
}

// getJob returns one job.
//
//	@Summary		Get a job
//	@ID				getJob
//	@Description	Returns a job with its state, wait reason, queue position, blocks, timings and result.
//	@Tags			jobs
//	@Produce		json
//	@Param			job	path		string	true	"Job id (UUID)"	format(uuid)
//	@Success		200	{object}	Job
//	@Failure		404	{object}	httpapi.Problem	"JOB_NOT_FOUND"
//	@Security		BearerAuth
//	@Router			/api/v1/jobs/{job} [get]
func (h handlers) getJob(c *gin.Context) error {
	id := c.Param("job")
	job, err := h.svc.Job(c.Request.Context(), id)
	if err != nil {
		return jobProblem(err, id)
	}
	c.JSON(http.StatusOK, job)
	return nil
}

// stopJob stops a job.
//
//	@Summary		Stop a job
//	@ID				stopJob
//	@Description	Cancels a QUEUED or BLOCKED job at once. A RUNNING job becomes CANCELLING and ends CANCELLED once its blocks have stopped. Stopping a CANCELLING job again changes nothing.
//	@Tags			jobs
//	@Accept			json
//	@Produce		json
//	@Param			job		path		string		true	"Job id (UUID)"	format(uuid)
//	@Param			body	body		StopRequest	false	"Who stops the job and why"
//	@Success		200		{object}	Job
//	@Failure		400		{object}	httpapi.Problem	"The body is not valid JSON"
//	@Failure		404		{object}	httpapi.Problem	"JOB_NOT_FOUND"
//	@Failure		409		{object}	httpapi.Problem	"JOB_FINISHED: the job has already finished"
//	@Failure		422		{object}	httpapi.Problem	"A field is too long"
//	@Security		BearerAuth
//	@Router			/api/v1/jobs/{job}/stop [post]
func (h handlers) stopJob(c *gin.Context) error {
	id := c.Param("job")
	var req StopRequest
	if err := httpapi.DecodeJSON(c, &req, 16<<10, true); err != nil {
		return err
	}
	var errs []httpapi.FieldError
	if utf8.RuneCountInString(req.By) > maxStopByLength {
		errs = append(errs, httpapi.FieldError{Field: "by", Message: fmt.Sprintf("by must be at most %d characters", maxStopByLength)})
	}
	if utf8.RuneCountInString(req.Reason) > maxStopReasonLength {
		errs = append(errs, httpapi.FieldError{Field: "reason", Message: fmt.Sprintf("reason must be at most %d characters", maxStopReasonLength)})
	}
	if len(errs) > 0 {
		return httpapi.Validation("invalid stop request", errs)
	}
	if principal, ok := auth.PrincipalFrom(c); ok {
		// With tokens on, the record names the token, so that a caller
		// cannot sign a stop with another name.
		req.By = principal.String()
	} else if req.By == "" {
		req.By = c.ClientIP()
	}

	job, err := h.svc.StopJob(c.Request.Context(), id, req.By, req.Reason)
	if err != nil {
		return jobProblem(err, id)
	}
	c.JSON(http.StatusOK, job)
	return nil
}

// getOutput downloads an output file of a job.
//
//	@Summary		Download a job output
//	@ID				getJobOutput
//	@Description	Returns a file from the job's output directory, with a Content-Type from its extension, such as text/csv or application/json. Range, If-Modified-Since and If-Range requests are supported.
//	@Tags			jobs
//	@Produce		*/*
//	@Param			job		path	string	true	"Job id (UUID)"	format(uuid)
//	@Param			file	path	string	true	"Path of the file inside the job's output directory, as outputs[].name gives it"
//	@Success		200		{file}	file	"The file"
//	@Success		206		{file}	file	"The requested byte range"
//	@Success		304		"Not modified since If-Modified-Since"
//	@Failure		404		{object}	httpapi.Problem	"JOB_NOT_FOUND or OUTPUT_NOT_FOUND"
//	@Failure		416		{string}	string			"The Range header names no byte of the file"
//	@Security		BearerAuth
//	@Router			/api/v1/jobs/{job}/outputs/{file} [get]
func (h handlers) getOutput(c *gin.Context) error {
	id := c.Param("job")
	if _, err := uuid.Parse(id); err != nil {
		return jobProblem(ErrJobNotFound, id)
	}
	if _, err := h.svc.Job(c.Request.Context(), id); err != nil {
		return jobProblem(err, id)
	}
	name := strings.TrimPrefix(c.Param("file"), "/")
	file, info, err := h.openOutput(id, name)
	if err != nil {
		httpapi.Logger(c).Debug("output not served", "job_id", id, "file", name, "error", err)
		return httpapi.NotFound(httpapi.CodeOutputNotFound, fmt.Sprintf("job %s has no output file %q", id, name))
	}
	defer file.Close()
	c.Header("X-Content-Type-Options", "nosniff")
	http.ServeContent(c.Writer, c.Request, path.Base(name), info.ModTime(), file)
	return nil
}

// openOutput opens the regular file name, a slash-separated path, inside
// the output directory of job id. os.Root rejects paths that leave the
// directory through ".." or a symbolic link.
func (h handlers) openOutput(id, name string) (*os.File, fs.FileInfo, error) {
	if h.outputRoot == "" {
		return nil, nil, errors.New("no output root is configured")
	}
	if !fs.ValidPath(name) || name == "." {
		return nil, nil, fmt.Errorf("invalid output path %q", name)
	}
	root, err := os.OpenRoot(filepath.Join(h.outputRoot, id))
	if err != nil {
		return nil, nil, err
	}
	defer root.Close()
	file, err := root.Open(filepath.FromSlash(name))
	if err != nil {
		return nil, nil, err
	}
	info, err := file.Stat()
	if err != nil || !info.Mode().IsRegular() {
		file.Close()
		return nil, nil, fmt.Errorf("output %q is not a regular file", name)
	}
	return file, info, nil
}

// getSettings returns the pool's limits.
//
//	@Summary		Get pool settings
//	@ID				getSettings
//	@Description	Returns the slot limit in force, the requested and maximum slot limits, the queue limit and, on a cluster node, the cluster-wide slot limit. On a cluster node the slot limit in force and its maximum are this node's.
//	@Tags			settings
//	@Produce		json
//	@Success		200	{object}	Settings
//	@Security		BearerAuth
//	@Router			/api/v1/settings [get]
func (h handlers) getSettings(c *gin.Context) error {
	c.JSON(http.StatusOK, h.svc.Settings())
	return nil
}

// patchSettings changes the pool's limits.
//
//	@Summary		Change pool settings
//	@ID				updateSettings
//	@Description	Sets the requested slot limit, the queue limit, the cluster-wide slot limit, or several. The values survive restarts and, in a cluster, apply to every node, each capping the slot limit at its own cores. Raising a limit starts waiting jobs at once, and lowering it stops no running job. clusterConcurrentJobs: null removes the cluster-wide limit; a server that is not a cluster node rejects a value for it.
//	@Tags			settings
//	@Accept			json
//	@Produce		json
//	@Param			body	body		SettingsUpdate	false	"The settings to change"
//	@Success		200		{object}	Settings
//	@Failure		400		{object}	httpapi.Problem	"The body is not valid JSON or has an unknown field"
//	@Failure		422		{object}	httpapi.Problem	"A value is not an integer of 1 or more, or a cluster-wide limit was sent to a server that is not a cluster node"
//	@Security		BearerAuth
//	@Router			/api/v1/settings [patch]
func (h handlers) patchSettings(c *gin.Context) error {
	var body struct {
		ConcurrentJobs json.RawMessage `json:"concurrentJobs"`
		QueueLimit     json.RawMessage `json:"queueLimit"`
		ClusterJobs    json.RawMessage `json:"clusterConcurrentJobs"`
	}
	if err := httpapi.DecodeJSON(c, &body, 16<<10, true); err != nil {
		return err
	}
	var update SettingsUpdate
	var errs []httpapi.FieldError
	update.ConcurrentJobs = parsePositiveInt("concurrentJobs", body.ConcurrentJobs, &errs)
	update.QueueLimit = parsePositiveInt("queueLimit", body.QueueLimit, &errs)
	update.ClusterConcurrentJobs = parsePositiveInt("clusterConcurrentJobs", body.ClusterJobs, &errs)
	update.NoClusterLimit = strings.TrimSpace(string(body.ClusterJobs)) == "null"
	if len(errs) > 0 {
		return httpapi.Validation("invalid settings", errs)
	}

	settings, err := h.svc.UpdateSettings(c.Request.Context(), update)
	var invalid *SettingsError
	if errors.As(err, &invalid) {
		return httpapi.Validation("invalid settings", []httpapi.FieldError{{Field: invalid.Field, Message: invalid.Field + " " + invalid.Message}})
	}
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, settings)
	return nil
}

// parsePositiveInt reads raw, a JSON value, as an integer of 1 or more. It
// returns nil for an absent or null value, and appends a FieldError for
// anything else that is not such an integer.
func parsePositiveInt(field string, raw json.RawMessage, errs *[]httpapi.FieldError) *int {
	text := strings.TrimSpace(string(raw))
	if text == "" || text == "null" {
		return nil
	}
	n, err := strconv.ParseInt(text, 10, 32)
	if err != nil || n < 1 {
		*errs = append(*errs, httpapi.FieldError{Field: field, Message: fmt.Sprintf("%s must be an integer from 1 to 2147483647, not %s", field, text)})
		return nil
	}
	value := int(n)
	return &value
}
