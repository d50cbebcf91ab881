package signalhub

import "errors"

// Errors returned by the hub. Check them with errors.Is: the hub wraps them
// with what it was doing.
var (
	// ErrHubClosed is returned by every method after Shutdown or Close.
	ErrHubClosed = errors.New("signalhub: hub closed")

	// ErrEmptyName is returned when a connection ID, user ID, group name or
	// method target is empty.
	ErrEmptyName = errors.New("signalhub: empty name")

	// ErrConnectionNotFound is returned by group management for a
	// connection ID the hub does not hold.
	ErrConnectionNotFound = errors.New("signalhub: connection not found")

	// ErrUnauthorized is returned by an Authenticator for a request whose
	// credentials are present but not valid. The hub answers it with 401.
	ErrUnauthorized = errors.New("signalhub: unauthorized")

	// ErrSlowConsumer is the cause given to OnDisconnected for a connection
	// that was closed because its outgoing queue was full.
	ErrSlowConsumer = errors.New("signalhub: connection closed: outgoing queue full")

	// ErrClientTimeout is the cause given to OnDisconnected for a connection
	// that sent nothing within Options.ClientTimeout, or, on Long Polling,
	// did not poll within Options.DisconnectTimeout.
	ErrClientTimeout = errors.New("signalhub: connection closed: client timeout")

	// ErrMessageTooLarge is the cause given to OnDisconnected for a
	// connection that sent a record larger than Options.MaxMessageSize.
	ErrMessageTooLarge = errors.New("signalhub: connection closed: message too large")

	// ErrTooManyInvocations is the cause given to OnDisconnected for a
	// connection that had more than Options.MaxPendingInvocations
	// invocations waiting.
	ErrTooManyInvocations = errors.New("signalhub: connection closed: too many pending invocations")

	// ErrUserDisconnected is the cause given to OnDisconnected for a
	// connection closed by Hub.DisconnectUser.
	ErrUserDisconnected = errors.New("signalhub: connection closed: user disconnected by the server")

	// ErrBackplaneUnavailable is wrapped by sends and group changes that
	// could not reach the other nodes of a cluster. Local connections were
	// served all the same.
	ErrBackplaneUnavailable = errors.New("signalhub: backplane unavailable")

	// ErrInvalidName is returned for a group name or user ID that is longer
	// than Options.MaxGroupNameLength or Options.MaxUserIDLength, is not
	// valid UTF-8, or contains control characters.
	ErrInvalidName = errors.New("signalhub: invalid name")

	// ErrTooManyGroups is returned by AddToGroup for a connection that is
	// already in Options.MaxGroupsPerConnection groups.
	ErrTooManyGroups = errors.New("signalhub: connection is in too many groups")

	// ErrAuthExpired is the cause given to OnDisconnected for a connection
	// closed because its credentials expired (see Options.AuthExpiry).
	ErrAuthExpired = errors.New("signalhub: connection closed: authentication expired")

	// ErrRateLimited is the cause given to OnDisconnected for a connection
	// closed because it kept invoking hub methods faster than
	// Options.InvocationRate allows.
	ErrRateLimited = errors.New("signalhub: connection closed: invocation rate limit exceeded")

	// ErrTooManyConnections is the cause given to a connection whose
	// handshake was refused because its user already holds
	// Options.MaxConnectionsPerUser connections (requests beyond the
	// limits are answered 429 or 503 before that).
	ErrTooManyConnections = errors.New("signalhub: too many connections")

	// ErrClientDisconnected is returned by InvokeConnection when the
	// connection ended before it answered, and ends a stream from the
	// client whose connection ended before the stream did.
	ErrClientDisconnected = errors.New("signalhub: connection ended before it answered")

	// ErrBadStreamItem ends a stream from the client that sent an item
	// which does not decode into the stream's item type.
	ErrBadStreamItem = errors.New("signalhub: stream item does not fit the stream's item type")

	// ErrProtocol is the cause given to OnDisconnected for a connection that
	// broke the hub protocol (bad handshake, malformed record, binary data
	// on a text protocol).
	ErrProtocol = errors.New("signalhub: protocol error")
)
