import { spawn, execFile } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import * as signalR from "@microsoft/signalr";

export { signalR };

const execFileAsync = promisify(execFile);

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const EXAMPLES_DIR = path.join(REPO_ROOT, "examples");

export const DEFAULT_TIMEOUT_MS = 5000;
const READY_TIMEOUT_MS = 30000;
const BUILD_TIMEOUT_MS = 5 * 60 * 1000;
const MAX_CAPTURED_OUTPUT = 64 * 1024;

export function uniqueName(prefix) {
  return `${prefix}-${randomBytes(4).toString("hex")}`;
}

export async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}

async function buildChatBinary() {
  const dir = await mkdtemp(path.join(os.tmpdir(), "signalhub-e2e-"));
  const bin = path.join(dir, process.platform === "win32" ? "chat.exe" : "chat");
  try {
    await execFileAsync("go", ["build", "-o", bin, "./chat"], {
      cwd: EXAMPLES_DIR,
      timeout: BUILD_TIMEOUT_MS,
      maxBuffer: 16 * 1024 * 1024,
    });
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    const detail = [err.stderr, err.stdout].filter(Boolean).join("\n").trim();
    throw new Error(`go build ./chat in ${EXAMPLES_DIR} failed: ${err.message}\n${detail}`);
  }
  return { bin, cleanupDir: dir };
}

function appendCapped(current, chunk) {
  const next = current + chunk;
  return next.length > MAX_CAPTURED_OUTPUT ? next.slice(next.length - MAX_CAPTURED_OUTPUT) : next;
}

// Stops a server startChatServer started (nothing when it never started),
// and fails when it had exited on its own during the run, with its output.
export async function stopChatServer(server) {
  if (!server) return;
  const crashed = server.unexpectedExit;
  await server.stop();
  if (crashed) {
    throw new Error(
      `chat server exited during the run (code ${crashed.code}, signal ${crashed.signal})\n--- server output ---\n${server.output}`,
    );
  }
}

// Starts examples/chat on a free loopback port and resolves once GET /token answers.
export async function startChatServer() {
  let bin = process.env.CHAT_BIN;
  let cleanupDir = null;
  if (!bin) {
    ({ bin, cleanupDir } = await buildChatBinary());
  }

  const port = await freePort();
  const addr = `127.0.0.1:${port}`;
  const baseUrl = `http://${addr}`;
  const chatDir = path.join(EXAMPLES_DIR, "chat");
  // A known key lets tests sign tokens the server would issue, such as one
  // that has already expired.
  const jwtKey = randomBytes(32).toString("hex");
  const child = spawn(bin, ["-addr", addr, "-jwt-key", jwtKey], {
    cwd: existsSync(chatDir) ? chatDir : REPO_ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });

  let output = "";
  child.stdout.setEncoding("utf8");
  child.stderr.setEncoding("utf8");
  child.stdout.on("data", (d) => { output = appendCapped(output, d); });
  child.stderr.on("data", (d) => { output = appendCapped(output, d); });

  let exited = null;
  let spawnError = null;
  let stopping = false;
  let ready = false;
  const exitPromise = new Promise((resolve) => {
    child.on("exit", (code, signal) => {
      exited = { code, signal };
      if (ready && !stopping) {
        process.stderr.write(
          `\nchat server exited unexpectedly (code ${code}, signal ${signal})\n--- server output ---\n${output}\n`,
        );
      }
      resolve(exited);
    });
    child.on("error", (err) => {
      spawnError = err;
      exited = exited ?? { code: null, signal: null };
      resolve(exited);
    });
  });

  const killOnExit = () => {
    if (exited === null) child.kill("SIGKILL");
  };
  process.on("exit", killOnExit);

  const server = {
    baseUrl,
    jwtKey,
    hubUrl: `${baseUrl}/chathub`,
    get output() { return output; },
    get unexpectedExit() { return ready && !stopping ? exited : null; },
    async stop() {
      stopping = true;
      process.off("exit", killOnExit);
      if (exited === null) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => { if (exited === null) child.kill("SIGKILL"); }, 5000);
        await exitPromise;
        clearTimeout(timer);
      }
      if (cleanupDir) await rm(cleanupDir, { recursive: true, force: true });
    },
  };

  const deadline = Date.now() + READY_TIMEOUT_MS;
  let lastError = null;
  while (true) {
    if (exited !== null) {
      await server.stop();
      const why = spawnError ? `failed to start: ${spawnError.message}` : `exited early (code ${exited.code}, signal ${exited.signal})`;
      throw new Error(`chat server ${bin} ${why}\n--- server output ---\n${output}`);
    }
    try {
      const res = await fetch(`${baseUrl}/token?user=x`, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.ok) {
        ready = true;
        return server;
      }
      lastError = new Error(`GET /token answered ${res.status}`);
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      await server.stop();
      throw new Error(
        `chat server at ${baseUrl} not ready after ${READY_TIMEOUT_MS} ms (last error: ${lastError?.message})\n--- server output ---\n${output}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function fetchToken(baseUrl, user, ttlSeconds) {
  const url = new URL("/token", baseUrl);
  url.searchParams.set("user", user);
  if (ttlSeconds !== undefined) url.searchParams.set("ttl", String(ttlSeconds));
  const res = await fetch(url);
  const body = (await res.text()).trim();
  if (!res.ok) {
    throw new Error(`GET ${url} answered ${res.status}: ${body}`);
  }
  return body;
}

export function decodeJwt(token) {
  const parts = token.split(".");
  if (parts.length !== 3) throw new Error(`not a JWT: ${token}`);
  const [header, payload] = parts.slice(0, 2).map((p) => JSON.parse(Buffer.from(p, "base64url").toString("utf8")));
  return { header, payload, signature: parts[2] };
}

export function signJwtHS256(payload, key) {
  const enc = (obj) => Buffer.from(JSON.stringify(obj)).toString("base64url");
  const signingInput = `${enc({ alg: "HS256", typ: "JWT" })}.${enc(payload)}`;
  const sig = createHmac("sha256", key).update(signingInput).digest("base64url");
  return `${signingInput}.${sig}`;
}

// Records every invocation of the given client methods, in arrival order, so
// tests can await them without racing against registration.
export class Inbox {
  constructor(conn, targets) {
    this.conn = conn;
    this.queue = [];
    this.waiters = [];
    for (const target of targets) {
      conn.on(target, (...args) => this._push({ target, args }));
    }
  }

  _push(msg) {
    const i = this.waiters.findIndex((w) => w.match(msg));
    if (i >= 0) {
      const [w] = this.waiters.splice(i, 1);
      w.resolve(msg);
    } else {
      this.queue.push(msg);
    }
  }

  _wait(match, timeoutMs, what) {
    const i = this.queue.findIndex(match);
    if (i >= 0) return Promise.resolve(this.queue.splice(i, 1)[0]);
    return new Promise((resolve, reject) => {
      const waiter = {
        match,
        resolve: (msg) => { clearTimeout(timer); resolve(msg); },
      };
      const timer = setTimeout(() => {
        const idx = this.waiters.indexOf(waiter);
        if (idx >= 0) this.waiters.splice(idx, 1);
        const pending = this.queue.map((m) => `${m.target}(${JSON.stringify(m.args).slice(1, -1)})`).join(", ") || "none";
        reject(new Error(
          `timed out after ${timeoutMs} ms waiting for ${what} on connection ${this.conn.connectionId ?? "(no id)"}; unconsumed messages: ${pending}`,
        ));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  // Next call of `target`; resolves with its argument list.
  async next(target, timeoutMs = DEFAULT_TIMEOUT_MS) {
    const msg = await this._wait((m) => m.target === target, timeoutMs, `${target}`);
    return msg.args;
  }

  // Next call of any tracked method; resolves with { target, args }.
  nextAny(timeoutMs = DEFAULT_TIMEOUT_MS) {
    return this._wait(() => true, timeoutMs, "any message");
  }
}

const inboxes = new WeakMap();

export function nextMessage(conn, target, timeoutMs = DEFAULT_TIMEOUT_MS) {
  const inbox = inboxes.get(conn);
  if (!inbox) throw new Error("connection was not created with connect()/build()");
  return inbox.next(target, timeoutMs);
}

export function inboxOf(conn) {
  return inboxes.get(conn);
}

export const CLIENT_METHODS = ["ReceiveMessage", "Send"];

// logLevel is lowered only for connections a test expects to be refused, so
// that the client's own error log does not clutter a passing run.
export function buildConnection(hubUrl, token, extraOptions = {}, logLevel = signalR.LogLevel.Warning) {
  const options = { ...extraOptions };
  if (token !== undefined && token !== null) options.accessTokenFactory = () => token;
  const conn = new signalR.HubConnectionBuilder()
    .withUrl(hubUrl, options)
    .configureLogging(logLevel)
    .build();
  inboxes.set(conn, new Inbox(conn, CLIENT_METHODS));
  return conn;
}

// Proves that `conn` received nothing between the moment this is called and a
// marker it sends to itself: the marker must be the next message it sees.
export async function expectNothingBeforeMarker(conn, fromUser, timeoutMs = DEFAULT_TIMEOUT_MS) {
  const marker = uniqueName("marker");
  await conn.invoke("SendMessageToCaller", marker);
  const msg = await inboxes.get(conn).nextAny(timeoutMs);
  if (msg.target !== "ReceiveMessage" || msg.args.length !== 2 || msg.args[1] !== marker) {
    throw new Error(
      `connection ${conn.connectionId} received an unexpected message before its marker: ${msg.target}(${JSON.stringify(msg.args).slice(1, -1)})`,
    );
  }
  if (msg.args[0] !== fromUser) {
    throw new Error(`marker came back with fromUser ${JSON.stringify(msg.args[0])}, expected ${JSON.stringify(fromUser)}`);
  }
}

// Sends a WebSocket upgrade request and resolves with the HTTP status the
// server answered (101 when it accepted the upgrade).
export function websocketUpgradeStatus(url, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, {
      method: "GET",
      headers: {
        Connection: "Upgrade",
        Upgrade: "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": randomBytes(16).toString("base64"),
        ...headers,
      },
      timeout: DEFAULT_TIMEOUT_MS,
    });
    req.on("upgrade", (res, socket) => {
      socket.destroy();
      resolve(res.statusCode);
    });
    req.on("response", (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on("timeout", () => req.destroy(new Error(`no answer to the upgrade request to ${url}`)));
    req.on("error", reject);
    req.end();
  });
}
