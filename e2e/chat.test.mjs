import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  buildConnection,
  decodeJwt,
  expectNothingBeforeMarker,
  fetchToken,
  inboxOf,
  nextMessage,
  signalR,
  signJwtHS256,
  startChatServer,
  stopChatServer,
  uniqueName,
  websocketUpgradeStatus,
} from "./harness.mjs";

const QUIET = signalR.LogLevel.None;

const TEST_OPTIONS = { timeout: 20000 };

let server;

before(async () => {
  server = await startChatServer();
});

after(() => stopChatServer(server));

// start() resolves once the handshake response arrives, which the server may
// send just before it adds the connection to its audiences. A completed
// invocation on the new connection proves the server has processed it, so
// messages sent afterwards by other clients can reach it.
async function startSettled(conn) {
  await conn.start();
  assert.equal(conn.state, signalR.HubConnectionState.Connected);
  await conn.invoke("WhoAmI");
}

// Opens a hub connection (anonymous when user is null) that is stopped when
// the test ends, whatever its outcome.
async function connect(t, user, options = {}) {
  const token = user === null ? undefined : await fetchToken(server.baseUrl, user);
  const conn = buildConnection(server.hubUrl, token, options);
  t.after(() => conn.stop());
  await startSettled(conn);
  return conn;
}

function joinedText(connectionId, group) {
  return `${connectionId} has joined the group ${group}.`;
}

function leftText(connectionId, group) {
  return `${connectionId} has left the group ${group}.`;
}

async function expectStartRejectedWith401(t, token) {
  const conn = buildConnection(server.hubUrl, token, {}, QUIET);
  t.after(() => conn.stop());
  await assert.rejects(conn.start(), (err) => {
    assert.match(String(err?.message ?? err), /401/, `start() rejected, but not with a 401: ${err?.message ?? err}`);
    return true;
  });
  assert.equal(conn.state, signalR.HubConnectionState.Disconnected);
  assert.equal(conn.connectionId, null);

  const res = await fetch(`${server.hubUrl}/negotiate?negotiateVersion=1`, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}` },
  });
  await res.arrayBuffer();
  assert.equal(res.status, 401, "negotiate with this token must answer 401");
}

describe("HTTP endpoints", () => {
  test("GET /token issues an HS256 JWT for the user with a one hour default lifetime", TEST_OPTIONS, async () => {
    const res = await fetch(`${server.baseUrl}/token?user=alice`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/plain/);
    const token = (await res.text()).trim();
    const { header, payload } = decodeJwt(token);
    assert.equal(header.alg, "HS256");
    assert.equal(payload.sub, "alice");
    const now = Math.floor(Date.now() / 1000);
    assert.ok(Math.abs(payload.exp - (now + 3600)) <= 5, `exp ${payload.exp} should be about now+3600 (${now + 3600})`);
  });

  test("GET /token honours ttl", TEST_OPTIONS, async () => {
    const token = await fetchToken(server.baseUrl, "bob", 120);
    const { payload } = decodeJwt(token);
    assert.equal(payload.sub, "bob");
    const now = Math.floor(Date.now() / 1000);
    assert.ok(Math.abs(payload.exp - (now + 120)) <= 5, `exp ${payload.exp} should be about now+120 (${now + 120})`);
  });

  test("GET / serves the chat page", TEST_OPTIONS, async () => {
    const res = await fetch(`${server.baseUrl}/`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/html/);
    const body = await res.text();
    assert.match(body, /<html|<!doctype html/i);
  });

  test("POST /chathub/negotiate offers WebSockets with a connection token", TEST_OPTIONS, async () => {
    const res = await fetch(`${server.hubUrl}/negotiate?negotiateVersion=1`, { method: "POST" });
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.negotiateVersion, 1);
    assert.equal(typeof body.connectionId, "string");
    assert.ok(body.connectionId.length > 0);
    assert.equal(typeof body.connectionToken, "string");
    assert.ok(body.connectionToken.length > 0);
    assert.ok(Array.isArray(body.availableTransports));
    const ws = body.availableTransports.find((tr) => tr.transport === "WebSockets");
    assert.ok(ws, `WebSockets missing from ${JSON.stringify(body.availableTransports)}`);
    assert.ok(ws.transferFormats.includes("Text"), `WebSockets transfer formats: ${JSON.stringify(ws.transferFormats)}`);
  });
});

describe("messaging", () => {
  test("SendMessage reaches every connection with the sender's user id", TEST_OPTIONS, async (t) => {
    const alice = uniqueName("alice");
    const bob = uniqueName("bob");
    const a = await connect(t, alice);
    const b = await connect(t, bob);
    const anon = await connect(t, null);

    await a.invoke("SendMessage", "hello everyone");

    for (const conn of [a, b, anon]) {
      assert.deepEqual(await nextMessage(conn, "ReceiveMessage"), [alice, "hello everyone"]);
    }
  });

  test("SendMessage from an anonymous connection has an empty fromUser", TEST_OPTIONS, async (t) => {
    const anon = await connect(t, null);
    const bob = uniqueName("bob");
    const b = await connect(t, bob);

    await anon.invoke("SendMessage", "from nobody");

    assert.deepEqual(await nextMessage(anon, "ReceiveMessage"), ["", "from nobody"]);
    assert.deepEqual(await nextMessage(b, "ReceiveMessage"), ["", "from nobody"]);
  });

  test("SendMessage sent without waiting for a result (send) is delivered", TEST_OPTIONS, async (t) => {
    const alice = uniqueName("alice");
    const a = await connect(t, alice);
    const b = await connect(t, uniqueName("bob"));

    await a.send("SendMessage", "fire and forget");

    assert.deepEqual(await nextMessage(a, "ReceiveMessage"), [alice, "fire and forget"]);
    assert.deepEqual(await nextMessage(b, "ReceiveMessage"), [alice, "fire and forget"]);
  });

  test("SendMessage keeps non-ASCII text and JSON-looking text intact", TEST_OPTIONS, async (t) => {
    const user = uniqueName("zoë");
    const a = await connect(t, user);
    const text = "héllo 世界 🚀 \"quoted\" {\"a\":1} \\ \u001e end";

    await a.invoke("SendMessage", text);

    assert.deepEqual(await nextMessage(a, "ReceiveMessage"), [user, text]);
  });

  test("SendMessageToCaller reaches only the caller", TEST_OPTIONS, async (t) => {
    const alice = uniqueName("alice");
    const bob = uniqueName("bob");
    const a = await connect(t, alice);
    const b = await connect(t, bob);

    await a.invoke("SendMessageToCaller", "just for me");

    assert.deepEqual(await nextMessage(a, "ReceiveMessage"), [alice, "just for me"]);
    await expectNothingBeforeMarker(b, bob);
  });

  test("SendMessageToCaller from an anonymous connection has an empty fromUser", TEST_OPTIONS, async (t) => {
    const anon = await connect(t, null);

    await anon.invoke("SendMessageToCaller", "anon echo");

    assert.deepEqual(await nextMessage(anon, "ReceiveMessage"), ["", "anon echo"]);
  });

  test("SendPrivateMessage reaches every connection of the user and nobody else", TEST_OPTIONS, async (t) => {
    const alice = uniqueName("alice");
    const bob = uniqueName("bob");
    const carol = uniqueName("carol");
    const phone = await connect(t, alice);
    const laptop = await connect(t, alice);
    const b = await connect(t, bob);
    const c = await connect(t, carol);
    assert.notEqual(phone.connectionId, laptop.connectionId);

    await b.invoke("SendPrivateMessage", alice, "psst");

    assert.deepEqual(await nextMessage(phone, "ReceiveMessage"), [bob, "psst"]);
    assert.deepEqual(await nextMessage(laptop, "ReceiveMessage"), [bob, "psst"]);
    await expectNothingBeforeMarker(c, carol);
    await expectNothingBeforeMarker(b, bob);
  });

  test("SendPrivateMessage from an anonymous connection has an empty fromUser", TEST_OPTIONS, async (t) => {
    const alice = uniqueName("alice");
    const a = await connect(t, alice);
    const anon = await connect(t, null);

    await anon.invoke("SendPrivateMessage", alice, "guess who");

    assert.deepEqual(await nextMessage(a, "ReceiveMessage"), ["", "guess who"]);
    await expectNothingBeforeMarker(anon, "");
  });

  test("SendPrivateMessage to a user without connections succeeds and delivers nothing", TEST_OPTIONS, async (t) => {
    const alice = uniqueName("alice");
    const a = await connect(t, alice);

    await a.invoke("SendPrivateMessage", uniqueName("ghost"), "anyone there?");

    await expectNothingBeforeMarker(a, alice);
  });
});

describe("groups", () => {
  test("join, group messages, and leave are seen by members only", TEST_OPTIONS, async (t) => {
    const group = uniqueName("room");
    const alice = uniqueName("alice");
    const bob = uniqueName("bob");
    const carol = uniqueName("carol");
    const a = await connect(t, alice);
    const b = await connect(t, bob);
    const c = await connect(t, carol);

    await a.invoke("AddToGroup", group);
    assert.deepEqual(await nextMessage(a, "Send"), [joinedText(a.connectionId, group)]);

    await b.invoke("AddToGroup", group);
    assert.deepEqual(await nextMessage(a, "Send"), [joinedText(b.connectionId, group)]);
    assert.deepEqual(await nextMessage(b, "Send"), [joinedText(b.connectionId, group)]);
    await expectNothingBeforeMarker(c, carol);

    await c.invoke("SendMessageToGroup", group, "knock knock");
    assert.deepEqual(await nextMessage(a, "ReceiveMessage"), [carol, "knock knock"]);
    assert.deepEqual(await nextMessage(b, "ReceiveMessage"), [carol, "knock knock"]);
    await expectNothingBeforeMarker(c, carol);

    await a.invoke("SendMessageToGroup", group, "hi team");
    assert.deepEqual(await nextMessage(a, "ReceiveMessage"), [alice, "hi team"]);
    assert.deepEqual(await nextMessage(b, "ReceiveMessage"), [alice, "hi team"]);
    await expectNothingBeforeMarker(c, carol);

    await b.invoke("RemoveFromGroup", group);
    assert.deepEqual(await nextMessage(a, "Send"), [leftText(b.connectionId, group)]);
    await expectNothingBeforeMarker(b, bob);
    await expectNothingBeforeMarker(c, carol);

    await a.invoke("SendMessageToGroup", group, "bob is gone");
    assert.deepEqual(await nextMessage(a, "ReceiveMessage"), [alice, "bob is gone"]);
    await expectNothingBeforeMarker(b, bob);
    await expectNothingBeforeMarker(c, carol);
    await expectNothingBeforeMarker(a, alice);
  });

  test("groups are independent of each other", TEST_OPTIONS, async (t) => {
    const red = uniqueName("red");
    const blue = uniqueName("blue");
    const alice = uniqueName("alice");
    const bob = uniqueName("bob");
    const a = await connect(t, alice);
    const b = await connect(t, bob);

    await a.invoke("AddToGroup", red);
    assert.deepEqual(await nextMessage(a, "Send"), [joinedText(a.connectionId, red)]);
    await b.invoke("AddToGroup", blue);
    assert.deepEqual(await nextMessage(b, "Send"), [joinedText(b.connectionId, blue)]);

    await a.invoke("SendMessageToGroup", blue, "to blue");
    assert.deepEqual(await nextMessage(b, "ReceiveMessage"), [alice, "to blue"]);
    await expectNothingBeforeMarker(a, alice);

    await b.invoke("SendMessageToGroup", red, "to red");
    assert.deepEqual(await nextMessage(a, "ReceiveMessage"), [bob, "to red"]);
    await expectNothingBeforeMarker(b, bob);
  });

  test("a connection can belong to several groups", TEST_OPTIONS, async (t) => {
    const g1 = uniqueName("g1");
    const g2 = uniqueName("g2");
    const alice = uniqueName("alice");
    const a = await connect(t, alice);

    await a.invoke("AddToGroup", g1);
    assert.deepEqual(await nextMessage(a, "Send"), [joinedText(a.connectionId, g1)]);
    await a.invoke("AddToGroup", g2);
    assert.deepEqual(await nextMessage(a, "Send"), [joinedText(a.connectionId, g2)]);

    await a.invoke("SendMessageToGroup", g1, "one");
    assert.deepEqual(await nextMessage(a, "ReceiveMessage"), [alice, "one"]);
    await a.invoke("SendMessageToGroup", g2, "two");
    assert.deepEqual(await nextMessage(a, "ReceiveMessage"), [alice, "two"]);

    await a.invoke("RemoveFromGroup", g1);
    await a.invoke("SendMessageToGroup", g1, "one again");
    await expectNothingBeforeMarker(a, alice);
    await a.invoke("SendMessageToGroup", g2, "two again");
    assert.deepEqual(await nextMessage(a, "ReceiveMessage"), [alice, "two again"]);
  });

  test("group membership does not survive stop and start", TEST_OPTIONS, async (t) => {
    const group = uniqueName("room");
    const alice = uniqueName("alice");
    const bob = uniqueName("bob");
    const a = await connect(t, alice);
    const b = await connect(t, bob);

    await a.invoke("AddToGroup", group);
    assert.deepEqual(await nextMessage(a, "Send"), [joinedText(a.connectionId, group)]);
    await b.invoke("AddToGroup", group);
    assert.deepEqual(await nextMessage(a, "Send"), [joinedText(b.connectionId, group)]);
    assert.deepEqual(await nextMessage(b, "Send"), [joinedText(b.connectionId, group)]);

    const oldId = b.connectionId;
    await b.stop();
    assert.equal(b.state, signalR.HubConnectionState.Disconnected);
    await startSettled(b);
    assert.ok(b.connectionId, "restarted connection has an id");
    assert.notEqual(b.connectionId, oldId, "restarted connection has a new id");

    await a.invoke("SendMessageToGroup", group, "still here?");
    assert.deepEqual(await nextMessage(a, "ReceiveMessage"), [alice, "still here?"]);
    await expectNothingBeforeMarker(b, bob);

    await b.invoke("AddToGroup", group);
    assert.deepEqual(await nextMessage(a, "Send"), [joinedText(b.connectionId, group)]);
    assert.deepEqual(await nextMessage(b, "Send"), [joinedText(b.connectionId, group)]);

    await a.invoke("SendMessageToGroup", group, "welcome back");
    assert.deepEqual(await nextMessage(a, "ReceiveMessage"), [alice, "welcome back"]);
    assert.deepEqual(await nextMessage(b, "ReceiveMessage"), [alice, "welcome back"]);
  });

  test("a group send after a member stopped still reaches the remaining members", TEST_OPTIONS, async (t) => {
    const group = uniqueName("room");
    const alice = uniqueName("alice");
    const a = await connect(t, alice);
    const b = await connect(t, uniqueName("bob"));

    await a.invoke("AddToGroup", group);
    assert.deepEqual(await nextMessage(a, "Send"), [joinedText(a.connectionId, group)]);
    await b.invoke("AddToGroup", group);
    assert.deepEqual(await nextMessage(a, "Send"), [joinedText(b.connectionId, group)]);

    await b.stop();
    await a.invoke("SendMessageToGroup", group, "after bob left");
    assert.deepEqual(await nextMessage(a, "ReceiveMessage"), [alice, "after bob left"]);
    await expectNothingBeforeMarker(a, alice);
  });
});

describe("WhoAmI", () => {
  test("returns the connection id and user id of a signed-in connection", TEST_OPTIONS, async (t) => {
    const alice = uniqueName("alice");
    const a = await connect(t, alice);

    const me = await a.invoke("WhoAmI");

    assert.deepEqual(me, { connectionId: a.connectionId, userIdentifier: alice });
  });

  test("returns a null user id for an anonymous connection", TEST_OPTIONS, async (t) => {
    const anon = await connect(t, null);

    const me = await anon.invoke("WhoAmI");

    assert.deepEqual(me, { connectionId: anon.connectionId, userIdentifier: null });
  });

  test("two connections of one user share the user id but not the connection id", TEST_OPTIONS, async (t) => {
    const alice = uniqueName("alice");
    const a1 = await connect(t, alice);
    const a2 = await connect(t, alice);

    const [me1, me2] = await Promise.all([a1.invoke("WhoAmI"), a2.invoke("WhoAmI")]);

    assert.equal(me1.userIdentifier, alice);
    assert.equal(me2.userIdentifier, alice);
    assert.equal(me1.connectionId, a1.connectionId);
    assert.equal(me2.connectionId, a2.connectionId);
    assert.notEqual(me1.connectionId, me2.connectionId);
  });
});

describe("WebSockets without negotiation", () => {
  test("skipNegotiation with the WebSockets transport connects, identifies and messages", TEST_OPTIONS, async (t) => {
    const alice = uniqueName("alice");
    const a = await connect(t, alice, {
      skipNegotiation: true,
      transport: signalR.HttpTransportType.WebSockets,
    });

    const me = await a.invoke("WhoAmI");
    assert.equal(me.userIdentifier, alice);
    assert.equal(typeof me.connectionId, "string");
    assert.ok(me.connectionId.length > 0);

    await a.invoke("SendMessageToCaller", "direct socket");
    assert.deepEqual(await nextMessage(a, "ReceiveMessage"), [alice, "direct socket"]);

    const bob = uniqueName("bob");
    const b = await connect(t, bob);
    await b.invoke("SendPrivateMessage", alice, "found you");
    assert.deepEqual(await nextMessage(a, "ReceiveMessage"), [bob, "found you"]);
  });

  test("skipNegotiation anonymous connection works", TEST_OPTIONS, async (t) => {
    const anon = await connect(t, null, {
      skipNegotiation: true,
      transport: signalR.HttpTransportType.WebSockets,
    });

    const me = await anon.invoke("WhoAmI");
    assert.equal(me.userIdentifier, null);
    await anon.invoke("SendMessageToCaller", "hi");
    assert.deepEqual(await nextMessage(anon, "ReceiveMessage"), ["", "hi"]);
  });

  test("skipNegotiation with a garbage token is refused", TEST_OPTIONS, async (t) => {
    const conn = buildConnection(server.hubUrl, "garbage.token.value", {
      skipNegotiation: true,
      transport: signalR.HttpTransportType.WebSockets,
    }, QUIET);
    t.after(() => conn.stop());
    await assert.rejects(conn.start());
    assert.equal(conn.state, signalR.HubConnectionState.Disconnected);

    const status = await websocketUpgradeStatus(server.hubUrl, { Authorization: "Bearer garbage.token.value" });
    assert.equal(status, 401, "the WebSocket upgrade with an invalid token must answer 401");
  });
});

describe("token in the access_token query parameter", () => {
  const withQueryToken = (token) => `${server.hubUrl}?access_token=${encodeURIComponent(token)}`;

  test("identifies the user through negotiate and the WebSocket", TEST_OPTIONS, async (t) => {
    const alice = uniqueName("alice");
    const token = await fetchToken(server.baseUrl, alice);
    const conn = buildConnection(withQueryToken(token), undefined);
    t.after(() => conn.stop());
    await conn.start();

    assert.deepEqual(await conn.invoke("WhoAmI"), { connectionId: conn.connectionId, userIdentifier: alice });
    await conn.invoke("SendMessageToCaller", "query token");
    assert.deepEqual(await nextMessage(conn, "ReceiveMessage"), [alice, "query token"]);
  });

  test("identifies the user on a WebSocket without negotiation", TEST_OPTIONS, async (t) => {
    const alice = uniqueName("alice");
    const token = await fetchToken(server.baseUrl, alice);
    const conn = buildConnection(withQueryToken(token), undefined, {
      skipNegotiation: true,
      transport: signalR.HttpTransportType.WebSockets,
    });
    t.after(() => conn.stop());
    await conn.start();

    assert.equal((await conn.invoke("WhoAmI")).userIdentifier, alice);
    assert.equal(await websocketUpgradeStatus(withQueryToken(token)), 101, "upgrade with a valid query token");
  });

  test("an invalid query token is refused on negotiate and on a direct WebSocket", TEST_OPTIONS, async (t) => {
    const viaNegotiate = buildConnection(withQueryToken("garbage"), undefined, {}, QUIET);
    t.after(() => viaNegotiate.stop());
    await assert.rejects(viaNegotiate.start(), /401/);
    assert.equal(viaNegotiate.state, signalR.HubConnectionState.Disconnected);

    const direct = buildConnection(withQueryToken("garbage"), undefined, {
      skipNegotiation: true,
      transport: signalR.HttpTransportType.WebSockets,
    }, QUIET);
    t.after(() => direct.stop());
    await assert.rejects(direct.start());
    assert.equal(direct.state, signalR.HubConnectionState.Disconnected);

    assert.equal(await websocketUpgradeStatus(withQueryToken("garbage")), 401, "direct WebSocket upgrade status");
  });
});

describe("authentication", () => {
  test("a garbage token gets 401 and no connection", TEST_OPTIONS, async (t) => {
    await expectStartRejectedWith401(t, "this-is-not-a-jwt");
  });

  test("a token signed with another key gets 401 and no connection", TEST_OPTIONS, async (t) => {
    const real = decodeJwt(await fetchToken(server.baseUrl, "mallory"));
    const forged = signJwtHS256(
      { sub: "mallory", exp: Math.floor(Date.now() / 1000) + 3600, iat: Math.floor(Date.now() / 1000) },
      "definitely-not-the-server-key",
    );
    assert.notEqual(decodeJwt(forged).signature, real.signature);
    await expectStartRejectedWith401(t, forged);
  });

  test("a real token whose payload was altered gets 401", TEST_OPTIONS, async (t) => {
    const token = await fetchToken(server.baseUrl, "mallory");
    const [h, p, s] = token.split(".");
    const payload = JSON.parse(Buffer.from(p, "base64url").toString("utf8"));
    payload.sub = "admin";
    const tampered = `${h}.${Buffer.from(JSON.stringify(payload)).toString("base64url")}.${s}`;
    await expectStartRejectedWith401(t, tampered);
  });

  test("an unsigned token (alg none) gets 401", TEST_OPTIONS, async (t) => {
    const enc = (obj) => Buffer.from(JSON.stringify(obj)).toString("base64url");
    const unsigned = `${enc({ alg: "none", typ: "JWT" })}.${enc({ sub: "mallory", exp: Math.floor(Date.now() / 1000) + 3600 })}.`;
    await expectStartRejectedWith401(t, unsigned);
  });

  test("an expired token gets 401 and no connection", TEST_OPTIONS, async (t) => {
    // Signed with the server's own key, so only the expiry is wrong.
    const now = Math.floor(Date.now() / 1000);
    const token = signJwtHS256({ sub: "late", iat: now - 120, exp: now - 60 }, server.jwtKey);
    await expectStartRejectedWith401(t, token);
  });

  test("a token signed with the server's key is accepted", TEST_OPTIONS, async (t) => {
    const now = Math.floor(Date.now() / 1000);
    const token = signJwtHS256({ sub: "carol", exp: now + 60 }, server.jwtKey);
    const conn = buildConnection(server.hubUrl, token);
    await conn.start();
    t.after(() => conn.stop());
    assert.equal((await conn.invoke("WhoAmI")).userIdentifier, "carol");
  });

  test("a valid token is accepted and identifies the user", TEST_OPTIONS, async (t) => {
    const user = uniqueName("dave");
    const conn = await connect(t, user);
    assert.equal((await conn.invoke("WhoAmI")).userIdentifier, user);
  });
});

describe("invocation errors", () => {
  test("an unknown hub method is rejected and the connection stays usable", TEST_OPTIONS, async (t) => {
    const alice = uniqueName("alice");
    const a = await connect(t, alice);

    await assert.rejects(a.invoke("NoSuchMethod", "x"), (err) => {
      assert.match(err.message, /Method does not exist/);
      return true;
    });
    assert.equal(a.state, signalR.HubConnectionState.Connected);

    assert.deepEqual(await a.invoke("WhoAmI"), { connectionId: a.connectionId, userIdentifier: alice });
    await a.invoke("SendMessageToCaller", "still alive");
    assert.deepEqual(await nextMessage(a, "ReceiveMessage"), [alice, "still alive"]);
  });

  test("too few and too many arguments are rejected and the connection stays usable", TEST_OPTIONS, async (t) => {
    const alice = uniqueName("alice");
    const a = await connect(t, alice);

    for (const args of [[], ["one", "two"]]) {
      await assert.rejects(a.invoke("SendMessage", ...args), (err) => {
        assert.ok(
          err.message.startsWith("Failed to invoke 'SendMessage'"),
          `with ${args.length} argument(s) the error was: ${err.message}`,
        );
        return true;
      });
      assert.equal(a.state, signalR.HubConnectionState.Connected);
    }

    await a.invoke("SendMessage", "one is right");
    assert.deepEqual(await nextMessage(a, "ReceiveMessage"), [alice, "one is right"]);
    assert.equal(inboxOf(a).queue.length, 0, "no stray messages from the failed calls");
  });

  test("a failed invocation from one client does not disturb another", TEST_OPTIONS, async (t) => {
    const a = await connect(t, uniqueName("alice"));
    const bob = uniqueName("bob");
    const b = await connect(t, bob);

    await assert.rejects(a.invoke("NoSuchMethod"));
    await assert.rejects(a.invoke("SendPrivateMessage", "only-one-arg"));

    await expectNothingBeforeMarker(b, bob);
  });
});

describe("token expiry", () => {
  test("an expired token closes the connection, and automatic reconnect renews it with a new token", TEST_OPTIONS, async (t) => {
    const alice = uniqueName("alice");
    // Until the connection drops, tokens live one second (exp is in whole
    // seconds: they end within that second); afterwards an hour. The client
    // asks for a token for negotiate and again for the WebSocket.
    let renewing = false;
    let renewed = 0;
    const conn = new signalR.HubConnectionBuilder()
      .withUrl(server.hubUrl, {
        accessTokenFactory: () => {
          if (renewing) renewed++;
          return fetchToken(server.baseUrl, alice, renewing ? 3600 : 1);
        },
      })
      .withAutomaticReconnect([0])
      .configureLogging(QUIET)
      .build();
    t.after(() => conn.stop());
    const reconnecting = new Promise((resolve) => conn.onreconnecting((err) => {
      renewing = true;
      resolve(err);
    }));
    const reconnected = new Promise((resolve) => conn.onreconnected(resolve));
    await conn.start();
    const firstId = conn.connectionId;
    assert.equal((await conn.invoke("WhoAmI")).userIdentifier, alice);

    // The server closes with a reason and allowReconnect; the client comes
    // back as a new connection, with a token fetched anew.
    const err = await reconnecting;
    assert.match(String(err), /authentication expired; reconnect with a new access token/);
    const newId = await reconnected;
    assert.notEqual(newId, firstId, "a reconnect is a new connection");
    assert.ok(renewed > 0, "the factory was asked for a new token");
    assert.equal((await conn.invoke("WhoAmI")).userIdentifier, alice);
    assert.equal(conn.state, signalR.HubConnectionState.Connected);
  });

  test("without automatic reconnect the client is closed with the server's reason", TEST_OPTIONS, async (t) => {
    const token = await fetchToken(server.baseUrl, uniqueName("bob"), 1);
    const conn = buildConnection(server.hubUrl, token, {}, QUIET);
    t.after(() => conn.stop());
    const closed = new Promise((resolve) => conn.onclose(resolve));
    await startSettled(conn);
    const err = await closed;
    assert.equal(
      err.message,
      "Server returned an error on close: Connection closed with an error. The connection's authentication expired; reconnect with a new access token.",
    );
  });
});
