// The official client with stateful reconnect against the hub at
// process.argv[2], with the hub protocol process.argv[3] ("json" or
// "messagepack"), for stateful_test.go, which drops the WebSocket under
// it. It joins the group "room", collects the Msg invocations it gets and
// takes commands on stdin, one per line:
//
//   send A B    sends Record(A) … Record(B) without waiting for answers
//   wait N      waits until N Msg invocations arrived, then prints them
//   stop        stops the connection
//
// and prints one JSON line per step: {"ev":"ready"}, {"ev":"sent B"},
// {"ev":"got [..] same-id true"}, {"ev":"done"}, and {"ev":"reconnecting"}
// or {"ev":"closed ..."} if the connection is lost for good (which the
// test treats as a failure: a stateful resume is invisible to the app).
import * as signalR from "@microsoft/signalr";
import { MessagePackHubProtocol } from "@microsoft/signalr-protocol-msgpack";
import * as readline from "node:readline";

const url = process.argv[2];
const protocols = { json: () => new signalR.JsonHubProtocol(), messagepack: () => new MessagePackHubProtocol() };
if (!protocols[process.argv[3]]) throw new Error(`unknown hub protocol ${process.argv[3]}: json or messagepack`);
const protocol = protocols[process.argv[3]]();
const emit = (ev) => process.stdout.write(JSON.stringify({ ev }) + "\n");

const conn = new signalR.HubConnectionBuilder()
  .withUrl(url, { transport: signalR.HttpTransportType.WebSockets })
  .withHubProtocol(protocol)
  .withStatefulReconnect()
  .withAutomaticReconnect()
  .configureLogging(signalR.LogLevel.None)
  .build();
const got = [];
let waiter = null;
conn.on("Msg", (n) => {
  got.push(n);
  if (waiter && got.length >= waiter.n) {
    const w = waiter;
    waiter = null;
    w.resolve();
  }
});
conn.onreconnecting((err) => emit("reconnecting " + (err ? err.message : "")));
let stopping = false;
conn.onclose((err) => {
  if (!stopping) emit("closed " + (err ? err.message : ""));
});

await conn.start();
const id = conn.connectionId;
await conn.invoke("Join", "room");
emit("ready");

const lines = readline.createInterface({ input: process.stdin });
for await (const line of lines) {
  const [cmd, a, b] = line.trim().split(" ");
  if (cmd === "send") {
    const sends = [];
    for (let i = Number(a); i <= Number(b); i++) sends.push(conn.send("Record", i));
    await Promise.all(sends);
    emit("sent " + b);
  } else if (cmd === "wait") {
    if (got.length < Number(a)) {
      await new Promise((resolve) => (waiter = { n: Number(a), resolve }));
    }
    emit("got " + JSON.stringify(got) + " same-id " + (conn.connectionId === id));
  } else if (cmd === "stop") {
    lines.close();
    stopping = true;
    await conn.stop();
    emit("done");
  }
}
