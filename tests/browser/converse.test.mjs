// Third-party web client acceptance test (issue 3): Converse.js (npm `converse.js`) in headless
// Chromium logs in to Iris over WSS, sends a 1:1 chat message that a second Converse page (another
// user) receives, and joins a bubble (a MUC room at conference.<domain>) where its groupchat message
// comes back from the room. The Rust side (crates/iris/tests/browser_converse.rs) then checks the
// chat message in the recipient's MAM archive with an independent client.
//
// Environment:
//   IRIS_BASE_URL   https://127.0.0.1:PORT of a running `iris serve` (self-signed TLS is fine)
//   IRIS_LOGIN, IRIS_PASSWORD       the sender (e.g. rita@localhost)
//   IRIS_LOGIN_B, IRIS_PASSWORD_B   the recipient
//   IRIS_CHAT_BODY  the chat message text to send
//   IRIS_ROOM       the bubble to join, e.g. team@conference.localhost
//   CHROMIUM        the browser (default /usr/bin/chromium)
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { launchBrowser } from "./lib.mjs";

const BASE = process.env.IRIS_BASE_URL;
const A = [process.env.IRIS_LOGIN, process.env.IRIS_PASSWORD];
const B = [process.env.IRIS_LOGIN_B, process.env.IRIS_PASSWORD_B];
const BODY = process.env.IRIS_CHAT_BODY || "hello from converse";
const ROOM = process.env.IRIS_ROOM;
const WSS = BASE.replace(/^https:/, "wss:") + "/xmpp-websocket";
const DIST = path.join(path.dirname(fileURLToPath(import.meta.url)), "node_modules/converse.js/dist");

// The page: Converse from node_modules, a test plugin exposing its internal API as window.conv.
const PAGE = `<!doctype html><html><head><meta charset="utf-8">
<link rel="stylesheet" href="/dist/converse.min.css">
</head><body><script type="module">
import converse from "/dist/converse.min.js";
window.converse = converse;
window.convReady = new Promise((resolve) => {
  converse.plugins.add("iris-test", { initialize() { window.conv = this._converse; resolve(); } });
});
window.startConverse = (jid, password, wss) => converse.initialize({
  assets_path: "/dist/", websocket_url: wss, jid, password, auto_login: true,
  discover_connection_methods: false, auto_reconnect: false, view_mode: "fullscreen",
  whitelisted_plugins: ["iris-test"], loglevel: "warn", play_sounds: false,
  show_controlbox_by_default: true, clear_cache_on_logout: true, persistent_store: "IndexedDB",
});
</script></body></html>`;

let server;
let origin;
let browser;

before(async () => {
  assert.ok(BASE && A[0] && B[0] && ROOM, "IRIS_BASE_URL, IRIS_LOGIN(_B), IRIS_PASSWORD(_B), IRIS_ROOM");
  server = http.createServer((req, res) => {
    const url = new URL(req.url, "http://x");
    if (url.pathname === "/") {
      res.writeHead(200, { "content-type": "text/html" }).end(PAGE);
      return;
    }
    const rel = path.normalize(decodeURIComponent(url.pathname.replace(/^\/dist\//, ""))).replace(/^(\.\.[/\\])+/, "");
    const file = path.join(DIST, rel);
    if (!url.pathname.startsWith("/dist/") || !file.startsWith(DIST) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
      res.writeHead(404).end();
      return;
    }
    const type = { ".js": "text/javascript", ".css": "text/css", ".json": "application/json", ".wasm": "application/wasm" }[path.extname(file)] || "application/octet-stream";
    res.writeHead(200, { "content-type": type });
    fs.createReadStream(file).pipe(res);
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  origin = `http://127.0.0.1:${server.address().port}`;
  // No media here: Converse only chats.
  browser = await launchBrowser({ media: false });
});

after(async () => {
  await browser?.close();
  server?.close();
});

async function openConverse([jid, password]) {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  page.on("console", (m) => { if (m.type() === "error") console.log(`[${jid}] ${m.text()}`); });
  page.on("pageerror", (e) => console.log(`[${jid}] page error: ${e.message}`));
  await page.goto(origin + "/");
  await page.waitForFunction(() => typeof window.startConverse === "function", null, { timeout: 30000 });
  await page.evaluate(([j, p, w]) => { window.startConverse(j, p, w); return window.convReady; }, [jid, password, WSS]);
  // logged in: the connection is up and the roster (Iris contacts) was fetched
  await page.waitForFunction(() => window.conv?.api?.connection?.connected?.() && window.conv.state?.roster, null, { timeout: 30000 });
  return page;
}

test("converse.js logs in over WSS, chats with another Converse user and joins a bubble", { timeout: 120000 }, async () => {
  const a = await openConverse(A);
  const b = await openConverse(B);
  assert.equal(await a.evaluate(() => window.conv.session.get("bare_jid")), A[0].toLowerCase());

  // B collects incoming chat messages
  await b.evaluate(() => {
    window.received = [];
    window.conv.api.listen.on("message", (data) => {
      const body = data?.attrs?.body;
      if (body) window.received.push({ from: data.attrs.from, body });
    });
  });

  // 1:1 chat: A opens a chat with B and sends
  await a.evaluate(async ([to, body]) => {
    const chat = await window.conv.api.chats.open(to);
    await chat.sendMessage({ body });
  }, [B[0], BODY]);
  await b.waitForFunction((body) => window.received.some((m) => m.body === body), BODY, { timeout: 20000 });
  const got = await b.evaluate(() => window.received);
  assert.ok(got.some((m) => m.body === BODY && m.from.startsWith(A[0].toLowerCase())), JSON.stringify(got));

  // Bubble: A joins (creating it as owner), is in the room, and its groupchat message comes back
  const groupBody = `${BODY} in the bubble`;
  await a.evaluate(async ([room]) => {
    const nick = window.conv.session.get("bare_jid").split("@")[0];
    window.room = await window.conv.api.rooms.open(room, { nick }, false);
  }, [ROOM]);
  await a.waitForFunction(() => window.room?.session?.get("connection_status") === window.converse.ROOMSTATUS.ENTERED, null, { timeout: 20000 });
  await a.evaluate(async (body) => { await window.room.sendMessage({ body }); }, groupBody);
  // the room's reflection carries the server's stanza id (XEP-0359) for the archive
  await a.waitForFunction(
    (body) => window.room.messages.models.some((m) => m.get("body") === body && m.get(`stanza_id ${window.room.get("jid")}`)),
    groupBody,
    { timeout: 20000 },
  );
  const occupants = await a.evaluate(() => window.room.occupants.models.map((o) => o.get("nick")));
  assert.ok(occupants.length >= 1, `occupants ${occupants}`);
});
