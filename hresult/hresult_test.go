package hresult

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"testing"
)

// TestErrorsKeepTheirCause: an error made with %w, or by From, unwraps to
// its cause, while its code, message and JSON form stay as they were.
func TestErrorsKeepTheirCause(t *testing.T) {
	cause := &os.PathError{Op: "open", Path: "/x", Err: fs.ErrPermission}
	for _, tc := range []struct {
		name string
		err  *Error
		code Code
		msg  string
	}{
		{"New", New(Fail, "writing settings: %w", cause), Fail, "writing settings: open /x: permission denied"},
		{"New, two causes", New(Fail, "%w and %w", cause, errors.New("other")), Fail, "open /x: permission denied and other"},
		{"Invalid", Invalid("name", "reading %s: %w", "x", cause), InvalidArg, "name: reading x: open /x: permission denied"},
		{"Missing", Missing("no %s: %w", "x", cause), InvalidArg, "no x: open /x: permission denied"},
		{"Clash", Clash("name", "taken: %w", cause), InvalidArg, "name: taken: open /x: permission denied"},
		{"From", From(cause), Fail, "open /x: permission denied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !errors.Is(tc.err, fs.ErrPermission) {
				t.Errorf("%v does not unwrap to its cause", tc.err)
			}
			var pe *os.PathError
			if !errors.As(tc.err, &pe) || pe != cause {
				t.Errorf("errors.As did not find the *os.PathError in %v", tc.err)
			}
			if tc.err.Code != tc.code || tc.err.Message != tc.msg {
				t.Errorf("code %s, message %q; want %s, %q", tc.err.Code, tc.err.Message, tc.code, tc.msg)
			}
			b, _ := json.Marshal(tc.err)
			var back Error
			if err := json.Unmarshal(b, &back); err != nil || back.Message != tc.msg || back.Unwrap() != nil {
				t.Errorf("JSON %s: the cause crossed the wire or the message changed", b)
			}
		})
	}
	if e := New(Fail, "no cause %v", 1); e.Unwrap() != nil {
		t.Errorf("an error without %%w has a cause: %v", e.Unwrap())
	}
}
