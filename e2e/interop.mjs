// Runs the interop scenario with the official client against the hub at
// process.argv[2] and prints what it got back as JSON. The Go side of
// interop_test.go runs the same scenario with the Go client.
import * as signalR from "@microsoft/signalr";

const url = process.argv[2];
const user = process.argv[3];
const conn = new signalR.HubConnectionBuilder()
  .withUrl(url, { headers: { "X-User": user } })
  .configureLogging(signalR.LogLevel.Warning)
  .build();

const events = [];
let eventSeen;
const twoEvents = new Promise((resolve) => { eventSeen = () => { if (events.length === 2) resolve(); }; });
conn.on("Welcome", (text) => { events.push(["Welcome", text]); eventSeen(); });
conn.on("ReceiveMessage", (from, text) => { events.push(["ReceiveMessage", from, text]); eventSeen(); });

const results = [];
const call = async (name, ...args) => {
  try {
    results.push([name, "ok", await conn.invoke(name, ...args)]);
  } catch (e) {
    results.push([name, "error", e.message]);
  }
};

await conn.start();
await call("Add", 40, 2);
await call("Echo", { a: [1, "x", true], b: null, c: { d: 1.5 } });
await call("Fail");
await call("Nope");
await call("Add", 1);
await conn.send("Record", "fire", 7);
await call("Greet", "ünï 😀");
await call("Void");
await twoEvents;
await conn.stop();
process.stdout.write(JSON.stringify({ results, events }));
