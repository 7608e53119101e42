package httpapi

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
)

// HeaderRequestID carries the request id in requests and responses.
const HeaderRequestID = "X-Request-Id"

const (
	contextRequestID = "lambdaflow.requestID"
	contextLogger    = "lambdaflow.logger"
	problemMediaType = "application/problem+json"
)

// HandlerFunc is a gin handler that returns its error instead of writing
// it. Handle turns the error into the response.
type HandlerFunc func(c *gin.Context) error

// Handle adapts fn to gin: a returned error becomes a problem document.
func Handle(fn HandlerFunc) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := fn(c); err != nil {
			WriteError(c, err)
		}
	}
}

// WriteError writes err as a problem document. Errors that are not a
// *Problem become a 500 and are logged with the request id, since only
// the log may show their text.
func WriteError(c *gin.Context, err error) {
	p := *AsProblem(err)
	p.RequestID = RequestID(c)
	p.Instance = c.Request.URL.Path
	if p.Status >= http.StatusInternalServerError {
		Logger(c).Error("request failed", "error", err, "status", p.Status)
	}
	if p.RetryAfter > 0 {
		c.Header("Retry-After", strconv.Itoa(p.RetryAfter))
	}
	c.Header("Content-Type", problemMediaType)
	c.AbortWithStatusJSON(p.Status, &p)
}

// RequestID returns the id of the request c serves.
func RequestID(c *gin.Context) string {
	return c.GetString(contextRequestID)
}

// Logger returns the request's logger, bound to its request id.
func Logger(c *gin.Context) *slog.Logger {
	if l, ok := c.Get(contextLogger); ok {
		return l.(*slog.Logger)
	}
	return slog.Default()
}

// Middleware assigns a request id (a client's X-Request-Id is kept when
// it is short), binds it to a request logger, recovers panics into a 500
// problem with the stack logged, and logs each request at debug level.
func Middleware(logger *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		id := c.GetHeader(HeaderRequestID)
		if id == "" || len(id) > 64 {
			id = uuid.NewString()
		}
		c.Set(contextRequestID, id)
		c.Header(HeaderRequestID, id)
		reqLogger := logger.With("request_id", id)
		c.Set(contextLogger, reqLogger)

		defer func() {
			if r := recover(); r != nil {
				reqLogger.Error("handler panicked", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				WriteError(c, errors.New("handler panicked"))
			}
		}()
		c.Next()
		reqLogger.Debug("request", "method", c.Request.Method, "path", c.Request.URL.Path, "status", c.Writer.Status())
	}
}

// NoRoute writes a 404 problem for an unknown path.
func NoRoute(c *gin.Context) {
	WriteError(c, NotFound(CodeNotFound, fmt.Sprintf("no route for %s %s", c.Request.Method, c.Request.URL.Path)))
}

// NoMethod writes a 405 problem for a known path with the wrong method.
func NoMethod(c *gin.Context) {
	WriteError(c, NewProblem(http.StatusMethodNotAllowed, CodeMethodNotAllowed, fmt.Sprintf("method %s is not allowed on %s", c.Request.Method, c.Request.URL.Path)))
}
