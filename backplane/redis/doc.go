// Package redis is a backplane.Backplane engine that joins hub nodes through
// Redis pub/sub. It lives in a module of its own, so that importing the hub
// never puts a Redis client into a build that does not use this engine.
//
// Each hub node gets its own [Backplane], built by [New] from a
// *goredis.Client that the application creates and owns: dialing, TLS,
// authentication and pooling stay in its hands, and [Backplane.Close] leaves
// the client open.
//
//	client := goredis.NewClient(&goredis.Options{Addr: "localhost:6379"})
//	defer client.Close()
//	bp, err := redis.New(redis.Options{Client: client})
//	if err != nil {
//		return err
//	}
//	hub, err := signalhub.New(&signalhub.Options{Backplane: bp})
//
// # Channels
//
// A hub channel c becomes the Redis channel Prefix + ":" + c, matched
// exactly: the engine uses SUBSCRIBE, never PSUBSCRIBE, so wildcard
// characters in a channel name are plain bytes. Hubs that share a Redis
// server but not their traffic use different prefixes.
//
// # Delivery
//
// Publish is one PUBLISH on the client's connection pool. It is never
// retried, even when the client's MaxRetries would allow it: a PUBLISH
// whose reply was lost may have reached the subscribers already, and the
// backplane promises at most once.
//
// All the subscriptions of a node share one pub/sub connection. One
// goroutine reads from it and queues the messages for a second one that
// calls the Handler, so that a Handler may call Subscribe and Unsubscribe,
// which wait for Redis to confirm them on that same connection. The queue
// holds 4096 messages. When it is full because the Handler is slow, the
// reader stops reading: Redis then buffers the node's messages, up to its
// client-output-buffer-limit for pub/sub clients, and past that limit
// drops the connection, which the engine reopens (the messages in between
// are lost, as the backplane's at-most-once rule allows). While a
// Subscribe or Unsubscribe waits for its confirmation the reader does not
// stop, since the waiting call may be the Handler's own: it takes up to
// 4096 more messages and drops what comes beyond that, with a warning in
// the log.
//
// # Outages
//
// When the pub/sub connection breaks, the engine logs a warning and
// reconnects by itself, backing off up to a second between attempts, and
// go-redis subscribes the new connection to every channel of the node, so
// a hub's subscriptions survive a Redis restart without its help. Messages
// published while a node is cut off are lost. Until the connection is back,
// Subscribe fails at once and Publish fails as soon as the client does;
// both return errors wrapping backplane.ErrUnavailable. A server that
// disappears without closing the connection is noticed through TCP
// keep-alive, which go-redis's default dialer enables (after about 45
// seconds); a custom Options.Dialer of the client should enable it too.
//
// Calls wait no longer than their context, with one exception: the
// pub/sub connection is shared, and while go-redis dials it again, which
// the client's DialTimeout and DialerRetries bound, Unsubscribe (and a
// Subscribe that started before the engine noticed the outage) wait for
// that attempt to end.
package redis
