package lambda

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/lambdaflow/lambdaflow/internal/httpapi"
	"github.com/lambdaflow/lambdaflow/internal/timestamp"
	"github.com/lambdaflow/lambdaflow/pool"
	"github.com/lambdaflow/lambdaflow/projects"
)

// Problem codes of the lambda routes, besides the shared ones in httpapi.
const (
	CodeInstanceNotFound     = "INSTANCE_NOT_FOUND"
	CodeIdempotencyKeyReused = "IDEMPOTENCY_KEY_REUSED"
)

// HeaderIdempotentReplayed is set to "true" on the response to a request
// whose idempotency key returned the job of an earlier request.
const HeaderIdempotentReplayed = "Idempotent-Replayed"

// InvokeRequest is the body of POST /projects/{project}/lambda, or the
// form field "request" of its multipart form. Every field is optional.
type InvokeRequest struct {
	// Parameters maps parameter names to values. A missing parameter
	// takes the project's current value, then its default.
	Parameters map[string]any `json:"parameters,omitempty"`
	// Blocks limits the run to these blocks and the blocks they need.
	Blocks []string `json:"blocks,omitempty"`
	// Timeout bounds the job's run time as a Go duration such as "30s";
	// it overrides the project's timeout.
	Timeout string `json:"timeout,omitempty" example:"30s"`
	// Wait, a Go duration such as "10s", makes the response wait for the
	// job's end: 200 with the finished job when it ends in time, else
	// 202. The server caps it (60s unless configured otherwise).
	Wait string `json:"wait,omitempty" example:"10s"`
	// DeleteExecutionOnFinish, true unless set to false, removes the
	// instance when its job ends. When false, the instance stays readable
	// at /instances/{instance} for the retention period (24h unless
	// configured otherwise) after its job ended.
	DeleteExecutionOnFinish *bool `json:"deleteExecutionOnFinish,omitempty"`
	// IdempotencyKey, at most 255 printable ASCII characters, makes a
	// repeated request within the retention period (24h unless
	// configured otherwise) return the first job instead of queueing
	// another. A different body under the same key is a 409.
	IdempotencyKey string `json:"idempotencyKey,omitempty" validate:"omitempty,max=255,printascii" maxLength:"255"`
}

// invocation is a checked request to run one instance.
type invocation struct {
	rec        *projects.Record
	definition json.RawMessage
	instanceID string
	// params holds the bound values in their JSON form.
	params  map[string]any
	only    []string
	timeout time.Duration
	keep    bool
	// uploads are the files to store in the instance's directory before
	// the job is queued.
	uploads []upload
}

// runOptions are the checked options of a request that apply to every
// instance it queues.
type runOptions struct {
	only    []string
	timeout time.Duration
	wait    time.Duration
	keep    bool
}

// invoke godoc
//
//	@Summary		Run a parameterised instance of a project
//	@ID				invokeLambda
//	@Description	Clones the project's definition into an ephemeral instance with the given parameters and queues it with a lock of its own, so instances never wait for each other or for the project's own jobs, only for a slot. With multipart/form-data, the form field "request" holds this JSON body and file parts named after file parameters are stored with the instance.
//	@Tags			lambda
//	@Accept			json,mpfd
//	@Produce		json
//	@Param			project							path		string				true	"project name"
//	@Param			request							body		InvokeRequest		false	"parameters and options"
//	@Success		200								{object}	pool.Job			"the job ended within the wait"
//	@Success		202								{object}	pool.Job			"the job is queued or still runs"
//	@Header			200,202							{string}	Location			"the job's URL"
//	@Header			200,202							{string}	Idempotent-Replayed	"true when an earlier request with the same idempotencyKey queued the job"
//	@Failure		400,404,409,413,415,422,429,503	{object}	httpapi.Problem
//	@Security		BearerAuth
//	@Router			/api/v1/projects/{project}/lambda [post]
func (s *Service) invoke(c *gin.Context) error {
	if c.ContentType() == "multipart/form-data" {
		return s.invokeUpload(c)
	}
	var req InvokeRequest
	if err := httpapi.DecodeJSON(c, &req, s.cfg.MaxBodyBytes, true); err != nil {
		return err
	}
	return s.run(c, &req, nil)
}

// run checks req, queues its instance unless its idempotency key names an
// earlier job, and writes the response.
func (s *Service) run(c *gin.Context, req *InvokeRequest, uploads []upload) error {
	job, wait, replayed, err := s.start(c, req, uploads)
	if err != nil {
		return err
	}
	return s.respond(c, job, wait, replayed)
}

// start checks req and queues its instance unless its idempotency key
// names an earlier job. It returns the job, the checked wait and whether
// the job was queued by an earlier request with the same key.
func (s *Service) start(c *gin.Context, req *InvokeRequest, uploads []upload) (*pool.Job, time.Duration, bool, error) {
	rec, err := s.load(c)
	if err != nil {
		return nil, 0, false, err
	}
	opts, errs := s.options(rec, req.Blocks, req.Timeout, req.Wait, req.DeleteExecutionOnFinish)
	errs = append(errs, checkStruct(req)...)
	inv, bindErrs := s.bind(rec, "parameters", req.Parameters, uploads)
	errs = append(errs, bindErrs...)
	if len(errs) > 0 {
		return nil, 0, false, httpapi.Validation("the lambda request is invalid", errs)
	}
	inv.only, inv.timeout, inv.keep = opts.only, opts.timeout, opts.keep

	if req.IdempotencyKey == "" {
		job, err := s.launch(c.Request.Context(), inv)
		return job, opts.wait, false, err
	}
	job, replayed, err := s.launchOnce(c.Request.Context(), inv, req, uploads)
	return job, opts.wait, replayed, err
}

func (s *Service) load(c *gin.Context) (*projects.Record, error) {
	name := c.Param("project")
	rec, err := s.projects.Get(c.Request.Context(), name)
	if errors.Is(err, projects.ErrNotFound) {
		return nil, httpapi.NotFound(httpapi.CodeProjectNotFound, fmt.Sprintf("project %q not found", name))
	}
	return rec, err
}

// options checks the options a request gives for all its instances.
func (s *Service) options(rec *projects.Record, blocks []string, timeout, wait string, deleteOnFinish *bool) (runOptions, []httpapi.FieldError) {
	var errs []httpapi.FieldError
	opts := runOptions{only: blocks, keep: deleteOnFinish != nil && !*deleteOnFinish}
	for i, name := range blocks {
		if !hasBlock(&rec.Project, name) {
			errs = append(errs, httpapi.FieldError{Field: fmt.Sprintf("blocks[%d]", i), Message: fmt.Sprintf("names no block of project %s: %q", rec.Name, name)})
		}
	}
	opts.timeout, errs = parseDuration("timeout", timeout, errs)
	if opts.timeout == 0 {
		// Validation rejects a project timeout that does not parse.
		opts.timeout, _ = time.ParseDuration(rec.Timeout)
	}
	opts.wait, errs = parseDuration("wait", wait, errs)
	opts.wait = min(opts.wait, s.cfg.MaxWait)
	return opts, errs
}

func hasBlock(p *projects.Project, name string) bool {
	for _, b := range p.Blocks {
		if b.Name == name {
			return true
		}
	}
	return false
}

// parseDuration reads a positive Go duration from a request field; "" is
// zero.
func parseDuration(field, text string, errs []httpapi.FieldError) (time.Duration, []httpapi.FieldError) {
	if text == "" {
		return 0, errs
	}
	d, err := time.ParseDuration(text)
	if err != nil || d <= 0 {
		return 0, append(errs, httpapi.FieldError{Field: field, Message: fmt.Sprintf("must be a positive Go duration such as 30s or 5m, got %q", text)})
	}
	return d, errs
}

// bind creates the invocation of one instance of rec: a new instance id,
// the definition snapshot and the parameters bound under field. Uploaded
// files become the values of their file parameters.
func (s *Service) bind(rec *projects.Record, field string, params map[string]any, uploads []upload) (*invocation, []httpapi.FieldError) {
	id, err := uuid.NewV7()
	if err != nil {
		return nil, []httpapi.FieldError{{Field: field, Message: "creating an instance id failed: " + err.Error()}}
	}
	inv := &invocation{rec: rec, instanceID: id.String(), uploads: uploads}
	values, errs := withUploads(rec, field, params, inv.instanceID, uploads)
	typed, bindErrs := rec.Bind(field, values, rec.Values)
	errs = append(errs, bindErrs...)
	if len(errs) > 0 {
		return nil, errs
	}
	inv.params = rec.JSONValues(typed)
	inv.definition, err = json.Marshal(&rec.Project)
	if err != nil {
		return nil, []httpapi.FieldError{{Field: field, Message: "encoding the definition failed: " + err.Error()}}
	}
	return inv, nil
}

// launch stores the instance's files, queues its job and stores the
// instance when it needs a record. A client that disconnects meanwhile
// does not stop it halfway.
func (s *Service) launch(ctx context.Context, inv *invocation) (*pool.Job, error) {
	ctx = context.WithoutCancel(ctx)
	if err := s.storeUploads(inv); err != nil {
		return nil, err
	}
	id := inv.instanceID
	job, err := s.sched.Submit(ctx, pool.Submission{
		Project:    inv.rec.Name,
		Instance:   &id,
		Kind:       pool.KindLambda,
		LockKey:    id,
		Parameters: inv.params,
		Definition: inv.definition,
		Blocks:     projects.PendingBlocks(&inv.rec.Project),
		Only:       inv.only,
		Timeout:    inv.timeout,
	})
	if err != nil {
		s.discardUploads(id)
		return nil, pool.SubmitProblem(err)
	}

	if !inv.keep && len(inv.uploads) == 0 {
		// The instance lives exactly as long as its job and owns no files,
		// so the job's record describes it (see activeInstance), and two
		// transactions per invocation are saved.
		s.log.Debug("instance queued", "instance_id", id, "job_id", job.ID, "project", inv.rec.Name)
		return job, nil
	}
	inst := &Instance{
		ID: id, Project: inv.rec.Name, Job: job.ID, Definition: inv.definition, Parameters: inv.params,
		DeleteExecutionOnFinish: !inv.keep, CreatedAt: timestamp.From(s.now()),
	}
	if err := s.store.InsertInstance(ctx, inst); err != nil {
		// Without its record the instance cannot be read or cleaned up,
		// so its job must not run.
		if _, stopErr := s.sched.StopJob(ctx, job.ID, "lambda", "its instance could not be stored"); stopErr != nil {
			s.log.Error("stopping the job of an unstored instance failed", "job_id", job.ID, "error", stopErr)
		}
		s.discardUploads(id)
		return nil, err
	}
	s.watch(inst)
	s.log.Debug("instance queued", "instance_id", id, "job_id", job.ID, "project", inv.rec.Name)
	return job, nil
}

// respond writes job, after waiting up to wait for it to end: 200 when it
// ended within a wait, else 202. A client that disconnects while waiting
// gets nothing written, and the job goes on.
func (s *Service) respond(c *gin.Context, job *pool.Job, wait time.Duration, replayed bool) error {
	job, err := s.awaitJob(c.Request.Context(), job, wait)
	if err != nil {
		return err
	}
	if c.Request.Context().Err() != nil {
		return nil
	}
	c.Header("Location", jobPath(job.ID))
	if replayed {
		c.Header(HeaderIdempotentReplayed, "true")
	}
	status := http.StatusAccepted
	if wait > 0 && job.State.Final() {
		status = http.StatusOK
	}
	c.JSON(status, job)
	return nil
}

// awaitJob waits up to wait for job to end and returns its latest view.
// It returns job's latest view when the wait is over or ctx ends.
func (s *Service) awaitJob(ctx context.Context, job *pool.Job, wait time.Duration) (*pool.Job, error) {
	if wait <= 0 || job.State.Final() {
		return job, nil
	}
	waitCtx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	defer context.AfterFunc(s.draining, cancel)()
	final, err := s.sched.Await(waitCtx, job.ID)
	if err == nil {
		// A client that reads the instance after the response finds it
		// settled: removed, or kept with its expiry.
		if final.Instance != nil {
			s.awaitSettled(waitCtx, *final.Instance)
		}
		return final, nil
	}
	if waitCtx.Err() == nil {
		return nil, fmt.Errorf("waiting for job %s: %w", job.ID, err)
	}
	if ctx.Err() != nil {
		return job, nil
	}
	latest, err := s.sched.Job(ctx, job.ID)
	if err != nil {
		return nil, fmt.Errorf("reading job %s: %w", job.ID, err)
	}
	return latest, nil
}

func jobPath(id string) string {
	return "/api/v1/jobs/" + id
}

// activeInstance returns the instance without a stored record whose job is
// active, built from the job's record, or ErrInstanceNotFound. The lock key
// of an instance's job is the instance id.
func (s *Service) activeInstance(ctx context.Context, id string) (*Instance, error) {
	for _, jobID := range s.sched.ActiveJobIDs(id) {
		job, err := s.sched.Job(ctx, jobID)
		if errors.Is(err, pool.ErrJobNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading job %s of instance %s: %w", jobID, id, err)
		}
		if job.Kind != pool.KindLambda || job.Instance == nil || *job.Instance != id || job.State.Final() {
			continue
		}
		return &Instance{
			ID: id, Project: job.Project, Job: job.ID, Definition: job.Definition, Parameters: job.Parameters,
			DeleteExecutionOnFinish: true, CreatedAt: job.SubmittedAt,
		}, nil
	}
	return nil, ErrInstanceNotFound
}

// InstanceResponse is an instance with the state and outputs of its job.
type InstanceResponse struct {
	Instance
	// State is the state of the instance's job.
	State pool.State `json:"state"`
	// Outputs lists the files the job wrote; they stay downloadable
	// through the job after the instance is gone.
	Outputs []pool.Output `json:"outputs"`
}

// getInstance godoc
//
//	@Summary		Get an instance
//	@ID				getInstance
//	@Description	An instance exists while its job is active and, when invoked with deleteExecutionOnFinish false, for the retention period after the job ended.
//	@Tags			lambda
//	@Produce		json
//	@Param			instance	path		string	true	"Instance id (UUID)"	format(uuid)
//	@Success		200			{object}	InstanceResponse
//	@Failure		404			{object}	httpapi.Problem
//	@Security		BearerAuth
//	@Router			/api/v1/instances/{instance} [get]
func (s *Service) getInstance(c *gin.Context) error {
	id := c.Param("instance")
	inst, err := s.store.Instance(c.Request.Context(), id)
	if err == nil && inst.ExpiresAt != nil && !s.now().Before(inst.ExpiresAt.Time) {
		err = ErrInstanceNotFound // expired, waiting for the cleaner
	}
	if errors.Is(err, ErrInstanceNotFound) {
		inst, err = s.activeInstance(c.Request.Context(), id)
	}
	if errors.Is(err, ErrInstanceNotFound) {
		return httpapi.NotFound(CodeInstanceNotFound, fmt.Sprintf("instance %q not found; it is removed when its job ends unless invoked with deleteExecutionOnFinish false, and then when its retention ends", id))
	}
	if err != nil {
		return err
	}
	job, err := s.sched.Job(c.Request.Context(), inst.Job)
	if err != nil {
		return fmt.Errorf("reading job %s of instance %s: %w", inst.Job, id, err)
	}
	c.JSON(http.StatusOK, InstanceResponse{Instance: *inst, State: job.State, Outputs: job.Outputs})
	return nil
}
