// Package warden is the domain vocabulary of the warden security control plane for AI agents:
// agents and their credentials, tokens, admin roles, audit events, and the store interfaces.
//
// It depends on the standard library only. Implementations live under internal/, one package per
// concern or dependency; they speak to each other in the terms defined here.
package warden

import (
	"errors"
	"fmt"
	"net/http"
)

// Error codes. They map one to one onto HTTP statuses at the API boundary and onto CLI exit codes.
const (
	EInvalid         = "invalid"         // the request is malformed or fails validation (400)
	EUnauthenticated = "unauthenticated" // no valid credential was presented (401)
	EForbidden       = "forbidden"       // the credential lacks the role or grant (403)
	ENotFound        = "not_found"       // the named thing does not exist (404)
	EConflict        = "conflict"        // the request conflicts with current state (409)
	ETooLarge        = "too_large"       // the request body is over the limit (413)
	ERateLimited     = "rate_limited"    // a budget or rate limit is exhausted (429)
	EUnavailable     = "unavailable"     // a dependency is down; the caller may retry (503)
	EInternal        = "internal"        // a bug or an unexpected failure (500)
)

// Error is an error with a code and a message that is safe to show to the caller. The wrapped
// cause may hold internal detail; it is for the log, never for a response.
type Error struct {
	Code    string
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a formatted public message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// WrapError returns an *Error with a public message that keeps cause for the log.
func WrapError(code, message string, cause error) *Error {
	return &Error{Code: code, Message: message, Err: cause}
}

// ErrorCode returns the code of the first *Error in err's chain, EInternal for any other non-nil
// error, and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}

// ErrorMessage returns the public message of the first *Error in err's chain; any other error
// gets a generic message so that internal detail never reaches a caller.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

var httpStatus = map[string]int{
	EInvalid:         http.StatusBadRequest,
	EUnauthenticated: http.StatusUnauthorized,
	EForbidden:       http.StatusForbidden,
	ENotFound:        http.StatusNotFound,
	EConflict:        http.StatusConflict,
	ETooLarge:        http.StatusRequestEntityTooLarge,
	ERateLimited:     http.StatusTooManyRequests,
	EUnavailable:     http.StatusServiceUnavailable,
}

// HTTPStatus returns the HTTP status that answers err at the API boundary: 500 for anything
// that is not a client's mistake or a known condition.
func HTTPStatus(err error) int {
	if s, ok := httpStatus[ErrorCode(err)]; ok {
		return s
	}
	return http.StatusInternalServerError
}
