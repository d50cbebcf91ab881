// The official client answering the server's invocations (client results),
// against the hub at process.argv[2], for results_test.go. It prints one
// JSON line per step:
//
//   {"ev":"confirmed: <result>"}   what the hub method Confirm returned after asking this client
//   {"ev":"ready"}                 the handlers are in place for the server's own calls
//   {"ev":"answering later <ms>"}  Later's wait is over: its answer goes out right after
//   {"ev":"done"}                  after a line on stdin, the client has stopped
import * as signalR from "@microsoft/signalr";

const url = process.argv[2];
const emit = (ev) => process.stdout.write(JSON.stringify({ ev }) + "\n");

const conn = new signalR.HubConnectionBuilder()
  .withUrl(url, { headers: { "X-User": "js" }, transport: signalR.HttpTransportType.WebSockets })
  .configureLogging(signalR.LogLevel.None)
  .build();
conn.on("Ask", (question) => question + "!");
conn.on("Throw", () => {
  throw new Error("nope");
});
conn.on("Later", async (ms) => {
  await new Promise((resolve) => setTimeout(resolve, ms));
  emit(`answering later ${ms}`);
  return { waited: ms };
});

await conn.start();
emit("confirmed: " + (await conn.invoke("Confirm", "sure?")));
emit("ready");
process.stdin.setEncoding("utf8");
process.stdin.once("data", async () => {
  process.stdin.destroy();
  await conn.stop();
  emit("done");
});
