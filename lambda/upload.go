package lambda

import (
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/lambdaflow/lambdaflow/internal/httpapi"
	"github.com/lambdaflow/lambdaflow/projects"
)

// requestFormField is the multipart form field that holds the JSON body.
const requestFormField = "request"

// upload is one file part of a multipart invocation.
type upload struct {
	// parameter is the form name, which names a file parameter.
	parameter string
	// name is the base name the file is stored under.
	name string
	data []byte
}

// invokeUpload reads a multipart invocation: the JSON body in the form
// field "request" and one file part per file parameter, all within
// MaxUploadBytes. The files are held in memory until the request is
// checked, then written to the instance's directory.
func (s *Service) invokeUpload(c *gin.Context) error {
	if s.cfg.FilesDir == "" {
		return httpapi.NewProblem(http.StatusUnsupportedMediaType, httpapi.CodeUnsupportedMediaType,
			"file uploads are disabled because the server has no files directory; send application/json")
	}
	var req InvokeRequest
	uploads, err := s.readMultipart(c, requestFormField, &req)
	if err != nil {
		return err
	}
	return s.run(c, &req, uploads)
}

// readMultipart reads a multipart body of at most MaxUploadBytes. The
// form field named field holds a JSON request, decoded strictly into req,
// and every part with a file name becomes an upload named after its form
// field. Any other form field is a 400.
func (s *Service) readMultipart(c *gin.Context, field string, req any) ([]upload, error) {
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, s.cfg.MaxUploadBytes)
	reader, err := c.Request.MultipartReader()
	if err != nil {
		return nil, httpapi.BadRequest("", fmt.Sprintf("reading multipart form: %v", err))
	}
	var uploads []upload
	seenField := false
	for parts := 0; ; parts++ {
		part, err := reader.NextPart()
		if errors.Is(err, io.EOF) && parts == 0 {
			// Go's reader also ends this way on a body without a single
			// boundary line, such as text sent with a multipart type.
			return nil, httpapi.BadRequest("", "the multipart body holds no parts; send the JSON request in the form field "+
				fmt.Sprintf("%q", field)+" or send application/json")
		}
		if errors.Is(err, io.EOF) {
			return uploads, nil
		}
		if err != nil {
			return nil, s.uploadProblem(err)
		}
		if part.FormName() == field {
			if seenField {
				part.Close()
				return nil, httpapi.BadRequest(field, fmt.Sprintf("form field %q appears more than once; send one JSON body", field))
			}
			seenField = true
		}
		uploads, err = s.readPart(part, field, req, uploads)
		if err != nil {
			return nil, err
		}
	}
}

// readPart reads one part into req or appends it to uploads.
func (s *Service) readPart(part *multipart.Part, field string, req any, uploads []upload) ([]upload, error) {
	defer part.Close()
	data, err := io.ReadAll(part)
	if err != nil {
		return nil, s.uploadProblem(err)
	}
	name := part.FormName()
	// Browsers give a Blob appended to FormData a file name, so the JSON
	// body is recognised by its form name whether or not it has one.
	if part.FileName() != "" && name != field {
		return append(uploads, upload{parameter: name, name: storedName(part.FileName()), data: data}), nil
	}
	if name != field {
		return nil, httpapi.BadRequest(name, fmt.Sprintf("unknown form field %q; send the JSON body as %q and files with a file name", name, field))
	}
	// The native field is strict; Omniscope clients may send fields this
	// service does not know.
	if err := httpapi.Unmarshal(data, req, field == requestFormField); err != nil {
		p := httpapi.AsProblem(err)
		return nil, httpapi.BadRequest(field, fmt.Sprintf("form field %q is not a valid lambda request: %s", field, p.Detail))
	}
	return uploads, nil
}

func (s *Service) uploadProblem(err error) error {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return httpapi.NewProblem(http.StatusRequestEntityTooLarge, httpapi.CodePayloadTooLarge,
			fmt.Sprintf("multipart request body exceeds %d bytes", s.cfg.MaxUploadBytes))
	}
	return httpapi.BadRequest("", fmt.Sprintf("reading multipart form: %v", err))
}

// storedName returns the base name of a client's file name, or "upload"
// when nothing usable is left.
func storedName(fileName string) string {
	base := path.Base(strings.ReplaceAll(fileName, `\`, "/"))
	if base == "." || base == ".." || base == "/" || strings.ContainsFunc(base, unicode.IsControl) {
		return "upload"
	}
	if len(base) > maxStoredName {
		// File systems limit a name to 255 bytes: keep the extension and
		// as much of the start as fits.
		ext := path.Ext(base)
		if len(ext) > 16 {
			ext = ""
		}
		cut := maxStoredName - len(ext)
		for cut > 0 && !utf8.RuneStart(base[cut]) {
			cut--
		}
		base = base[:cut] + ext
	}
	return base
}

// maxStoredName is the longest stored file name in bytes, below the
// 255-byte limit of common file systems.
const maxStoredName = 200

// withUploads returns params with each upload as the value of its file
// parameter: its path relative to the files directory.
func withUploads(rec *projects.Record, field string, params map[string]any, instanceID string, uploads []upload) (map[string]any, []httpapi.FieldError) {
	errs := uploadPathErrors(rec, field, params)
	if len(uploads) == 0 {
		return params, errs
	}
	values := make(map[string]any, len(params)+len(uploads))
	for k, v := range params {
		values[k] = v
	}
	seen := map[string]bool{}
	for _, u := range uploads {
		at := field + "." + u.parameter
		_, given := params[u.parameter]
		switch {
		case !isFileParameter(rec, u.parameter):
			errs = append(errs, httpapi.FieldError{Field: at, Message: fmt.Sprintf("file part %q names no file parameter of project %s", u.parameter, rec.Name)})
		case seen[u.parameter]:
			errs = append(errs, httpapi.FieldError{Field: at, Message: fmt.Sprintf("more than one file part is named %q", u.parameter)})
		case given:
			errs = append(errs, httpapi.FieldError{Field: at, Message: "is given both as a file part and in parameters; send one of them"})
		default:
			values[u.parameter] = instanceFilePath(instanceID, u.parameter, u.name)
		}
		seen[u.parameter] = true
	}
	return values, errs
}

// uploadPathErrors rejects a file parameter given as a path into the
// uploads directory, where the files of other instances are kept: an
// instance reads only the files uploaded with it.
func uploadPathErrors(rec *projects.Record, field string, params map[string]any) []httpapi.FieldError {
	var errs []httpapi.FieldError
	for name, v := range params {
		s, ok := v.(string)
		if !ok || !isFileParameter(rec, name) {
			continue
		}
		clean := path.Clean(strings.ReplaceAll(s, `\`, "/"))
		if clean == instancesDirName || strings.HasPrefix(clean, instancesDirName+"/") {
			errs = append(errs, httpapi.FieldError{Field: field + "." + name,
				Message: fmt.Sprintf("must not point into %s/, which holds the uploads of other instances; upload the file with this request instead", instancesDirName)})
		}
	}
	return errs
}

func isFileParameter(rec *projects.Record, name string) bool {
	for _, def := range rec.Parameters {
		if def.Name == name {
			return def.Type == projects.TypeFile
		}
	}
	return false
}

// storeUploads writes inv's uploaded files into the instance's directory,
// FilesDir/.instances/<instance id>/<parameter>/<file name>.
func (s *Service) storeUploads(inv *invocation) error {
	if len(inv.uploads) == 0 {
		return nil
	}
	root := s.instanceDir(inv.instanceID)
	for _, u := range inv.uploads {
		dir := filepath.Join(root, u.parameter)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			s.discardUploads(inv.instanceID)
			return fmt.Errorf("creating directory of instance %s: %w", inv.instanceID, err)
		}
		if err := os.WriteFile(filepath.Join(dir, u.name), u.data, 0o644); err != nil {
			s.discardUploads(inv.instanceID)
			return fmt.Errorf("storing file %s of instance %s: %w", u.name, inv.instanceID, err)
		}
	}
	return nil
}

// discardUploads removes the directory of an instance that was not
// queued.
func (s *Service) discardUploads(instanceID string) {
	dir := s.instanceDir(instanceID)
	if dir == "" {
		return
	}
	if err := os.RemoveAll(dir); err != nil {
		s.log.Error("removing files of an instance that was not queued failed", "instance_id", instanceID, "error", err)
	}
}
