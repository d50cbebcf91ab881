// The chat with the official MessagePack hub protocol
// (@microsoft/signalr-protocol-msgpack), alone and next to JSON clients.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { MessagePackHubProtocol } from "@microsoft/signalr-protocol-msgpack";
import { fetchToken, Inbox, signalR, startChatServer, stopChatServer, uniqueName } from "./harness.mjs";

const TEST_OPTIONS = { timeout: 20000 };
const TARGETS = ["ReceiveMessage", "Send", "ReceiveFile"];

let server;

before(async () => {
  server = await startChatServer();
});

after(() => stopChatServer(server));

// Opens a connection as user (anonymous when null) with the MessagePack
// protocol, or JSON when json is set; it is stopped when the test ends.
// Returns the connection and an inbox of what it receives.
async function connect(t, user, { json = false, token, transport, logLevel = signalR.LogLevel.Warning } = {}) {
  const options = transport === undefined ? {} : { transport };
  const tok = token ?? (user === null ? undefined : await fetchToken(server.baseUrl, user));
  if (tok !== undefined) options.accessTokenFactory = () => tok;
  let builder = new signalR.HubConnectionBuilder().withUrl(server.hubUrl, options).configureLogging(logLevel);
  if (!json) builder = builder.withHubProtocol(new MessagePackHubProtocol());
  const conn = builder.build();
  const inbox = new Inbox(conn, TARGETS);
  t.after(() => conn.stop());
  await conn.start();
  assert.equal(conn.state, signalR.HubConnectionState.Connected);
  // A completed invocation shows that the server has registered the
  // connection, so that sends from others reach it.
  await conn.invoke("WhoAmI");
  return { conn, inbox };
}

// Shows that inbox received nothing before a marker its connection sends
// itself.
async function expectNothingBeforeMarker({ conn, inbox }) {
  const marker = uniqueName("marker");
  await conn.invoke("SendMessageToCaller", marker);
  const msg = await inbox.nextAny();
  assert.deepEqual([msg.target, msg.args[1]], ["ReceiveMessage", marker], `received ${JSON.stringify(msg)} before the marker`);
}

describe("MessagePack protocol", () => {
  test("the handshake names the protocol, and invocations and messages work", TEST_OPTIONS, async (t) => {
    const alice = uniqueName("alice");
    const a = await connect(t, alice);

    assert.deepEqual(await a.conn.invoke("WhoAmI"), { connectionId: a.conn.connectionId, userIdentifier: alice });
    const text = "héllo 世界 🚀 \"quoted\" \u001e end";
    await a.conn.invoke("SendMessageToCaller", text);
    assert.deepEqual(await a.inbox.next("ReceiveMessage"), [alice, text]);

    // send() is non-blocking: a nil invocation ID, no Completion.
    await a.conn.send("SendMessageToCaller", "fire and forget");
    assert.deepEqual(await a.inbox.next("ReceiveMessage"), [alice, "fire and forget"]);

    const anon = await connect(t, null);
    assert.deepEqual(await anon.conn.invoke("WhoAmI"), { connectionId: anon.conn.connectionId, userIdentifier: null });
  });

  test("works over Long Polling; Server-Sent Events, text only, is skipped for it", TEST_OPTIONS, async (t) => {
    const group = uniqueName("room");
    const alice = uniqueName("alice");
    const { HttpTransportType } = signalR;
    const lp = await connect(t, alice, { transport: HttpTransportType.LongPolling });
    const bob = uniqueName("bob");
    const js = await connect(t, bob, { json: true });
    await lp.conn.invoke("AddToGroup", group);
    assert.deepEqual(await lp.inbox.next("Send"), [`${lp.conn.connectionId} has joined the group ${group}.`]);
    await js.conn.invoke("AddToGroup", group);
    await lp.inbox.next("Send");
    await js.inbox.next("Send");
    await js.conn.invoke("SendMessageToGroup", group, "over polls");
    assert.deepEqual(await lp.inbox.next("ReceiveMessage"), [bob, "over polls"]);

    // Without WebSockets the client passes over Server-Sent Events, whose
    // format is text, to Long Polling.
    const selected = [];
    const logger = { log(level, message) { const m = /^Selecting transport '(\w+)'/.exec(message); if (m) selected.push(m[1]); } };
    const fallback = await connect(t, uniqueName("dave"), {
      transport: HttpTransportType.ServerSentEvents | HttpTransportType.LongPolling,
      logLevel: logger,
    });
    assert.deepEqual(selected, ["LongPolling"], `selected: ${selected.join(", ")}`);
    assert.equal((await fallback.conn.invoke("WhoAmI")).connectionId, fallback.conn.connectionId);
  });

  test("a JSON and a MessagePack client in one group receive one send, each in its protocol", TEST_OPTIONS, async (t) => {
    const group = uniqueName("room");
    const alice = uniqueName("alice");
    const bob = uniqueName("bob");
    const mp = await connect(t, alice);
    const js = await connect(t, bob, { json: true });
    const outsider = await connect(t, uniqueName("carol"));

    await mp.conn.invoke("AddToGroup", group);
    assert.deepEqual(await mp.inbox.next("Send"), [`${mp.conn.connectionId} has joined the group ${group}.`]);
    await js.conn.invoke("AddToGroup", group);
    for (const member of [mp, js]) {
      assert.deepEqual(await member.inbox.next("Send"), [`${js.conn.connectionId} has joined the group ${group}.`]);
    }

    await mp.conn.invoke("SendMessageToGroup", group, "hi both");
    assert.deepEqual(await mp.inbox.next("ReceiveMessage"), [alice, "hi both"]);
    assert.deepEqual(await js.inbox.next("ReceiveMessage"), [alice, "hi both"]);

    // Binary data and a Date from the MessagePack client: a Uint8Array and
    // a Date for MessagePack receivers, base64 and ISO 8601 for JSON ones.
    const data = new Uint8Array([0, 1, 2, 254, 255]);
    const modified = new Date(Date.UTC(2025, 2, 4, 5, 6, 7, 890));
    await mp.conn.invoke("SendFileToGroup", group, "notes.bin", data, modified);
    const [fromMp, nameMp, dataMp, dateMp] = await mp.inbox.next("ReceiveFile");
    assert.equal(fromMp, alice);
    assert.equal(nameMp, "notes.bin");
    assert.ok(dataMp instanceof Uint8Array, `binary data arrives as a Uint8Array, not ${dataMp?.constructor?.name}`);
    assert.deepEqual([...dataMp], [...data]);
    assert.ok(dateMp instanceof Date, `a time arrives as a Date, not ${dateMp?.constructor?.name}`);
    assert.equal(dateMp.getTime(), modified.getTime());
    const [fromJs, nameJs, dataJs, dateJs] = await js.inbox.next("ReceiveFile");
    assert.deepEqual([fromJs, nameJs], [alice, "notes.bin"]);
    assert.equal(dataJs, Buffer.from(data).toString("base64"));
    assert.equal(typeof dateJs, "string");
    assert.equal(new Date(dateJs).getTime(), modified.getTime(), `${dateJs} is the same instant`);

    // And from the JSON client, which sends them as strings.
    await js.conn.invoke("SendFileToGroup", group, "back.bin", Buffer.from([9, 8]).toString("base64"), modified.toISOString());
    const [, , dataBack, dateBack] = await mp.inbox.next("ReceiveFile");
    assert.deepEqual([...dataBack], [9, 8]);
    assert.equal(dateBack.getTime(), modified.getTime());
    const [, , dataJsBack, dateJsBack] = await js.inbox.next("ReceiveFile");
    assert.equal(dataJsBack, "CQg=");
    assert.equal(new Date(dateJsBack).getTime(), modified.getTime());

    await expectNothingBeforeMarker(outsider);
  });

  test("invocation errors are rejected with the server's text and the connection stays usable", TEST_OPTIONS, async (t) => {
    const alice = uniqueName("alice");
    const a = await connect(t, alice);

    await assert.rejects(a.conn.invoke("NoSuchMethod", 1), {
      message: "Failed to invoke 'NoSuchMethod' due to an error on the server. HubException: Method does not exist.",
    });
    // A number where the method takes a string: the arguments do not bind.
    await assert.rejects(a.conn.invoke("SendMessageToGroup", 42, "x"), {
      message: "Failed to invoke 'SendMessageToGroup' due to an error on the server.",
    });
    // A Date where it takes bytes.
    await assert.rejects(a.conn.invoke("SendFileToGroup", "g", "x", new Date(), new Date()), {
      message: "Failed to invoke 'SendFileToGroup' due to an error on the server.",
    });
    await assert.rejects(a.conn.invoke("SendMessageToGroup", "", "x"), {
      message: "An unexpected error occurred invoking 'SendMessageToGroup' on the server. HubException: group name is required",
    });
    assert.equal(a.conn.state, signalR.HubConnectionState.Connected);
    await a.conn.invoke("SendMessageToCaller", "still here");
    assert.deepEqual(await a.inbox.next("ReceiveMessage"), [alice, "still here"]);
  });

  test("the server closes a MessagePack client with its reason", TEST_OPTIONS, async (t) => {
    const token = await fetchToken(server.baseUrl, uniqueName("bob"), 1);
    const b = await connect(t, null, { token, logLevel: signalR.LogLevel.None });
    const closed = new Promise((resolve) => b.conn.onclose(resolve));
    const err = await closed;
    assert.equal(
      err.message,
      "Server returned an error on close: Connection closed with an error. The connection's authentication expired; reconnect with a new access token.",
    );
    assert.equal(b.conn.state, signalR.HubConnectionState.Disconnected);
  });

  test("a record over the size limit closes the sender only", TEST_OPTIONS, async (t) => {
    const bob = uniqueName("bob");
    const big = await connect(t, uniqueName("alice"), { logLevel: signalR.LogLevel.None });
    const bystander = await connect(t, bob);
    const closed = new Promise((resolve) => big.conn.onclose(resolve));

    await assert.rejects(big.conn.invoke("SendMessage", "x".repeat(40 * 1024)));
    const err = await closed;
    assert.equal(
      err.message,
      "Server returned an error on close: Connection closed with an error. The maximum message size of 32768B was exceeded.",
    );

    await bystander.conn.invoke("SendMessageToCaller", "unharmed");
    assert.deepEqual(await bystander.inbox.next("ReceiveMessage"), [bob, "unharmed"]);
  });
});
