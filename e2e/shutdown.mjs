// Two official clients against the hub at process.argv[2] while
// shutdown_test.go shuts the hub down: "auto" with automatic reconnect,
// "plain" without. Each calls Block, a hub method that the Go test keeps
// running across Hub.Shutdown. The script prints one JSON line per step:
//
//   {"ev":"late"}                    after a "late" line on stdin (sent once Shutdown has
//                                    begun): both clients invoked Add, which the hub refused
//   {"ev":"settled"}                 both Block calls have settled
//   {"ev":"done","clients":{...}}    both clients are Disconnected: for each, what it
//                                    saw in order (log) and the Close records it got (closes)
//
// then exits on its own: once every connection is closed nothing is left
// to keep Node running, so a timer or socket the client failed to release
// would show up as a process that does not exit.
import * as signalR from "@microsoft/signalr";

const url = process.argv[2];
const emit = (ev) => process.stdout.write(JSON.stringify(ev) + "\n");
const message = (err) => (err === undefined ? null : err instanceof Error ? err.message : String(err));

async function client(name, reconnect) {
  const log = []; // everything the client saw, in the order it saw it
  const closes = []; // the Close records it received, as sent
  const received = "(WebSockets transport) data received. ";
  const logger = {
    log: (level, msg) => {
      // The client's own warnings and errors go to the log as well.
      if (level >= signalR.LogLevel.Warning) log.push(["log", signalR.LogLevel[level], msg]);
      // With logMessageContent the transport traces every text frame as
      // "... String data of length N. Content: '<records>'.". A frame may
      // hold several records, so the Close is kept apart from the log,
      // whose order is the order the client handled them in.
      if (level === signalR.LogLevel.Trace && msg.startsWith(received)) {
        const content = msg.slice(msg.indexOf("Content: '") + "Content: '".length, -"'.".length);
        for (const record of content.split("\x1e")) {
          if (record !== "" && JSON.parse(record).type === signalR.MessageType.Close) closes.push(record);
        }
      }
    },
  };
  const builder = new signalR.HubConnectionBuilder()
    .withUrl(url, {
      headers: { "X-User": name },
      transport: signalR.HttpTransportType.WebSockets,
      logMessageContent: true,
    })
    .configureLogging(logger);
  if (reconnect) {
    // One immediate attempt, which shows how the shutting-down hub answers
    // it; then give up, so that the test needs no reconnect delays.
    builder.withAutomaticReconnect({
      nextRetryDelayInMilliseconds: ({ previousRetryCount, retryReason }) => {
        log.push(["retry", previousRetryCount, message(retryReason)]);
        return previousRetryCount === 0 ? 0 : null;
      },
    });
  }
  const conn = builder.build();
  let closed;
  const disconnected = new Promise((resolve) => { closed = resolve; });
  // Handlers return nothing: a returned value would be taken for a client result.
  conn.on("Msg", (...args) => { log.push(["Msg", ...args]); });
  conn.onreconnecting((err) => log.push(["reconnecting", message(err), conn.state]));
  conn.onreconnected((id) => log.push(["reconnected", id]));
  conn.onclose((err) => {
    log.push(["close", message(err), conn.state]);
    closed();
  });

  await conn.start();
  log.push(["Add", await conn.invoke("Add", 40, 2)]);
  const block = conn.invoke("Block").then(
    (result) => log.push(["Block", "ok", result]),
    (err) => log.push(["Block", "error", message(err)]),
  );
  return { name, conn, log, closes, block, disconnected };
}

const clients = await Promise.all([client("auto", true), client("plain", false)]);
// Invocations sent once the hub is shutting down, on the test's word.
process.stdin.setEncoding("utf8");
process.stdin.once("data", async () => {
  process.stdin.destroy(); // nothing more to read: let Node exit when done
  await Promise.all(clients.map(async ({ log, conn }) => {
    try {
      log.push(["Late", "ok", await conn.invoke("Add", 1, 1)]);
    } catch (err) {
      log.push(["Late", "error", message(err)]);
    }
  }));
  emit({ ev: "late" });
});
await Promise.all(clients.map((c) => c.block));
emit({ ev: "settled" });
await Promise.all(clients.map((c) => c.disconnected));
emit({ ev: "done", clients: Object.fromEntries(clients.map(({ name, log, closes }) => [name, { log, closes }])) });
