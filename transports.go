package signalhub

import (
	"strconv"
	"strings"

	"github.com/signalhub/signalhub/protocol"
)

// Transports is a set of SignalR transports (Options.Transports). The
// values are the official clients' HttpTransportType flags.
type Transports uint8

const (
	// TransportWebSockets is full-duplex WebSockets, text and binary.
	TransportWebSockets Transports = 1 << iota
	// TransportServerSentEvents streams the server's messages to the
	// client as Server-Sent Events and takes the client's in HTTP POSTs.
	// It carries text only.
	TransportServerSentEvents
	// TransportLongPolling answers the client's HTTP GET polls with the
	// server's messages and takes the client's in HTTP POSTs.
	TransportLongPolling

	// AllTransports is every transport, which is what a zero
	// Options.Transports means.
	AllTransports = TransportWebSockets | TransportServerSentEvents | TransportLongPolling
)

// transportNames are the transports in the order negotiate offers them,
// which is the clients' order of preference.
var transportNames = []struct {
	t       Transports
	name    string
	formats []string
}{
	{TransportWebSockets, protocol.TransportWebSockets, []string{"Text", "Binary"}},
	{TransportServerSentEvents, protocol.TransportServerSentEvents, []string{"Text"}},
	{TransportLongPolling, protocol.TransportLongPolling, []string{"Text", "Binary"}},
}

// String returns the transports' names joined by "|", such as
// "WebSockets|LongPolling".
func (t Transports) String() string {
	var names []string
	for _, n := range transportNames {
		if t&n.t != 0 {
			names = append(names, n.name)
		}
	}
	if rest := t &^ AllTransports; rest != 0 || len(names) == 0 {
		names = append(names, "Transports("+strconv.Itoa(int(t))+")")
	}
	return strings.Join(names, "|")
}

// available lists the transports of t for a negotiate response.
func (t Transports) available() []protocol.AvailableTransport {
	out := make([]protocol.AvailableTransport, 0, 3)
	for _, n := range transportNames {
		if t&n.t != 0 {
			out = append(out, protocol.AvailableTransport{Transport: n.name, TransferFormats: n.formats})
		}
	}
	return out
}

// httpTransports reports whether t holds a transport whose client sends
// its messages in POSTs.
func (t Transports) httpTransports() bool {
	return t&(TransportServerSentEvents|TransportLongPolling) != 0
}
