package lambda

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"

	"github.com/lambdaflow/lambdaflow/internal/httpapi"
	"github.com/lambdaflow/lambdaflow/pool"
)

// launchOnce queues inv unless req's idempotency key already names a job
// of the project, and then returns that job with replayed true. A key
// that names a job queued by a different request is a 409.
func (s *Service) launchOnce(ctx context.Context, inv *invocation, req *InvokeRequest, uploads []upload) (*pool.Job, bool, error) {
	hash, err := requestHash(req, uploads)
	if err != nil {
		return nil, false, err
	}
	// keyMu serialises this process's keyed invocations, so that each
	// process waits for the database lock on one connection at most,
	// and the lock serialises them across the servers on the database.
	s.keyMu.Lock()
	defer s.keyMu.Unlock()
	project, key := inv.rec.Name, req.IdempotencyKey
	unlock, err := s.store.LockIdempotencyKey(ctx, project, key)
	if err != nil {
		return nil, false, err
	}
	defer unlock()

	first, found, err := s.store.IdempotencyKey(ctx, project, key, s.now())
	if err != nil {
		return nil, false, err
	}
	if found {
		if first.RequestHash != hash {
			return nil, false, httpapi.NewProblem(http.StatusConflict, CodeIdempotencyKeyReused,
				fmt.Sprintf("idempotency key %q of project %s was used by a different request for job %s; use a new key for a new request", key, project, first.JobID))
		}
		job, err := s.sched.Job(ctx, first.JobID)
		if err != nil {
			return nil, false, fmt.Errorf("reading job %s of idempotency key %q: %w", first.JobID, key, err)
		}
		return job, true, nil
	}

	job, err := s.launch(ctx, inv)
	if err != nil {
		return nil, false, err
	}
	now := s.now()
	rec := &IdempotencyRecord{
		Project: project, Key: key, RequestHash: hash, JobID: job.ID, InstanceID: inv.instanceID,
		CreatedAt: now, ExpiresAt: now.Add(s.cfg.IdempotencyRetention),
	}
	if err := s.store.PutIdempotencyKey(context.WithoutCancel(ctx), rec); err != nil {
		// The job is queued, and a retry would queue a second one.
		s.log.Error("storing idempotency key failed", "project", project, "job_id", job.ID, "error", err)
	}
	return job, false, nil
}

// requestHash identifies a request for its idempotency key: the SHA-256 of
// its JSON form and of each uploaded file. encoding/json writes map keys
// sorted, so the same request always gives the same hash. The wait is
// left out because it changes how long the caller waits, not the job, and
// a client retrying after a 202 may well ask for a longer one.
func requestHash(req *InvokeRequest, uploads []upload) (string, error) {
	h := sha256.New()
	job := *req
	job.Wait = ""
	body, err := json.Marshal(job)
	if err != nil {
		return "", fmt.Errorf("encoding request for its idempotency key: %w", err)
	}
	h.Write(body)
	sorted := append([]upload(nil), uploads...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].parameter < sorted[j].parameter })
	for _, u := range sorted {
		fmt.Fprintf(h, "\x00%s\x00%s\x00%x", u.parameter, u.name, sha256.Sum256(u.data))
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
