package lambda

import (
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/lambdaflow/lambdaflow/internal/httpapi"
)

// executionFormField is the multipart form field of uploadandexecute that
// holds the JSON lambda request.
const executionFormField = "execution"

// workflowUploadExecute godoc
//
//	@Summary		Upload files and run an instance (Omniscope style)
//	@ID				workflowUploadAndExecute
//	@Description	Multipart form: the field "execution" holds a lambdaexecute body, and each update {"name": P, "formDataKey": K} takes the file part named K as the value of the FILE parameter P. The files are stored with the instance, as for a native multipart lambda invocation.
//	@Tags			omniscope
//	@Accept			mpfd
//	@Produce		json
//	@Param			project						path		string	true	"project name"
//	@Param			execution					formData	string	true	"the lambdaexecute body as JSON"
//	@Success		200							{object}	WorkflowLambdaResponse
//	@Failure		400,404,413,415,422,429,503	{object}	WorkflowError
//	@Security		BearerAuth
//	@Router			/{project}/w/uploadandexecute [post]
func (s *Service) workflowUploadExecute(c *gin.Context) error {
	if c.ContentType() != "multipart/form-data" {
		return httpapi.NewProblem(http.StatusUnsupportedMediaType, httpapi.CodeUnsupportedMediaType,
			fmt.Sprintf("content type %q is not supported; send multipart/form-data with the request in the form field %q", c.ContentType(), executionFormField))
	}
	if s.cfg.FilesDir == "" {
		return httpapi.NewProblem(http.StatusUnsupportedMediaType, httpapi.CodeUnsupportedMediaType,
			"file uploads are disabled because the server has no files directory; use lambdaexecute")
	}
	var req WorkflowLambdaRequest
	parts, err := s.readMultipart(c, executionFormField, &req)
	if err != nil {
		return err
	}
	errs := checkUpdates(&req, true)
	uploads, matchErrs := matchParts(&req, parts)
	errs = append(errs, matchErrs...)
	if len(errs) > 0 {
		return httpapi.Validation("the upload request is invalid", errs)
	}
	return s.runWorkflowLambda(c, &req, uploads)
}

// matchParts returns the file parts as uploads of the parameters whose
// updates name them through formDataKey. Every part must be named by one
// update and every formDataKey must name one part.
func matchParts(req *WorkflowLambdaRequest, parts []upload) ([]upload, []httpapi.FieldError) {
	byKey := map[string]upload{}
	var errs []httpapi.FieldError
	for _, part := range parts {
		if _, dup := byKey[part.parameter]; dup {
			errs = append(errs, httpapi.FieldError{Field: part.parameter, Message: fmt.Sprintf("more than one file part is named %q", part.parameter)})
		}
		byKey[part.parameter] = part
	}

	var uploads []upload
	used := map[string]bool{}
	if req.Params != nil {
		for i, u := range req.Params.Updates {
			if u.FormDataKey == "" {
				continue
			}
			part, found := byKey[u.FormDataKey]
			if !found {
				errs = append(errs, httpapi.FieldError{Field: fmt.Sprintf("params.updates[%d].formDataKey", i),
					Message: fmt.Sprintf("names no file part: %q", u.FormDataKey)})
				continue
			}
			used[u.FormDataKey] = true
			uploads = append(uploads, upload{parameter: u.Name, name: part.name, data: part.data})
		}
	}
	for _, part := range parts {
		if !used[part.parameter] {
			errs = append(errs, httpapi.FieldError{Field: part.parameter,
				Message: fmt.Sprintf("file part %q is named by no formDataKey in params.updates", part.parameter)})
		}
	}
	return uploads, errs
}
