// The official client streaming both ways against the hub at
// process.argv[2], with the hub protocol process.argv[3] ("json" or
// "messagepack"), for streams_test.go. It prints one JSON line per step:
//
//   {"ev":"counter: [..]"}          the items of a server-to-client stream
//   {"ev":"cancelled after 3"}      it disposed an endless stream after three items
//   {"ev":"failed: <message>"}      the error that ended a failing stream
//   {"ev":"sum: <n>"}               an upload's result (a Subject of numbers)
//   {"ev":"upload failed: <msg>"}   the invocation whose upload the client errored
//   {"ev":"upper: [..]"}            a stream in, a stream out
//   {"ev":"done"}                   the client has stopped
import * as signalR from "@microsoft/signalr";
import { MessagePackHubProtocol } from "@microsoft/signalr-protocol-msgpack";

const url = process.argv[2];
const protocols = { json: () => new signalR.JsonHubProtocol(), messagepack: () => new MessagePackHubProtocol() };
if (!protocols[process.argv[3]]) throw new Error(`unknown hub protocol ${process.argv[3]}: json or messagepack`);
const protocol = protocols[process.argv[3]]();
const emit = (ev) => process.stdout.write(JSON.stringify({ ev }) + "\n");

const conn = new signalR.HubConnectionBuilder()
  .withUrl(url, { transport: signalR.HttpTransportType.WebSockets })
  .withHubProtocol(protocol)
  .configureLogging(signalR.LogLevel.None)
  .build();
await conn.start();

// collect subscribes to a stream and resolves with its items when it
// completes, or rejects with its error.
const collect = (stream) =>
  new Promise((resolve, reject) => {
    const items = [];
    stream.subscribe({ next: (v) => items.push(v), complete: () => resolve(items), error: reject });
  });

emit("counter: " + JSON.stringify(await collect(conn.stream("Counter", 5))));

await new Promise((resolve, reject) => {
  let seen = 0;
  const sub = conn.stream("Endless").subscribe({
    next: () => {
      if (++seen === 3) {
        sub.dispose();
        resolve();
      }
    },
    complete: () => reject(new Error("an endless stream completed")),
    error: reject,
  });
});
emit("cancelled after 3");

try {
  await collect(conn.stream("Fail"));
  emit("failed: nothing");
} catch (err) {
  emit("failed: " + err.message);
}

const numbers = new signalR.Subject();
const sum = conn.invoke("Sum", numbers);
for (const n of [1, 2, 3, 4]) numbers.next(n);
numbers.complete();
emit("sum: " + (await sum));

const broken = new signalR.Subject();
const failing = conn.invoke("Sum", broken);
broken.next(1);
broken.error(new Error("camera unplugged"));
try {
  emit("upload failed: unexpected result " + (await failing));
} catch (err) {
  emit("upload failed: " + err.message);
}

const words = new signalR.Subject();
const upper = collect(conn.stream("Upper", words));
for (const w of ["a", "bc", "def"]) words.next(w);
words.complete();
emit("upper: " + JSON.stringify(await upper));

await conn.stop();
emit("done");
