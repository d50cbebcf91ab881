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
	NegotiateVersion     int                  `json:"negotiateVersion"`
	ConnectionID         string               `json:"connectionId"`
	ConnectionToken      string               `json:"connectionToken,omitempty"`
	AvailableTransports  []AvailableTransport `json:"availableTransports"`
	UseStatefulReconnect bool                 `json:"useStatefulReconnect,omitempty"`
}

// AvailableTransport is one entry of NegotiateResponse.AvailableTransports.
type AvailableTransport struct {
	Transport       string   `json:"transport"`
	TransferFormats []string `json:"transferFormats"`
}

// NegotiateError is the body the server sends, with status 200, when it
// refuses to negotiate; the client surfaces Error to the application.
type NegotiateError struct {
	Error string `json:"error"`
}
