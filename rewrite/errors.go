// Package rewrite holds the pure rewriting rules of harbormirror: how a client's registry request
// maps onto a Harbor project, and how Harbor's answers map back. It knows nothing of net/http
// handlers; the plugin glues it to them.
package rewrite

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// Error is a refusal in the registry's own error vocabulary, answered without reaching Harbor.
type Error struct {
	Status  int
	Code    string
	Message string
	Detail  string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message + ": " + e.Detail }

// Body is the registry's JSON error document for e.
func (e *Error) Body() []byte {
	entry := map[string]string{"code": e.Code, "message": e.Message}
	if e.Detail != "" {
		entry["detail"] = e.Detail
	}
	// Marshalling a map of strings cannot fail.
	body, _ := json.Marshal(map[string][]map[string]string{"errors": {entry}})
	return body
}

func nameInvalid(detail string) *Error {
	return &Error{http.StatusBadRequest, "NAME_INVALID", "invalid repository name", detail}
}

func nameUnknown(detail string) *Error {
	return &Error{http.StatusNotFound, "NAME_UNKNOWN", "repository name not known to registry", detail}
}

func notFound(detail string) *Error {
	return &Error{http.StatusNotFound, "NOT_FOUND", "not found", detail}
}

func unsupported(status int, detail string) *Error {
	return &Error{status, "UNSUPPORTED", "the operation is unsupported", detail}
}

// NotFound refuses a path this host does not serve.
func NotFound(detail string) *Error { return notFound(detail) }

// MethodNotAllowed refuses a method on a path, e.g. a write to a read-only mirror.
func MethodNotAllowed(detail string) *Error {
	return unsupported(http.StatusMethodNotAllowed, detail)
}

// BadRequest refuses malformed input that has no more specific registry code.
func BadRequest(detail string) *Error {
	return &Error{http.StatusBadRequest, "UNSUPPORTED", "malformed request", detail}
}

// TargetTooLong refuses a request target over MaxRequestTarget.
func TargetTooLong() *Error {
	return &Error{http.StatusRequestURITooLong, "UNSUPPORTED", "request target too long",
		"a registry or token request's path and query are limited to " + strconv.Itoa(MaxRequestTarget) + " bytes"}
}

// TooLarge refuses a request body over the limit the plugin will read.
func TooLarge(detail string) *Error {
	return &Error{http.StatusRequestEntityTooLarge, "SIZE_INVALID", "request body too large", detail}
}
