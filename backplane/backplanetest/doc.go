// Package backplanetest tests code that uses a backplane.Backplane, and
// engines that implement one.
//
// [Bus] is an in-memory broker whose nodes behave like a real engine's:
// each has its own delivery goroutine and a bounded queue, Publish fails
// with backplane.ErrUnavailable when the broker is down or a subscriber has
// fallen behind, and channel names are matched exactly. Tests of hub
// clusters run over it.
//
// [Run] is the conformance suite that every engine passes, as
// testing/fstest.TestFS is for file systems. Its argument returns a new
// node of one cluster each time it is called; for the Bus:
//
//	func TestBus(t *testing.T) {
//		bus := backplanetest.NewBus()
//		backplanetest.Run(t, func(*testing.T) backplane.Backplane { return bus.Node() })
//	}
//
// An engine backed by a server builds a new client for each node and gives
// the nodes of each test a channel prefix of their own.
//
// The package imports only backplane and the standard library, and reports
// through testing.T, so tests may use any assertion library.
package backplanetest
