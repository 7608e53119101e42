package lambda

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/lambdaflow/lambdaflow/internal/httpapi"
	"github.com/lambdaflow/lambdaflow/pool"
)

// BatchRequest is the body of POST /projects/{project}/lambda/batch.
type BatchRequest struct {
	// Items holds one parameter set per instance, queued in this order.
	// The server caps the count (100 unless configured otherwise).
	Items []BatchItem `json:"items"`
	// Blocks limits every run to these blocks and the blocks they need.
	Blocks []string `json:"blocks,omitempty"`
	// Timeout bounds each job's run time as a Go duration such as "30s".
	Timeout string `json:"timeout,omitempty" example:"30s"`
	// Wait, a Go duration such as "10s", makes the response wait until
	// every job ended or the wait is over. The server caps it.
	Wait string `json:"wait,omitempty" example:"10s"`
	// DeleteExecutionOnFinish, true unless set to false, removes each
	// instance when its job ends.
	DeleteExecutionOnFinish *bool `json:"deleteExecutionOnFinish,omitempty"`
}

// BatchItem is the parameter set of one instance of a batch.
type BatchItem struct {
	// Parameters maps parameter names to values, as in InvokeRequest.
	Parameters map[string]any `json:"parameters,omitempty"`
}

// BatchResponse lists the jobs of a batch in the order of its items.
type BatchResponse struct {
	Jobs []*pool.Job `json:"jobs"`
}

// batch godoc
//
//	@Summary		Run one instance per parameter set
//	@ID				invokeLambdaBatch
//	@Description	Checks every parameter set before queueing any: one invalid set rejects the batch, with errors naming its index (items[3].parameters.year). The instances are queued in the order of the items. When the queue rejects one, the ones already queued are stopped.
//	@Tags			lambda
//	@Accept			json
//	@Produce		json
//	@Param			project						path		string			true	"project name"
//	@Param			request						body		BatchRequest	true	"parameter sets and options"
//	@Success		200							{object}	BatchResponse	"every job ended within the wait"
//	@Success		202							{object}	BatchResponse	"some jobs are queued or still run"
//	@Failure		400,404,413,415,422,429,503	{object}	httpapi.Problem
//	@Security		BearerAuth
//	@Router			/api/v1/projects/{project}/lambda/batch [post]
func (s *Service) batch(c *gin.Context) error {
	var req BatchRequest
	if err := httpapi.DecodeJSON(c, &req, s.cfg.MaxBodyBytes, false); err != nil {
		return err
	}
	rec, err := s.load(c)
	if err != nil {
		return err
	}
	opts, errs := s.options(rec, req.Blocks, req.Timeout, req.Wait, req.DeleteExecutionOnFinish)
	if len(req.Items) == 0 || len(req.Items) > s.cfg.MaxBatch {
		errs = append(errs, httpapi.FieldError{Field: "items",
			Message: fmt.Sprintf("must hold 1 to %d parameter sets, got %d", s.cfg.MaxBatch, len(req.Items))})
	}
	invocations := make([]*invocation, 0, len(req.Items))
	for i, item := range req.Items {
		inv, bindErrs := s.bind(rec, fmt.Sprintf("items[%d].parameters", i), item.Parameters, nil)
		errs = append(errs, bindErrs...)
		if inv != nil {
			inv.only, inv.timeout, inv.keep = opts.only, opts.timeout, opts.keep
			invocations = append(invocations, inv)
		}
	}
	if len(errs) > 0 {
		return httpapi.Validation("the batch is invalid and nothing was queued", errs)
	}

	if err := s.sched.Reserve(len(invocations), opts.timeout); err != nil {
		return pool.SubmitProblem(err)
	}
	jobs, err := s.launchAll(c, invocations)
	if err != nil {
		return err
	}
	return s.respondBatch(c, jobs, opts.wait)
}

// launchAll queues the invocations in order. When one cannot be queued,
// it stops the jobs already queued and returns the error.
func (s *Service) launchAll(c *gin.Context, invocations []*invocation) ([]*pool.Job, error) {
	jobs := make([]*pool.Job, 0, len(invocations))
	for i, inv := range invocations {
		job, err := s.launch(c.Request.Context(), inv)
		if err == nil {
			jobs = append(jobs, job)
			continue
		}
		reason := fmt.Sprintf("batch item %d could not be queued", i)
		ctx := context.WithoutCancel(c.Request.Context())
		for _, queued := range jobs {
			if _, stopErr := s.sched.StopJob(ctx, queued.ID, "lambda", reason); stopErr != nil {
				httpapi.Logger(c).Warn("stopping a job of a rejected batch failed", "job_id", queued.ID, "error", stopErr)
			}
		}
		return nil, err
	}
	return jobs, nil
}

// respondBatch writes jobs after waiting up to wait for all of them to
// end: 200 when all ended within a wait, else 202.
func (s *Service) respondBatch(c *gin.Context, jobs []*pool.Job, wait time.Duration) error {
	ctx := c.Request.Context()
	deadline := time.Now().Add(wait)
	allFinal := true
	for i, job := range jobs {
		latest, err := s.latestJob(ctx, job, time.Until(deadline))
		if err != nil {
			return err
		}
		jobs[i] = latest
		allFinal = allFinal && latest.State.Final()
	}
	if ctx.Err() != nil {
		return nil
	}
	status := http.StatusAccepted
	if wait > 0 && allFinal {
		status = http.StatusOK
	}
	c.JSON(status, BatchResponse{Jobs: jobs})
	return nil
}

// latestJob waits up to wait for job to end and returns its latest view.
func (s *Service) latestJob(ctx context.Context, job *pool.Job, wait time.Duration) (*pool.Job, error) {
	if wait > 0 {
		return s.awaitJob(ctx, job, wait)
	}
	latest, err := s.sched.Job(ctx, job.ID)
	if err != nil {
		return nil, fmt.Errorf("reading job %s: %w", job.ID, err)
	}
	return latest, nil
}
