package httpapi

import (
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"
)

const contextBodyLimit = "lambdaflow.bodyLimit"

// LimitBody returns a middleware that bounds every request body. A body
// sent as multipart/form-data may have up to uploadBytes, any other body
// up to maxBytes. A Content-Length above the limit is rejected before any
// of the body is read, and a body of unknown length, such as a chunked
// one, is cut at the limit with http.MaxBytesReader, so that reading past
// it fails. writeError writes the 413 problem in the route's error shape.
func LimitBody(maxBytes, uploadBytes int64, writeError func(*gin.Context, error)) gin.HandlerFunc {
	return func(c *gin.Context) {
		limit := maxBytes
		if c.ContentType() == "multipart/form-data" {
			limit = uploadBytes
		}
		if c.Request.ContentLength > limit {
			// The unread body is not worth draining: closing the
			// connection after the response costs the client less.
			c.Header("Connection", "close")
			writeError(c, TooLarge(limit))
			return
		}
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, limit)
		c.Set(contextBodyLimit, limit)
		c.Next()
	}
}

// BodyLimit returns the body limit LimitBody set for c's request, or 0
// when no such middleware ran.
func BodyLimit(c *gin.Context) int64 {
	limit, _ := c.Get(contextBodyLimit)
	n, _ := limit.(int64)
	return n
}

// TooLarge returns the 413 PAYLOAD_TOO_LARGE problem for a body over
// limit bytes.
func TooLarge(limit int64) *Problem {
	return NewProblem(http.StatusRequestEntityTooLarge, CodePayloadTooLarge,
		fmt.Sprintf("request body exceeds %d bytes; send a smaller body", limit))
}
