// Package hresult holds netshare's error vocabulary: the eight failure codes
// that every HNetCfg method documents (E_INVALIDARG, E_FAIL, ...), carried by
// one error type with a message that says which object failed and why.
//
// The daemon, its API and the public Go client share this package, so an
// error keeps its code from the model to the caller.
package hresult

import (
	"errors"
	"fmt"
	"strings"
)

// Code is an HNetCfg failure code, spelled as in netcon.h.
type Code string

// The failure codes documented by every HNetCfg method.
const (
	InvalidArg  Code = "E_INVALIDARG"
	Fail        Code = "E_FAIL"
	Abort       Code = "E_ABORT"
	NotImpl     Code = "E_NOTIMPL"
	NoInterface Code = "E_NOINTERFACE"
	Pointer     Code = "E_POINTER"
	OutOfMemory Code = "E_OUTOFMEMORY"
	Unexpected  Code = "E_UNEXPECTED"
	// AccessDenied is a request without the right credentials (the web
	// UI's token or session).
	AccessDenied Code = "E_ACCESSDENIED"
)

// Valid reports whether c is one of the codes above.
func (c Code) Valid() bool {
	switch c {
	case InvalidArg, Fail, Abort, NotImpl, NoInterface, Pointer, OutOfMemory, Unexpected, AccessDenied:
		return true
	}
	return false
}

// Reason refines a Code where a caller needs to tell cases apart without
// parsing the message: an unknown object, or a clash with an existing one.
type Reason string

// Reasons.
const (
	NotFound Reason = "not-found"
	Conflict Reason = "conflict"
	// Stale is a change based on a revision of the state that is no
	// longer the current one.
	Stale Reason = "stale"
)

// Error is a failure with its HNetCfg code. Message is for people; it names
// the object or field that was wrong and what is allowed.
type Error struct {
	Code   Code   `json:"code"`
	Reason Reason `json:"reason,omitempty"`
	// Field, when set, is the input field that was wrong, as the request
	// names it (a UI shows the message next to that field).
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
	// cause is what the message's %w verbs wrapped, or the error From
	// was given: errors.Is and errors.As see through to it. It does not
	// cross the API.
	cause error
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// Unwrap returns the error's cause, if any.
func (e *Error) Unwrap() error { return e.cause }

// New returns an error with the given code and a message formatted as
// fmt.Errorf formats it: errors wrapped with %w stay its cause.
func New(code Code, format string, args ...any) *Error {
	w := fmt.Errorf(format, args...)
	return &Error{Code: code, Message: w.Error(), cause: causeOf(w)}
}

// causeOf returns what w, made by fmt.Errorf, wraps: nil, one error, or
// several joined.
func causeOf(w error) error {
	switch u := w.(type) {
	case interface{ Unwrap() error }:
		return u.Unwrap()
	case interface{ Unwrap() []error }:
		return errors.Join(u.Unwrap()...)
	}
	return nil
}

// Invalid returns an E_INVALIDARG error about one field of the input.
func Invalid(field, format string, args ...any) *Error {
	e := New(InvalidArg, format, args...)
	e.Field, e.Message = field, field+": "+e.Message
	return e
}

// Missing returns an E_INVALIDARG error for an object that does not exist.
func Missing(format string, args ...any) *Error {
	e := New(InvalidArg, format, args...)
	e.Reason = NotFound
	return e
}

// Clash returns an E_INVALIDARG error for input that collides with an
// existing object.
func Clash(field, format string, args ...any) *Error {
	e := Invalid(field, format, args...)
	e.Reason = Conflict
	return e
}

// From returns err as an *Error: itself if it is one (or wraps one),
// otherwise an E_FAIL that carries err's text.
func From(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Code: Fail, Message: err.Error(), cause: err}
}

// CodeOf returns the code of err, E_FAIL for an error without one, and ""
// for nil.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	return From(err).Code
}

// IsNotFound reports whether err says that an object does not exist.
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Reason == NotFound
}

// Within says where in a document err is: at (such as "connections[2]")
// goes in front of its field, so that "externalPort: ..." becomes
// "connections[2].mappings[0].externalPort: ...". The cause is kept.
func Within(at string, err error) *Error {
	c := *From(err)
	if rest, ok := strings.CutPrefix(c.Message, c.Field+": "); ok && c.Field != "" {
		c.Field = at + "." + c.Field
		c.Message = c.Field + ": " + rest
	} else {
		c.Field = at
		c.Message = at + ": " + c.Message
	}
	return &c
}
