package pool

import (
	"fmt"

	"github.com/lambdaflow/lambdaflow/internal/httpapi"
)

// applyJobTimeout gives sub the default JobTimeout when it sets none, and
// rejects a Timeout above MaxJobTimeout with a 422 problem naming the
// field "timeout", the name that every request body and project
// definition gives it.
func (cfg Config) applyJobTimeout(sub Submission) (Submission, error) {
	if sub.Timeout == 0 {
		sub.Timeout = cfg.JobTimeout
	}
	if cfg.MaxJobTimeout > 0 && sub.Timeout > cfg.MaxJobTimeout {
		message := fmt.Sprintf("timeout %s exceeds the maximum job timeout %s; ask for %s or less", sub.Timeout, cfg.MaxJobTimeout, cfg.MaxJobTimeout)
		return sub, httpapi.Validation(message, []httpapi.FieldError{{Field: "timeout", Message: message}})
	}
	return sub, nil
}
