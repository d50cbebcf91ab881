// The chat page of examples/chat in Debian's Chromium, driven by
// playwright-core: three users sign in, two chat in a group, a private
// message reaches only its recipient, and the page shows the connection
// lost and regained (and joins its groups again) while the server
// restarts. Screenshots of two of the pages go to e2e/artifacts/.
//
//   CHAT_BIN=/path/to/chat CHROMIUM_PATH=/usr/bin/chromium node --test browser.test.mjs
//
// `make test` runs it (target test-browser). Without Chromium it skips,
// saying how to get it; with CI set it fails instead.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { chromium } from "playwright-core";
import { EXAMPLES_DIR, freePort } from "./harness.mjs";

const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const IN_CI = Boolean(process.env.CI);
const ARTIFACTS = path.join(import.meta.dirname, "artifacts");
const BUNDLE = path.join(EXAMPLES_DIR, "chat", "node_modules", "@microsoft", "signalr", "dist", "browser", "signalr.min.js");

const STEP_TIMEOUT_MS = 10_000; // any one wait on a page
const START_TIMEOUT_MS = 30_000; // the server's "chat listening" line
const STOP_TIMEOUT_MS = 10_000; // SIGTERM to exit, then SIGKILL
// withAutomaticReconnect() retries after 0, 2, 10 and 30 seconds; the
// server is back well before the third retry.
const RECONNECT_TIMEOUT_MS = 45_000;

const missingChromium = existsSync(CHROMIUM) ? null : `Chromium not found at ${CHROMIUM}: apt-get install chromium (or set CHROMIUM_PATH)`;
const skip = missingChromium && !IN_CI ? `browser test: ${missingChromium}` : false;

// Chromium switches that keep it from reaching outside this machine:
// playwright-core already passes most of them; they are listed so that
// the test does not depend on its defaults.
const CHROMIUM_ARGS = [
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-default-apps",
  "--disable-domain-reliability",
  "--disable-client-side-phishing-detection",
  "--disable-breakpad",
  "--disable-crash-reporter",
  "--no-default-browser-check",
  "--no-first-run",
  "--no-pings",
  "--metrics-recording-only",
  "--disable-quic",
  "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication,CertificateTransparencyComponentUpdater",
  // Nothing resolves but 127.0.0.1, where the pages are.
  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
];

// One examples/chat process on a fixed loopback address and key, so that
// it can be stopped and started again where the pages expect it.
class ChatProcess {
  constructor(bin, addr, jwtKey) {
    Object.assign(this, { bin, addr, jwtKey, child: null, output: "", crashed: null });
    process.on("exit", () => this.child?.kill("SIGKILL"));
  }

  // Resolves once the server logged that it listens, which it does after
  // its listener is open.
  async start() {
    const child = spawn(this.bin, ["-addr", this.addr, "-jwt-key", this.jwtKey, "-bundle", BUNDLE], {
      cwd: path.join(EXAMPLES_DIR, "chat"),
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child = child;
    child.stopping = false;
    child.exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
    child.exited.then(({ code, signal }) => {
      if (!child.stopping) this.crashed ??= `exited on its own (code ${code}, signal ${signal})`;
    });
    let mine = ""; // this process's output, for its "chat listening"
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error(`not listening after ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
      const fail = (err) => {
        clearTimeout(timer);
        reject(new Error(`chat server on ${this.addr}: ${err.message}\n--- server output ---\n${mine}`));
      };
      const onData = (chunk) => {
        this.output = (this.output + chunk).slice(-64 * 1024);
        mine = (mine + chunk).slice(-64 * 1024);
        if (mine.includes("chat listening")) {
          clearTimeout(timer);
          resolve();
        }
      };
      for (const s of [child.stdout, child.stderr]) {
        s.setEncoding("utf8");
        s.on("data", onData);
      }
      child.on("error", fail);
      child.exited.then(({ code, signal }) => fail(new Error(`exited (code ${code}, signal ${signal})`)));
    });
  }

  async stop() {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.stopping = true;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS);
    const { signal } = await child.exited;
    clearTimeout(timer);
    assert.notEqual(signal, "SIGKILL", `the chat server did not stop within ${STOP_TIMEOUT_MS} ms of SIGTERM\n${this.output}`);
  }
}

async function chatBinary() {
  if (process.env.CHAT_BIN) return { bin: process.env.CHAT_BIN, dir: null };
  const dir = await mkdtemp(path.join(os.tmpdir(), "signalhub-browser-"));
  const bin = path.join(dir, "chat");
  await promisify(execFile)("go", ["build", "-o", bin, "./chat"], { cwd: EXAMPLES_DIR, timeout: 5 * 60_000 });
  return { bin, dir };
}

let server, browser, binDir, baseUrl;
const pageErrors = []; // uncaught exceptions in any page
const offLoopback = []; // requests a page tried to make elsewhere
const consoleLines = []; // printed when the test fails

before(async () => {
  if (skip) return;
  if (missingChromium) throw new Error(`${missingChromium} (required with CI set)`);
  assert.ok(existsSync(BUNDLE), `the page's client bundle is missing: run make chat-deps (or npm ci in examples/chat)`);
  await rm(ARTIFACTS, { recursive: true, force: true });
  await mkdir(ARTIFACTS, { recursive: true });
  let bin;
  ({ bin, dir: binDir } = await chatBinary());
  const addr = `127.0.0.1:${await freePort()}`;
  baseUrl = `http://${addr}`;
  server = new ChatProcess(bin, addr, randomBytes(32).toString("hex"));
  await server.start();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // As root, Chromium refuses to start with its sandbox on (it then
    // needs --no-sandbox, which this adds); as any other user it keeps it.
    chromiumSandbox: process.getuid?.() !== 0,
    args: CHROMIUM_ARGS,
    timeout: 60_000,
  });
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (binDir) await rm(binDir, { recursive: true, force: true });
  if (server?.crashed) throw new Error(`the chat server ${server.crashed}\n--- server output ---\n${server.output}`);
});

// A browser context per user: separate cookies and storage, as two
// people on two machines.
async function openPage(user) {
  const context = await browser.newContext({ viewport: { width: 900, height: 760 }, serviceWorkers: "block" });
  await context.route("**/*", (route) => {
    const url = new URL(route.request().url());
    if (url.hostname === "127.0.0.1") return route.continue();
    offLoopback.push(`${user}: ${url.href}`);
    return route.abort();
  });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  page.on("pageerror", (err) => pageErrors.push(`${user}: ${err.message}`));
  page.on("console", (msg) => consoleLines.push(`${user} ${msg.type()}: ${msg.text()}`));
  await page.goto(`${baseUrl}/`);
  await waitForState(page, "disconnected");
  assert.ok(await page.locator("#session").isHidden(), "no session shown before signing in");
  assert.ok(await page.locator("#group-name").isDisabled(), "nothing to do before signing in");
  return page;
}

async function signIn(page, user) {
  await page.getByLabel("Your name").fill(user);
  await page.getByRole("button", { name: "Sign in" }).click();
  await waitForState(page, "connected");
  assert.equal(await page.locator("#me").textContent(), user);
  assert.ok(await page.locator("#signin-panel").isHidden(), "the sign-in form goes away once signed in");
}

function waitForState(page, state, timeout = STEP_TIMEOUT_MS) {
  return page.locator(`#status[data-state="${state}"]`).waitFor({ timeout });
}

function group(page, name) {
  return page.locator("#groups li").filter({ has: page.locator(".name", { hasText: `#${name}` }) });
}

async function joinGroup(page, name) {
  await page.getByLabel("Group name").fill(name);
  await page.getByRole("button", { name: "Join", exact: true }).click();
  await group(page, name).and(page.locator('[data-joined="true"]')).waitFor();
  assert.equal(await page.getByLabel("Group", { exact: true }).inputValue(), name, "the joined group becomes the target");
}

async function sendToGroup(page, name, text) {
  await page.getByLabel("Group", { exact: true }).selectOption(name);
  await page.locator("#group-form").getByLabel("Message").fill(text);
  await page.getByRole("button", { name: "Send to group" }).click();
}

async function sendPrivately(page, to, text) {
  await page.getByLabel("To user").fill(to);
  await page.locator("#private-form").getByLabel("Message").fill(text);
  await page.getByRole("button", { name: "Send privately" }).click();
}

// Waits until a message with exactly this text is shown; two such
// messages on one page fail the wait (Playwright's strict locators).
function waitForMessage(page, text, timeout = STEP_TIMEOUT_MS) {
  const exact = new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`);
  return page.locator("#messages li .text").filter({ hasText: exact }).waitFor({ timeout });
}

// The conversation as the page shows it, oldest first, without notices.
function shownMessages(page) {
  return page.locator("#messages li:not([data-kind=system])").evaluateAll((lis) =>
    lis.map((li) => ({ ...li.dataset, text: li.querySelector(".text").textContent, mine: li.classList.contains("mine") })));
}

function notices(page) {
  return page.locator('#messages li[data-kind="system"] .text').allTextContents();
}

// Width and height from a PNG's IHDR chunk, after checking its signature.
function pngSize(buf) {
  assert.ok(buf.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])), "PNG signature");
  assert.equal(buf.toString("latin1", 12, 16), "IHDR");
  return { width: buf.readUInt32BE(16), height: buf.readUInt32BE(20) };
}

async function saveScreenshots(pages, name) {
  const shots = [];
  for (const [user, page] of pages) {
    const file = path.join(ARTIFACTS, `chat-${name}-${user}.png`);
    shots.push(await page.screenshot({ path: file }));
  }
  // Both pages side by side in one picture.
  const page = await browser.newPage({ viewport: { width: 1820, height: 780 } });
  try {
    await page.setContent(`<body style="margin:0;display:flex;align-items:flex-start;gap:20px;width:fit-content;background:#8c959f">${shots
      .map((s) => `<img alt="" src="data:image/png;base64,${s.toString("base64")}">`).join("")}</body>`);
    await page.locator("img").evaluateAll((imgs) => Promise.all(imgs.map((i) => i.decode())));
    const file = path.join(ARTIFACTS, `chat-${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    return file;
  } finally {
    await page.close();
  }
}

// The steps share the pages; after a failed step the rest are skipped
// (the test has failed already) rather than timing out one by one.
function stepper(t) {
  let failed = null;
  return (name, fn, options = {}) =>
    t.test(name, { ...options, skip: failed ? `after the failed step "${failed}"` : false }, async (st) => {
      try {
        await fn(st);
      } catch (err) {
        failed = name;
        process.stderr.write(`--- page console ---\n${consoleLines.join("\n")}\n`);
        throw err;
      }
    });
}

test("the chat page in Chromium: sign-in, groups, private messages, reconnect", { skip, timeout: 180_000 }, async (t) => {
  const step = stepper(t);
  const alice = await openPage("alice");
  const bob = await openPage("bob");
  const carol = await openPage("carol");

  await step("sign-in shows connecting, then connected", async () => {
    // Hold alice's token request, so that the page is caught connecting.
    let release;
    const held = new Promise((resolve) => { release = resolve; });
    let arrived;
    const tokenAsked = new Promise((resolve) => { arrived = resolve; });
    const isToken = (url) => url.pathname === "/token";
    await alice.route(isToken, async (route) => {
      arrived();
      await held;
      await route.fallback();
    });
    await alice.getByLabel("Your name").fill("alice");
    await alice.getByRole("button", { name: "Sign in" }).click();
    await tokenAsked;
    await waitForState(alice, "connecting");
    assert.equal(await alice.locator("#status").textContent(), "Connecting…");
    assert.ok(await alice.locator("#group-name").isDisabled(), "nothing to do while connecting");
    release();
    await waitForState(alice, "connected");
    await alice.unroute(isToken);
    assert.equal(await alice.locator("#status").textContent(), "Connected");
    assert.equal(await alice.locator("#me").textContent(), "alice");
    assert.ok(await alice.locator("#group-name").isEnabled());

    await signIn(bob, "bob");
    await signIn(carol, "carol");
  });

  await step("two users join a group and chat in it", async () => {
    await joinGroup(alice, "gophers");
    await waitForMessage(alice, "You joined #gophers");
    await joinGroup(bob, "gophers");
    await waitForMessage(alice, "bob joined #gophers");
    assert.equal(await alice.locator("#groups li").count(), 1);
    assert.ok(await alice.locator("#no-groups").isHidden());

    // Markup in a message is shown as text, never run or rendered.
    const hello = `hello bob <img src=x onerror="document.title='pwned'"> <b>&amp;</b>`;
    await sendToGroup(alice, "gophers", hello);
    await waitForMessage(bob, hello);
    await sendToGroup(bob, "gophers", "hi alice");
    await waitForMessage(alice, "hi alice");

    const conversation = [
      { kind: "group", group: "gophers", from: "alice", text: hello },
      { kind: "group", group: "gophers", from: "bob", text: "hi alice" },
    ];
    assert.deepEqual(await shownMessages(alice), conversation.map((m) => ({ ...m, mine: m.from === "alice" })));
    assert.deepEqual(await shownMessages(bob), conversation.map((m) => ({ ...m, mine: m.from === "bob" })));
    for (const page of [alice, bob]) {
      assert.equal(await page.locator("#messages img, #messages b").count(), 0, "no element made from a message");
      assert.equal(await page.title(), "signalhub chat");
    }
    assert.equal(await alice.locator("#group-text").inputValue(), "", "the sent message is cleared");
  });

  await step("a private message reaches its recipient and nobody else", async () => {
    await sendPrivately(alice, "bob", "psst, only for bob");
    await waitForMessage(bob, "psst, only for bob");
    await waitForMessage(alice, "psst, only for bob"); // the sender's copy
    assert.deepEqual((await shownMessages(bob)).at(-1),
      { kind: "private", from: "alice", to: "bob", text: "psst, only for bob", mine: false });
    assert.equal(await bob.locator("#messages li").last().locator(".from").textContent(), "alice → you:");
    assert.equal(await alice.locator("#messages li").last().locator(".from").textContent(), "you → bob:");

    // Sent after the private message and the group messages: once carol
    // has it, anything sent to her before would have arrived too.
    await sendPrivately(alice, "carol", "carol, are you there?");
    await waitForMessage(carol, "carol, are you there?");
    assert.deepEqual(await shownMessages(carol),
      [{ kind: "private", from: "alice", to: "carol", text: "carol, are you there?", mine: false }]);
    await sendPrivately(carol, "alice", "yes");
    await waitForMessage(alice, "yes");
    assert.ok(!(await shownMessages(bob)).some((m) => m.to === "carol" || m.from === "carol"), "bob saw nothing of alice and carol");

    // Not a member: the server refuses, and the page says why.
    await joinGroup(carol, "knitting");
    await carol.locator("#groups li").getByRole("button", { name: "Leave group knitting" }).click();
    await waitForMessage(carol, "You left #knitting");
    assert.equal(await carol.locator("#groups li").count(), 0);
    assert.ok(await carol.locator("#no-groups").isVisible());
  });

  await step("a screenshot of the two pages", async () => {
    const file = await saveScreenshots([["alice", alice], ["bob", bob]], "alice-bob");
    const png = await readFile(file);
    assert.ok((await stat(file)).size > 20_000, `${file} is too small to show two pages: ${png.length} bytes`);
    const { width, height } = pngSize(png);
    assert.ok(width >= 1820 && height >= 760, `${file} is ${width}x${height}`);
    for (const user of ["alice", "bob"]) {
      assert.deepEqual(pngSize(await readFile(path.join(ARTIFACTS, `chat-alice-bob-${user}.png`))), { width: 900, height: 760 });
    }
  });

  await step("the page shows a server restart and joins its groups again", async () => {
    await server.stop();
    for (const page of [alice, bob, carol]) {
      await waitForState(page, "reconnecting");
      assert.equal(await page.locator("#status").textContent(), "Reconnecting…");
    }
    // The server is down: the pages cannot have rejoined anything.
    await group(alice, "gophers").and(alice.locator('[data-joined="false"]')).waitFor();
    assert.equal(await group(alice, "gophers").locator(".pending").textContent(), "rejoining…");
    assert.ok(await alice.locator("#group-text").isDisabled(), "no sending while reconnecting");

    await server.start();
    for (const page of [alice, bob]) {
      await waitForState(page, "connected", RECONNECT_TIMEOUT_MS);
      await group(page, "gophers").and(page.locator('[data-joined="true"]')).waitFor();
      await waitForMessage(page, "Reconnected; rejoined 1 of 1 groups");
    }
    await waitForState(carol, "connected", RECONNECT_TIMEOUT_MS);
    await waitForMessage(carol, "Reconnected");

    // The restarted server knows the groups only because the pages joined
    // them again.
    await sendToGroup(bob, "gophers", "welcome back");
    await waitForMessage(alice, "welcome back");
    await sendPrivately(alice, "bob", "still private");
    await waitForMessage(bob, "still private");
    assert.ok(!(await shownMessages(carol)).some((m) => m.text === "welcome back" || m.text === "still private"));
    assert.deepEqual((await notices(alice)).filter((n) => n.startsWith("Connection lost")), ["Connection lost; reconnecting…"]);

    await saveScreenshots([["alice", alice], ["bob", bob]], "after-restart");
  }, { timeout: 120_000 });

  await step("sign out", async () => {
    await bob.getByRole("button", { name: "Sign out" }).click();
    await waitForState(bob, "disconnected");
    assert.ok(await bob.getByLabel("Your name").isVisible());
    assert.ok(await bob.locator("#session").isHidden(), "the session goes away with the sign-out");
    assert.equal(await bob.locator("#groups li").count(), 0);
    assert.ok(await bob.locator("#error").isHidden(), "signing out is no error");
  });

  assert.deepEqual(pageErrors, [], "uncaught errors in the pages");
  assert.deepEqual(offLoopback, [], "requests off the loopback interface");
});
