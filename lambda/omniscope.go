package lambda

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/lambdaflow/lambdaflow/internal/auth"
	"github.com/lambdaflow/lambdaflow/internal/httpapi"
	"github.com/lambdaflow/lambdaflow/pool"
	"github.com/lambdaflow/lambdaflow/projects"
)

// Error types of the Omniscope-style routes, besides the problem codes of
// the native API, which they reuse.
const (
	ErrorTypeInvalidRequest    = "INVALID_REQUEST"
	ErrorTypeParameterNotFound = "PARAMETER_NOT_FOUND"
)

// Omniscope job states. A CANCELLING job reads as RUNNING.
const (
	JobStateQueued    = "QUEUED"
	JobStateRunning   = "RUNNING"
	JobStateBlocked   = "BLOCKED"
	JobStateCompleted = "COMPLETED"
	JobStateFailed    = "FAILED"
	JobStateCancelled = "CANCELLED"
)

// WorkflowError is the error body of every Omniscope-style route, sent
// with a 4xx status for bad requests and a 5xx status for server faults.
type WorkflowError struct {
	// ErrorType is a stable machine-readable code such as
	// WORKFLOW_ALREADY_RUNNING or JOB_NOT_FOUND.
	ErrorType string `json:"errorType"`
	// ErrorMessage describes the error and names each invalid field.
	ErrorMessage string `json:"errorMessage"`
}

// WorkflowExecuteRequest is the body of POST /{project}/w/execute. Every
// field is optional.
type WorkflowExecuteRequest struct {
	// Blocks limits the run to these blocks and the blocks they need.
	Blocks []string `json:"blocks,omitempty"`
	// RefreshFromSource is accepted and has no effect, because every job
	// reads its sources afresh.
	RefreshFromSource bool `json:"refreshFromSource,omitempty"`
	// CancelExisting stops the project's running or waiting job and
	// queues the new one. Without it, a project with such a job rejects
	// the request with WORKFLOW_ALREADY_RUNNING.
	CancelExisting bool `json:"cancelExisting,omitempty"`
}

// WorkflowLambdaRequest is the body of POST /{project}/w/lambdaexecute
// and /{project}/w/lambda/execute, and the form field "execution" of
// POST /{project}/w/uploadandexecute. Every field is optional.
type WorkflowLambdaRequest struct {
	// Blocks limits the run to these blocks and the blocks they need.
	Blocks []string `json:"blocks,omitempty"`
	// Params holds the parameter values of the instance.
	Params *WorkflowParams `json:"params,omitempty"`
	// DeleteExecutionOnFinish, true unless set to false, removes the
	// instance when its job ends, as in the native lambda API.
	DeleteExecutionOnFinish *bool `json:"deleteExecutionOnFinish,omitempty"`
	// RefreshFromSource is accepted and has no effect, because every job
	// reads its sources afresh.
	RefreshFromSource bool `json:"refreshFromSource,omitempty"`
	// CancelExisting is accepted and has no effect, because each
	// invocation runs in a new instance that has no earlier job.
	CancelExisting bool `json:"cancelExisting,omitempty"`
}

// WorkflowParams is a list of parameter values.
type WorkflowParams struct {
	// Updates sets one parameter each. A parameter not listed takes the
	// project's current value, then its default.
	Updates []ParamUpdate `json:"updates,omitempty"`
	// WaitForIdle, on a lambda execution, delays the response until the
	// job ended or the server's maximum wait (60s unless configured
	// otherwise) passed. On updateparams it has no effect, because setting
	// values runs nothing.
	WaitForIdle bool `json:"waitForIdle,omitempty"`
}

// ParamUpdate sets one parameter.
type ParamUpdate struct {
	// Name names a parameter of the project.
	Name string `json:"name"`
	// Value is the parameter's value in its JSON form. On updateparams,
	// null removes the current value, so the default applies again.
	Value any `json:"value" extensions:"x-nullable"`
	// FormDataKey, only on uploadandexecute, names the file part whose
	// file becomes the value of this FILE parameter.
	FormDataKey string `json:"formDataKey,omitempty"`
}

// WorkflowJobResponse is the response of an execution.
type WorkflowJobResponse struct {
	// JobID names the queued job.
	JobID string `json:"jobId" format:"uuid"`
}

// WorkflowLambdaResponse is the response of a lambda execution.
type WorkflowLambdaResponse struct {
	// JobID names the instance's job.
	JobID string `json:"jobId" format:"uuid"`
	// LambdaProjectPath is "{project}/instances/{instance id}", which
	// takes the place of the project in GET
	// /{lambdaProjectPath}/w/job/{jobId}/state.
	LambdaProjectPath string `json:"lambdaProjectPath"`
}

// WorkflowJobState is the response of GET .../w/job/{jobId}/state.
type WorkflowJobState struct {
	// JobState is QUEUED, RUNNING, BLOCKED, COMPLETED, FAILED or
	// CANCELLED. A job being cancelled reads as RUNNING.
	JobState string `json:"jobState" enums:"QUEUED,RUNNING,BLOCKED,COMPLETED,FAILED,CANCELLED"`
	// ErrorType is set when the job failed: BLOCK_FAILED, TIMEOUT,
	// INTERRUPTED or INTERNAL.
	ErrorType string `json:"errorType,omitempty"`
	// ErrorMessage explains why the job failed.
	ErrorMessage string `json:"errorMessage,omitempty"`
}

// RegisterWorkflowRoutes adds the Omniscope-style routes to r, the root
// router, next to /api/v1. A project's path in them is its name.
func (s *Service) RegisterWorkflowRoutes(r gin.IRouter) {
	r.POST("/:project/w/execute", handleWorkflow(s.workflowExecute))
	r.POST("/:project/w/lambdaexecute", handleWorkflow(s.workflowLambda))
	r.POST("/:project/w/lambda/execute", handleWorkflow(s.workflowLambdaAlias))
	r.POST("/:project/w/uploadandexecute", handleWorkflow(s.workflowUploadExecute))
	r.GET("/:project/w/job/:job/state", handleWorkflow(s.workflowJobState))
	r.GET("/:project/instances/:instance/w/job/:job/state", handleWorkflow(s.workflowInstanceJobState))
	r.GET("/:project/w/param", handleWorkflow(s.workflowParams))
	r.GET("/:project/w/param/:name", handleWorkflow(s.workflowParam))
	r.POST("/:project/w/updateparams", handleWorkflow(s.workflowUpdateParams))
}

// handleWorkflow adapts fn to gin and writes a returned error as a
// WorkflowError. When tokens are configured, the router's access
// middleware has already rejected a caller without the route's role,
// writing 401 or 403 with WriteWorkflowError.
func handleWorkflow(fn httpapi.HandlerFunc) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := fn(c); err != nil {
			WriteWorkflowError(c, err)
		}
	}
}

// WriteWorkflowError writes err in the Omniscope error shape. Errors that
// are not a *httpapi.Problem become a 500 and are logged, since only the
// log may show their text.
func WriteWorkflowError(c *gin.Context, err error) {
	p := httpapi.AsProblem(err)
	if p.Status >= http.StatusInternalServerError {
		httpapi.Logger(c).Error("request failed", "error", err, "status", p.Status)
	}
	if p.RetryAfter > 0 {
		c.Header("Retry-After", strconv.Itoa(p.RetryAfter))
	}
	errorType := p.Code
	if errorType == httpapi.CodeBadRequest {
		errorType = ErrorTypeInvalidRequest
	}
	message := p.Detail
	if p.Status >= http.StatusInternalServerError {
		message += " (request id " + httpapi.RequestID(c) + ")"
	}
	for _, fe := range p.Errors {
		if fe.Message == p.Detail {
			continue // a 400 repeats its one field error as the detail
		}
		message += "; " + workflowField(fe.Field) + ": " + fe.Message
	}
	c.AbortWithStatusJSON(p.Status, WorkflowError{ErrorType: errorType, ErrorMessage: message})
}

// workflowField names a field of a native error in Omniscope's words:
// "parameters.year" and "values.year" become "parameter year".
func workflowField(field string) string {
	for _, prefix := range []string{"parameters.", "values."} {
		if name, found := strings.CutPrefix(field, prefix); found {
			return "parameter " + name
		}
	}
	return field
}

// workflowExecute godoc
//
//	@Summary		Run a project (Omniscope style)
//	@ID				workflowExecute
//	@Description	Queues a job of the project with its current values, like POST /api/v1/projects/{project}/execute. Unlike the native route, a project that already has a job running or waiting rejects the request with 409 WORKFLOW_ALREADY_RUNNING unless cancelExisting is true, which stops that job first.
//	@Tags			omniscope
//	@Accept			json
//	@Produce		json
//	@Param			project							path		string					true	"project name"
//	@Param			request							body		WorkflowExecuteRequest	false	"what to run"
//	@Success		200								{object}	WorkflowJobResponse
//	@Failure		400,404,409,413,415,422,429,503	{object}	WorkflowError
//	@Security		BearerAuth
//	@Router			/{project}/w/execute [post]
func (s *Service) workflowExecute(c *gin.Context) error {
	var req WorkflowExecuteRequest
	if err := httpapi.DecodeJSONAllowUnknown(c, &req, s.cfg.MaxBodyBytes, true); err != nil {
		return err
	}
	rec, err := s.load(c)
	if err != nil {
		return err
	}
	sub, err := projects.ExecuteSubmission(rec, &projects.ExecuteRequest{Blocks: req.Blocks})
	if err != nil {
		return err
	}

	// NOTE: the lock covers these routes in this process only. A native
	// execute arriving between the check and Submit queues as BLOCKED.
	s.executeMu.Lock()
	defer s.executeMu.Unlock()
	ctx := context.WithoutCancel(c.Request.Context())
	if active := s.sched.ActiveJobIDs(rec.Name); len(active) > 0 {
		if !req.CancelExisting {
			return httpapi.NewProblem(http.StatusConflict, httpapi.CodeWorkflowAlreadyRunning,
				fmt.Sprintf("project %s already has job %s running or waiting; wait for it to end, or send cancelExisting true to stop it", rec.Name, active[0]))
		}
		// A full queue or a timeout above the maximum would reject the
		// new job after the old one was stopped, leaving the project with
		// neither.
		if err := s.sched.Reserve(1, sub.Timeout); err != nil {
			return pool.SubmitProblem(err)
		}
		projects.StopActive(ctx, s.sched, rec.Name, auth.Caller(c), httpapi.Logger(c))
	}
	job, err := s.sched.Submit(ctx, *sub)
	if err != nil {
		return pool.SubmitProblem(err)
	}
	c.JSON(http.StatusOK, WorkflowJobResponse{JobID: job.ID})
	return nil
}

// workflowLambda godoc
//
//	@Summary		Run a parameterised instance (Omniscope style)
//	@ID				workflowLambdaExecute
//	@Description	Runs an instance like POST /api/v1/projects/{project}/lambda, with the parameters given as params.updates. With params.waitForIdle true the response waits until the job ended or the server's maximum wait passed. Also served at /{project}/w/lambda/execute.
//	@Tags			omniscope
//	@Accept			json
//	@Produce		json
//	@Param			project						path		string					true	"project name"
//	@Param			request						body		WorkflowLambdaRequest	false	"parameters and options"
//	@Success		200							{object}	WorkflowLambdaResponse
//	@Failure		400,404,413,415,422,429,503	{object}	WorkflowError
//	@Security		BearerAuth
//	@Router			/{project}/w/lambdaexecute [post]
func (s *Service) workflowLambda(c *gin.Context) error {
	var req WorkflowLambdaRequest
	if err := httpapi.DecodeJSONAllowUnknown(c, &req, s.cfg.MaxBodyBytes, true); err != nil {
		return err
	}
	if errs := checkUpdates(&req, false); len(errs) > 0 {
		return httpapi.Validation("the lambda request is invalid", errs)
	}
	return s.runWorkflowLambda(c, &req, nil)
}

// workflowLambdaAlias godoc
//
//	@Summary		Run a parameterised instance (Omniscope style, second path)
//	@ID				workflowLambdaExecuteAlias
//	@Description	The same as POST /{project}/w/lambdaexecute, served at the path that other Omniscope clients use.
//	@Tags			omniscope
//	@Accept			json
//	@Produce		json
//	@Param			project						path		string					true	"project name"
//	@Param			request						body		WorkflowLambdaRequest	false	"parameters and options"
//	@Success		200							{object}	WorkflowLambdaResponse
//	@Failure		400,404,413,415,422,429,503	{object}	WorkflowError
//	@Security		BearerAuth
//	@Router			/{project}/w/lambda/execute [post]
func (s *Service) workflowLambdaAlias(c *gin.Context) error {
	return s.workflowLambda(c)
}

// runWorkflowLambda runs req through the native lambda path and writes
// the job id and the instance's path.
func (s *Service) runWorkflowLambda(c *gin.Context, req *WorkflowLambdaRequest, uploads []upload) error {
	invoke := InvokeRequest{Blocks: req.Blocks, DeleteExecutionOnFinish: req.DeleteExecutionOnFinish}
	if req.Params != nil {
		invoke.Parameters = map[string]any{}
		for _, u := range req.Params.Updates {
			if u.FormDataKey == "" {
				invoke.Parameters[u.Name] = u.Value
			}
		}
		if req.Params.WaitForIdle {
			invoke.Wait = s.cfg.MaxWait.String()
		}
	}
	job, wait, _, err := s.start(c, &invoke, uploads)
	if err != nil {
		return err
	}
	job, err = s.awaitJob(c.Request.Context(), job, wait)
	if err != nil {
		return err
	}
	if c.Request.Context().Err() != nil {
		return nil
	}
	c.JSON(http.StatusOK, WorkflowLambdaResponse{JobID: job.ID, LambdaProjectPath: instancePath(job)})
	return nil
}

// instancePath returns the path that names the instance of a lambda job.
func instancePath(job *pool.Job) string {
	if job.Instance == nil {
		return job.Project
	}
	return job.Project + "/instances/" + *job.Instance
}

// checkUpdates checks that each update of req names a parameter once and
// that formDataKey appears only where files are accepted.
func checkUpdates(req *WorkflowLambdaRequest, files bool) []httpapi.FieldError {
	if req.Params == nil {
		return nil
	}
	return checkUpdateList("params.updates", req.Params.Updates, files)
}

func checkUpdateList(field string, updates []ParamUpdate, files bool) []httpapi.FieldError {
	var errs []httpapi.FieldError
	seen := map[string]bool{}
	for i, u := range updates {
		at := fmt.Sprintf("%s[%d]", field, i)
		switch {
		case u.Name == "":
			errs = append(errs, httpapi.FieldError{Field: at + ".name", Message: "is missing, so name the parameter to set"})
		case seen[u.Name]:
			errs = append(errs, httpapi.FieldError{Field: at + ".name", Message: fmt.Sprintf("parameter %q is set more than once", u.Name)})
		case u.FormDataKey != "" && !files:
			errs = append(errs, httpapi.FieldError{Field: at + ".formDataKey", Message: "is accepted only by uploadandexecute; send the value instead"})
		case u.FormDataKey != "" && u.Value != nil:
			errs = append(errs, httpapi.FieldError{Field: at, Message: fmt.Sprintf("parameter %q has both a value and a formDataKey; send one of them", u.Name)})
		}
		seen[u.Name] = true
	}
	return errs
}

// workflowJobState godoc
//
//	@Summary		Get a job's state (Omniscope style)
//	@ID				workflowJobState
//	@Description	Returns the state of a job of the project, or of the instance when the path names one. A job whose instance was removed when it ended still returns its final state.
//	@Tags			omniscope
//	@Produce		json
//	@Param			project	path		string	true	"project name"
//	@Param			job		path		string	true	"Job id (UUID)"	format(uuid)
//	@Success		200		{object}	WorkflowJobState
//	@Failure		404		{object}	WorkflowError
//	@Security		BearerAuth
//	@Router			/{project}/w/job/{job}/state [get]
func (s *Service) workflowJobState(c *gin.Context) error {
	project, id := c.Param("project"), c.Param("job")
	instance := c.Param("instance")
	job, err := s.sched.Job(c.Request.Context(), id)
	if err != nil && !errors.Is(err, pool.ErrJobNotFound) {
		return fmt.Errorf("reading job %s: %w", id, err)
	}
	if err != nil || job.Project != project || (instance != "" && (job.Instance == nil || *job.Instance != instance)) {
		return s.jobNotFound(c, project, instance, id)
	}
	c.JSON(http.StatusOK, workflowState(job))
	return nil
}

// workflowInstanceJobState godoc
//
//	@Summary		Get the state of an instance's job (Omniscope style)
//	@ID				workflowInstanceJobState
//	@Description	Returns the state of the job of the instance that lambdaProjectPath names. Any other job is 404 JOB_NOT_FOUND. The state stays readable after the instance was removed.
//	@Tags			omniscope
//	@Produce		json
//	@Param			project		path		string	true	"project name"
//	@Param			instance	path		string	true	"Instance id (UUID)"	format(uuid)
//	@Param			job			path		string	true	"Job id (UUID)"			format(uuid)
//	@Success		200			{object}	WorkflowJobState
//	@Failure		404			{object}	WorkflowError
//	@Security		BearerAuth
//	@Router			/{project}/instances/{instance}/w/job/{job}/state [get]
func (s *Service) workflowInstanceJobState(c *gin.Context) error {
	return s.workflowJobState(c)
}

// jobNotFound returns the 404 of a job that the path does not name:
// PROJECT_NOT_FOUND for an unknown project, else JOB_NOT_FOUND.
func (s *Service) jobNotFound(c *gin.Context, project, instance, id string) error {
	if _, err := s.load(c); err != nil {
		return err
	}
	owner := "project " + project
	if instance != "" {
		owner = "instance " + instance + " of project " + project
	}
	return httpapi.NotFound(httpapi.CodeJobNotFound, fmt.Sprintf("job %q of %s not found", id, owner))
}

// workflowState returns a job's state in Omniscope's words.
func workflowState(job *pool.Job) WorkflowJobState {
	state := WorkflowJobState{JobState: string(job.State)}
	switch job.State {
	case pool.StateCancelling:
		state.JobState = JobStateRunning
	case pool.StateFailed:
		state.ErrorType, state.ErrorMessage = pool.ErrorInternal, "the job failed"
		if job.Error != nil {
			state.ErrorType, state.ErrorMessage = job.Error.Type, job.Error.Message
		}
	}
	return state
}
