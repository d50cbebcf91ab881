package backplane

import "errors"

// Errors of the contract. Engines wrap them with what they were doing;
// check them with errors.Is.
var (
	// ErrUnavailable is wrapped by the errors of an engine that cannot
	// reach its server, or cannot take a message right now. The hub logs
	// it and carries on: its local deliveries do not depend on the
	// backplane.
	ErrUnavailable = errors.New("backplane: unavailable")

	// ErrClosed is returned by every method of a Backplane after Close.
	ErrClosed = errors.New("backplane: closed")

	// ErrMalformed is wrapped by every error of Message.UnmarshalBinary
	// and by the errors of Message.AppendBinary for a Message that has no
	// valid encoding.
	ErrMalformed = errors.New("backplane: malformed message")
)
