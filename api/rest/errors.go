package rest

import (
	"errors"
	"net/http"
	"strings"

	"github.com/krestianstvo/luminary/auth"
	"github.com/krestianstvo/luminary/heartbeat"
)

// Code is a stable, machine-readable error code. Every refusal is answered
// with the JSON body {"error": {"code": code, "message": text}}; clients
// branch on the code, never on the message.
type Code string

// The error codes and their HTTP statuses.
const (
	CodeBadJSON          Code = "bad_json"               // 400: body is not the expected JSON (syntax, types, unknown or duplicate members)
	CodeInvalid          Code = "invalid"                // 400: well-formed but unacceptable value (bad key, range, path parameter)
	CodeUnauthenticated  Code = "unauthenticated"        // 401: signature missing, malformed, stale, replayed or wrong
	CodeForbidden        Code = "forbidden"              // 403: the signer may not do this
	CodeNotMember        Code = "not_member"             // 403: the signer is not a member of the private world
	CodeNotFound         Code = "not_found"              // 404: no such world or route
	CodeMethodNotAllowed Code = "method_not_allowed"     // 405: the route exists with other methods
	CodeConflict         Code = "conflict"               // 409: it exists already
	CodeTooLarge         Code = "too_large"              // 413: body over the cap
	CodeUnsupportedMedia Code = "unsupported_media_type" // 415: wrong Content-Type for the body
	CodeRateLimited      Code = "rate_limited"           // 429: over a rate or concurrency limit
	CodeInternal         Code = "internal"               // 500: a fault of the relay (logged, details withheld)
	CodeUnavailable      Code = "unavailable"            // 503: shutting down, or not the sequencer now
)

// Codes lists every code, for documentation and tests.
var Codes = []Code{CodeBadJSON, CodeInvalid, CodeUnauthenticated, CodeForbidden, CodeNotMember,
	CodeNotFound, CodeMethodNotAllowed, CodeConflict, CodeTooLarge, CodeUnsupportedMedia,
	CodeRateLimited, CodeInternal, CodeUnavailable}

// Status returns the HTTP status that goes with c.
func (c Code) Status() int {
	switch c {
	case CodeBadJSON, CodeInvalid:
		return http.StatusBadRequest
	case CodeUnauthenticated:
		return http.StatusUnauthorized
	case CodeForbidden, CodeNotMember:
		return http.StatusForbidden
	case CodeNotFound:
		return http.StatusNotFound
	case CodeMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case CodeConflict:
		return http.StatusConflict
	case CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case CodeUnsupportedMedia:
		return http.StatusUnsupportedMediaType
	case CodeRateLimited:
		return http.StatusTooManyRequests
	case CodeUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// Error is an API refusal: a code and a message safe to show the client.
// Handlers return it; [CodeOf] also understands Service errors.
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string { return "rest: " + string(e.Code) + ": " + e.Message }

func fail(c Code, msg string) *Error { return &Error{Code: c, Message: msg} }

// CodeOf maps an error to its code and a message safe to send: an *Error
// as is; the Service sentinels; heartbeat's wire sentinels (by their
// prefix: "invalid:" is invalid, "restricted:" forbidden, "rate-limited:"
// rate_limited, "blocked:" unavailable, "duplicate:" conflict; unknown
// instance not_found) and auth's refusals likewise. Anything else is internal, with a generic
// message.
func CodeOf(err error) (Code, string) {
	var e *Error
	if errors.As(err, &e) {
		return e.Code, e.Message
	}
	switch {
	case errors.Is(err, ErrNotFound), errors.Is(err, heartbeat.ErrUnknownInstance):
		return CodeNotFound, msgOf(err, "not found")
	case errors.Is(err, ErrConflict):
		return CodeConflict, msgOf(err, "already exists")
	case errors.Is(err, ErrForbidden):
		return CodeForbidden, msgOf(err, "forbidden")
	case errors.Is(err, ErrInvalid), errors.Is(err, auth.ErrCert):
		return CodeInvalid, msgOf(err, "invalid")
	case errors.Is(err, ErrUnavailable), errors.Is(err, heartbeat.ErrNotSequencer), errors.Is(err, heartbeat.ErrClosed):
		return CodeUnavailable, msgOf(err, "unavailable")
	case errors.Is(err, ErrRateLimited), errors.Is(err, heartbeat.ErrQueueFull):
		return CodeRateLimited, msgOf(err, "rate limited")
	}
	var ref *auth.Refusal
	if errors.As(err, &ref) {
		switch ref.Prefix {
		case auth.PrefixInvalid:
			return CodeInvalid, ref.Error()
		case auth.PrefixRestricted, auth.PrefixAuthRequired:
			return CodeForbidden, ref.Error()
		case auth.PrefixDuplicate:
			return CodeConflict, ref.Error()
		}
	}
	if r := heartbeat.Reason(err); r != "invalid: rejected" {
		switch {
		case strings.HasPrefix(r, "invalid:"):
			return CodeInvalid, r
		case strings.HasPrefix(r, "restricted:"):
			return CodeForbidden, r
		case strings.HasPrefix(r, "rate-limited:"):
			return CodeRateLimited, r
		case strings.HasPrefix(r, "blocked:"):
			return CodeUnavailable, r
		case strings.HasPrefix(r, "duplicate:"):
			return CodeConflict, r
		}
	}
	return CodeInternal, "internal error"
}

// msgOf returns the text of err without the sentinel's "rest: " prefix, or
// def when err is exactly a sentinel.
func msgOf(err error, def string) string {
	s := err.Error()
	s = strings.TrimPrefix(s, "rest: ")
	if s == "" {
		return def
	}
	return s
}
