package protocol

// Transport names used in negotiate responses.
const (
	TransportWebSockets       = "WebSockets"
	TransportServerSentEvents = "ServerSentEvents"
	TransportLongPolling      = "LongPolling"
)

// MaxNegotiateVersion is the highest negotiate version a server speaks.
// Version 1 adds the secret connectionToken beside the public connectionId.
const MaxNegotiateVersion = 1

// NegotiateResponse is the body of a successful POST {hub}/negotiate.
type NegotiateResponse struct {
	// NegotiateVersion is the version the server chose.
	NegotiateVersion int `json:"negotiateVersion"`
	// ConnectionID is the public ID of the new connection.
	ConnectionID string `json:"connectionId"`
	// ConnectionToken is the secret the client connects with (version 1
	// and later; version 0 clients connect with the ConnectionID).
	ConnectionToken string `json:"connectionToken,omitempty"`
	// AvailableTransports lists the transports in the server's order of
	// preference.
	AvailableTransports []AvailableTransport `json:"availableTransports"`
	// UseStatefulReconnect is set only when the client asked for stateful
	// reconnect and the server allows it.
	UseStatefulReconnect bool `json:"useStatefulReconnect,omitempty"`
}

// AvailableTransport is one entry of NegotiateResponse.AvailableTransports.
type AvailableTransport struct {
	// Transport is TransportWebSockets, TransportServerSentEvents or
	// TransportLongPolling.
	Transport string `json:"transport"`
	// TransferFormats are "Text" and/or "Binary".
	TransferFormats []string `json:"transferFormats"`
}

// NegotiateError is the body the server sends, with status 200, when it
// refuses to negotiate; the client surfaces Error to the application.
type NegotiateError struct {
	// Error is the reason, shown to the application by the client.
	Error string `json:"error"`
}
