import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  buildConnection,
  expectNothingBeforeMarker,
  fetchToken,
  nextMessage,
  signalR,
  signJwtHS256,
  startChatServer,
  stopChatServer,
  uniqueName,
} from "./harness.mjs";

// The official client forced onto Server-Sent Events and Long Polling, and
// walking the transports the server offers. Node has no EventSource of its
// own: @microsoft/signalr requires its `eventsource` dependency for it, so
// these tests need nothing more than the client package.

const TEST_OPTIONS = { timeout: 20000 };
const { HttpTransportType } = signalR;

let server;

before(async () => {
  server = await startChatServer();
});

after(() => stopChatServer(server));

// A client logger that records the transports the client selects, in
// order, and keeps its warnings and errors for failure messages.
function transportLog() {
  return {
    selected: [],
    problems: [],
    log(level, message) {
      const m = /^Selecting transport '(\w+)'/.exec(message);
      if (m) this.selected.push(m[1]);
      if (level >= signalR.LogLevel.Warning) this.problems.push(message);
    },
  };
}

// Starts a connection of user (null: anonymous) with the options given,
// stopped when the test ends, and resolves once an invocation proved the
// server holds it.
async function connect(t, user, options = {}, logger = undefined) {
  const token = user === null ? undefined : await fetchToken(server.baseUrl, user);
  const conn = buildConnection(server.hubUrl, token, options, logger);
  t.after(() => conn.stop());
  await conn.start();
  assert.equal(conn.state, signalR.HubConnectionState.Connected);
  await conn.invoke("WhoAmI");
  return conn;
}

for (const [name, transport] of [["Server-Sent Events", "ServerSentEvents"], ["Long Polling", "LongPolling"]]) {
  describe(name, () => {
    test("invokes, joins a group, gets user and group messages from a WebSocket client, and stops cleanly", TEST_OPTIONS, async (t) => {
      const alice = uniqueName("alice");
      const bob = uniqueName("bob");
      const group = uniqueName("room");
      const log = transportLog();
      const b = await connect(t, bob, { transport: HttpTransportType[transport] }, log);
      assert.deepEqual(log.selected, [transport], `problems: ${log.problems.join("; ")}`);
      assert.deepEqual(await b.invoke("WhoAmI"), { connectionId: b.connectionId, userIdentifier: bob });
      const a = await connect(t, alice);

      await a.invoke("SendPrivateMessage", bob, "psst");
      assert.deepEqual(await nextMessage(b, "ReceiveMessage"), [alice, "psst"]);

      await b.invoke("AddToGroup", group);
      assert.deepEqual(await nextMessage(b, "Send"), [`${b.connectionId} has joined the group ${group}.`]);
      await a.invoke("SendMessageToGroup", group, "hello room");
      assert.deepEqual(await nextMessage(b, "ReceiveMessage"), [alice, "hello room"]);
      await expectNothingBeforeMarker(b, bob);

      await b.invoke("SendPrivateMessage", alice, "hi back");
      assert.deepEqual(await nextMessage(a, "ReceiveMessage"), [bob, "hi back"]);

      const closed = new Promise((resolve) => b.onclose(resolve));
      await b.stop();
      assert.equal(await closed, undefined, "stopped without an error");
      assert.equal(b.state, signalR.HubConnectionState.Disconnected);
      assert.deepEqual(log.problems, []);

      // The group forgot the stopped connection.
      await a.invoke("SendMessageToGroup", group, "anyone?");
      await expectNothingBeforeMarker(a, alice);
    });

    test("a burst of messages arrives whole and in order", TEST_OPTIONS, async (t) => {
      const carol = uniqueName("carol");
      const c = await connect(t, carol, { transport: HttpTransportType[transport] });
      const texts = Array.from({ length: 40 }, (_, i) => `message ${i}`);
      await Promise.all(texts.map((text) => c.invoke("SendMessageToCaller", text)));
      for (const text of texts) {
        assert.deepEqual(await nextMessage(c, "ReceiveMessage"), [carol, text]);
      }
    });

    test("the server's close reaches the client with its reason", TEST_OPTIONS, async (t) => {
      // A token that expires in two to three seconds: the server closes the
      // connection then, with a Close message saying why.
      const exp = Math.floor(Date.now() / 1000) + 3;
      const token = signJwtHS256({ sub: uniqueName("dave"), exp }, server.jwtKey);
      const conn = buildConnection(server.hubUrl, token, { transport: HttpTransportType[transport] }, signalR.LogLevel.None);
      t.after(() => conn.stop());
      const closed = new Promise((resolve) => conn.onclose(resolve));
      await conn.start();
      const err = await closed;
      assert.equal(
        err?.message,
        "Server returned an error on close: Connection closed with an error. The connection's authentication expired; reconnect with a new access token.",
      );
    });
  });
}

describe("fallback", () => {
  test("a client that does not allow WebSockets lands on Server-Sent Events", TEST_OPTIONS, async (t) => {
    const log = transportLog();
    const erin = uniqueName("erin");
    const conn = await connect(t, erin, { transport: HttpTransportType.ServerSentEvents | HttpTransportType.LongPolling }, log);
    assert.deepEqual(log.selected, ["ServerSentEvents"]);
    assert.deepEqual(await conn.invoke("WhoAmI"), { connectionId: conn.connectionId, userIdentifier: erin });
  });

  test("a client whose WebSocket fails negotiates again and goes on with Server-Sent Events", TEST_OPTIONS, async (t) => {
    // A WebSocket that cannot connect, as behind a proxy that refuses them.
    class RefusedWebSocket {
      constructor() {
        throw new Error("WebSockets are blocked here");
      }
    }
    const log = transportLog();
    const frank = uniqueName("frank");
    const conn = await connect(t, frank, { WebSocket: RefusedWebSocket }, log);
    assert.deepEqual(log.selected, ["WebSockets", "ServerSentEvents"]);
    assert.ok(
      log.problems.some((p) => p.includes("Failed to start the transport 'WebSockets'")),
      `the client's log: ${log.problems.join("; ")}`,
    );
    const a = await connect(t, uniqueName("alice"));
    await a.invoke("SendPrivateMessage", frank, "found you");
    assert.equal((await nextMessage(conn, "ReceiveMessage"))[1], "found you");
  });
});
