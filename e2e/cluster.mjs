// Drives examples/cluster with the official client: alice on node A, bob
// on node B. Usage: node cluster.mjs <baseUrlA> <baseUrlB>. Exits non-zero
// with a message when anything is not as the chat contract says.
import * as signalR from "@microsoft/signalr";

const [urlA, urlB] = process.argv.slice(2);
const TIMEOUT_MS = 5000;

async function connect(base, user) {
  const res = await fetch(`${base}/token?user=${encodeURIComponent(user)}`);
  if (!res.ok) throw new Error(`token from ${base}: ${res.status}`);
  const token = await res.text();
  const conn = new signalR.HubConnectionBuilder()
    .withUrl(`${base}/chathub`, { accessTokenFactory: () => token })
    .configureLogging(signalR.LogLevel.Warning)
    .build();
  const inbox = [];
  const waiters = [];
  for (const target of ["ReceiveMessage", "Send"]) {
    conn.on(target, (...args) => {
      inbox.push({ target, args });
      while (waiters.length) waiters.shift()();
    });
  }
  conn.next = async () => {
    const deadline = Date.now() + TIMEOUT_MS;
    while (inbox.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${user}: no message within ${TIMEOUT_MS} ms`);
      await new Promise((resolve) => {
        const t = setTimeout(resolve, left);
        waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
    return inbox.shift();
  };
  await conn.start();
  return conn;
}

function expect(got, target, ...args) {
  const want = JSON.stringify({ target, args });
  if (JSON.stringify(got) !== want) throw new Error(`want ${want}, got ${JSON.stringify(got)}`);
}

const alice = await connect(urlA, "alice");
const bob = await connect(urlB, "bob");
try {
  const a = await alice.invoke("WhoAmI");
  const b = await bob.invoke("WhoAmI");
  if (!a.connectionId.startsWith("node1.") || !b.connectionId.startsWith("node2.")) {
    throw new Error(`connections on the wrong nodes: ${a.connectionId}, ${b.connectionId}`);
  }

  await bob.invoke("SendPrivateMessage", "alice", "hi from node 2");
  expect(await alice.next(), "ReceiveMessage", "bob", "hi from node 2");

  await alice.invoke("AddToGroup", "crew");
  expect(await alice.next(), "Send", `${a.connectionId} has joined the group crew.`);
  await bob.invoke("AddToGroup", "crew");
  expect(await alice.next(), "Send", `${b.connectionId} has joined the group crew.`);
  expect(await bob.next(), "Send", `${b.connectionId} has joined the group crew.`);

  await alice.invoke("SendMessageToGroup", "crew", "group hello");
  expect(await alice.next(), "ReceiveMessage", "alice", "group hello");
  expect(await bob.next(), "ReceiveMessage", "alice", "group hello");

  await bob.invoke("SendMessage", "to everyone");
  expect(await alice.next(), "ReceiveMessage", "bob", "to everyone");
  expect(await bob.next(), "ReceiveMessage", "bob", "to everyone");

  await bob.invoke("RemoveFromGroup", "crew");
  expect(await alice.next(), "Send", `${b.connectionId} has left the group crew.`);
  process.stdout.write("ok\n");
} finally {
  await alice.stop();
  await bob.stop();
}
