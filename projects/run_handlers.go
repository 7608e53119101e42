package projects

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/lambdaflow/lambdaflow/internal/auth"
	"github.com/lambdaflow/lambdaflow/internal/httpapi"
	"github.com/lambdaflow/lambdaflow/pool"
)

// ValuesResponse shows a project's current parameter values.
type ValuesResponse struct {
	Project string `json:"project"`
	// Values holds the current value of each parameter that has one.
	Values map[string]any `json:"values"`
	// Version is the project's version after the change.
	Version int64 `json:"version"`
}

// setValues godoc
//
//	@Summary		Set current parameter values
//	@ID				setProjectValues
//	@Description	Merges the given name → value pairs into the project's current values, which plain executions use. A null value removes the current value, so the default applies again. All values are checked; nothing changes unless all are valid.
//	@Tags			projects
//	@Accept			json
//	@Produce		json
//	@Param			project					path		string			true	"project name"
//	@Param			If-Match				header		string			false	"ETag from GET; without it the last writer wins"
//	@Param			values					body		map[string]any	true	"parameter name → value"
//	@Success		200						{object}	ValuesResponse
//	@Header			200						{string}	ETag	"the project's new version"
//	@Failure		400,404,412,413,415,422	{object}	httpapi.Problem
//	@Security		BearerAuth
//	@Router			/api/v1/projects/{project}/parameters [patch]
func (a *API) setValues(c *gin.Context) error {
	ifVersion, err := parseIfMatch(c.GetHeader("If-Match"))
	if err != nil {
		return err
	}
	var patch map[string]any
	if err := httpapi.DecodeJSON(c, &patch, 0, false); err != nil {
		return err
	}
	name := c.Param("project")
	rec, err := UpdateValues(c.Request.Context(), a.store, name, patch, ifVersion)
	if err != nil {
		return storeProblem(err, name)
	}
	a.logger.Info("current values set", "project", rec.Name, "version", rec.Version)
	c.Header("ETag", etag(rec))
	c.JSON(http.StatusOK, ValuesResponse{Project: rec.Name, Values: rec.Values, Version: rec.Version})
	return nil
}

// ValueStore is the part of a Store that UpdateValues uses.
type ValueStore interface {
	Get(ctx context.Context, name string) (*Record, error)
	Update(ctx context.Context, rec *Record, ifVersion int64) error
}

// UpdateValues checks patch and merges it into the named project's current
// values, which plain executions use. A nil value removes a current value,
// so the default applies again. Nothing changes unless every value is
// valid, and invalid values return a 422 *httpapi.Problem naming
// "values.NAME". A positive ifVersion must match the stored version, else
// UpdateValues returns ErrVersionMismatch. With ifVersion 0 the last writer
// wins, because a concurrent change between reading and writing is retried
// on the newer version, up to 10 times. An unknown project returns
// ErrNotFound.
func UpdateValues(ctx context.Context, store ValueStore, name string, patch map[string]any, ifVersion int64) (*Record, error) {
	for attempt := 0; ; attempt++ {
		rec, err := store.Get(ctx, name)
		if err != nil {
			return nil, err
		}
		if ifVersion > 0 && rec.Version != ifVersion {
			return nil, ErrVersionMismatch
		}
		if err := mergeValues(rec, patch); err != nil {
			return nil, err
		}
		err = store.Update(ctx, rec, rec.Version)
		if errors.Is(err, ErrVersionMismatch) && ifVersion == 0 && attempt < 10 {
			continue
		}
		if err != nil {
			return nil, err
		}
		return rec, nil
	}
}

// mergeValues checks patch and merges it into rec's current values; a
// null removes a value.
func mergeValues(rec *Record, patch map[string]any) error {
	merged := make(map[string]any, len(rec.Values)+len(patch))
	for k, v := range rec.Values {
		merged[k] = v
	}
	given := make(map[string]any, len(patch))
	for k, v := range patch {
		if v != nil {
			merged[k], given[k] = v, v
			continue
		}
		delete(merged, k)
		if _, ok := rec.parameter(k); !ok {
			given[k] = v // reported as unknown
		}
	}
	_, errs := rec.Convert("values", given)
	typed, mergedErrs := rec.Convert("values", merged)
	if len(errs) == 0 && len(mergedErrs) > 0 {
		// The patch is fine but an older current value no longer fits a
		// changed definition: report it so it can be patched away.
		errs = mergedErrs
	}
	if len(errs) > 0 {
		return httpapi.Validation("the parameter values are invalid", errs)
	}
	rec.Values = rec.JSONValues(typed)
	return nil
}

// ValidateRequest is the body of POST /projects/{project}/validate.
type ValidateRequest struct {
	// Parameters are checked as a run would take them; missing ones take
	// the project's current values and defaults.
	Parameters map[string]any `json:"parameters,omitempty"`
}

// ValidateResponse reports a parameter set that passed every check.
type ValidateResponse struct {
	Valid bool `json:"valid"`
	// Parameters are the values a run would use, defaults filled in.
	Parameters map[string]any `json:"parameters"`
}

// validate godoc
//
//	@Summary	Check parameters without running anything
//	@ID			validateParameters
//	@Tags		projects
//	@Accept		json
//	@Produce	json
//	@Param		project				path		string			true	"project name"
//	@Param		request				body		ValidateRequest	false	"the parameters to check"
//	@Success	200					{object}	ValidateResponse
//	@Failure	400,404,413,415,422	{object}	httpapi.Problem
//	@Security	BearerAuth
//	@Router		/api/v1/projects/{project}/validate [post]
func (a *API) validate(c *gin.Context) error {
	var req ValidateRequest
	if err := httpapi.DecodeJSON(c, &req, 0, true); err != nil {
		return err
	}
	rec, err := a.load(c)
	if err != nil {
		return err
	}
	typed, errs := rec.Bind("parameters", req.Parameters, rec.Values)
	if len(errs) > 0 {
		return httpapi.Validation("the parameters are invalid", errs)
	}
	c.JSON(http.StatusOK, ValidateResponse{Valid: true, Parameters: rec.JSONValues(typed)})
	return nil
}

// ExecuteRequest is the body of POST /projects/{project}/execute. Every
// field is optional.
type ExecuteRequest struct {
	// Blocks limits the run to these blocks and the blocks they need.
	Blocks []string `json:"blocks,omitempty"`
	// CancelExisting stops the project's running or waiting jobs first.
	CancelExisting bool `json:"cancelExisting,omitempty"`
	// Timeout bounds the job's run time as a Go duration such as "30s";
	// it overrides the project's timeout.
	Timeout string `json:"timeout,omitempty" example:"30s"`
}

// execute godoc
//
//	@Summary		Run the project with its current values
//	@ID				executeProject
//	@Description	Queues a job of the project itself. The job waits BLOCKED while an earlier job of the project runs or waits.
//	@Tags			projects
//	@Accept			json
//	@Produce		json
//	@Param			project						path		string			true	"project name"
//	@Param			request						body		ExecuteRequest	false	"what to run"
//	@Success		202							{object}	pool.Job
//	@Header			202							{string}	Location	"the job's URL"
//	@Failure		400,404,413,415,422,429,503	{object}	httpapi.Problem
//	@Security		BearerAuth
//	@Router			/api/v1/projects/{project}/execute [post]
func (a *API) execute(c *gin.Context) error {
	var req ExecuteRequest
	if err := httpapi.DecodeJSON(c, &req, 0, true); err != nil {
		return err
	}
	rec, err := a.load(c)
	if err != nil {
		return err
	}
	sub, err := ExecuteSubmission(rec, &req)
	if err != nil {
		return err
	}
	if req.CancelExisting {
		// A full queue or a timeout above the maximum would reject the
		// new job after the old one was stopped, leaving the project with
		// neither.
		if err := a.sched.Reserve(1, sub.Timeout); err != nil {
			return pool.SubmitProblem(err)
		}
		StopActive(c.Request.Context(), a.sched, rec.Name, auth.Caller(c), httpapi.Logger(c))
	}
	job, err := a.sched.Submit(c.Request.Context(), *sub)
	if err != nil {
		return pool.SubmitProblem(err)
	}
	c.Header("Location", "/api/v1/jobs/"+job.ID)
	c.JSON(http.StatusAccepted, job)
	return nil
}

// ExecuteSubmission checks an execute request against rec and builds the
// job of the project itself: its current values bound, its definition
// snapshot and its own lock. Invalid requests return a 422
// *httpapi.Problem naming each bad field.
func ExecuteSubmission(rec *Record, req *ExecuteRequest) (*pool.Submission, error) {
	typed, errs := rec.Bind("values", nil, rec.Values)
	for i, name := range req.Blocks {
		if _, ok := rec.block(name); !ok {
			errs = append(errs, httpapi.FieldError{Field: fmt.Sprintf("blocks[%d]", i), Message: fmt.Sprintf("names no block: %q", name)})
		}
	}
	timeout, ferr := parseTimeout("timeout", req.Timeout)
	if ferr != nil {
		errs = append(errs, *ferr)
	}
	if len(errs) > 0 {
		return nil, httpapi.Validation("the execute request is invalid", errs)
	}
	if timeout == 0 {
		timeout = rec.timeout()
	}
	def, err := definitionJSON(&rec.Project)
	if err != nil {
		return nil, err
	}
	return &pool.Submission{
		Project:    rec.Name,
		Kind:       pool.KindExecute,
		LockKey:    rec.Name,
		Parameters: rec.JSONValues(typed),
		Definition: def,
		Blocks:     PendingBlocks(&rec.Project),
		Only:       req.Blocks,
		Timeout:    timeout,
	}, nil
}

// StopActive stops the running and waiting jobs of lockKey, recording by
// as who asked. A job that ended meanwhile is not an error, so failed
// stops are only logged at debug level.
func StopActive(ctx context.Context, sched Scheduler, lockKey, by string, log *slog.Logger) {
	for _, id := range sched.ActiveJobIDs(lockKey) {
		_, err := sched.StopJob(ctx, id, by, "replaced by a new execution (cancelExisting)")
		if err != nil {
			log.Debug("stopping existing job", "job_id", id, "error", err)
		}
	}
}

// PendingBlocks returns a PENDING block run for every block of p.
func PendingBlocks(p *Project) []pool.BlockRun {
	runs := make([]pool.BlockRun, len(p.Blocks))
	for i, b := range p.Blocks {
		runs[i] = pool.BlockRun{Name: b.Name, Type: b.Type, State: pool.BlockPending}
	}
	return runs
}
