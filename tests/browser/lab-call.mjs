// The network lab's user journey (scripts/lab/lab.sh, issue 6): two headless Chromium instances,
// each inside its own client network namespace, use the Iris web client (the app `iris serve`
// serves at /) through its UI only: sign in with the login form, become contacts (directory
// search, Add, Accept), exchange a chat message each way, then A starts a video call from B's
// conversation with the call button and B answers it. Media must flow both ways (getStats of the
// app's RTCPeerConnection: inbound audio and video bytes grow on both sides, video frames
// decoded). With LAB_MOVE_A/B (S7) first A's (the caller's), then B's (the callee's) address
// changes mid-call; each time the app must restart ICE by itself and media must flow both
// ways again. Prints one JSON line:
//   {"ok", "step", "login", "chat_ms", "ttfm_ms", "gap_ms" (the longest), "gaps_ms": {"caller",
//    "callee"}, "restarts", "a": {pair, rtt_ms, frame, in, out, gathered}, "b": {…}, "error"}
// and exits 1 unless everything worked. `step` names the last step begun (where it failed).
// Times: chat from A's send to B's reply shown at A; time to first media from B's answer
// until audio and video arrive (frames decoded) on both sides; a gap from the address change
// until both sides receive audio and video again.
//
// Environment:
//   IRIS_BASE_URL             https://iris.lab (as the clients see it)
//   LAB_NS_A, LAB_NS_B        network namespaces of the two browsers
//   LAB_LOGIN_A/B, LAB_PASSWORD_A/B, LAB_NAME_A/B (display names, for the directory buttons)
//   LAB_PROXY_A, LAB_PROXY_B  optional HTTP proxy of each browser (http://10.1.0.1:3128)
//   LAB_MOVE_A, LAB_MOVE_B    optional shell commands that change A's / B's address (S7)
//   LAB_DEBUG_ICE             set: log ICE servers, candidates, errors and states to stderr
//   CHROMIUM                  the browser (default /usr/bin/chromium)
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { execSync } from "node:child_process";
import { CHROMIUM, addIceHelpers, appPc, grew, launchBrowser, sleep, statsSummary, webLogin, within } from "./lib.mjs";

const BASE = process.env.IRIS_BASE_URL;
const T = 20000; // any single UI step
const DEADLINE_MS = 140000; // lab.sh kills this process at 170 s

const users = ["A", "B"].map((k) => ({
  ns: process.env[`LAB_NS_${k}`],
  login: process.env[`LAB_LOGIN_${k}`],
  password: process.env[`LAB_PASSWORD_${k}`],
  name: process.env[`LAB_NAME_${k}`],
  proxy: process.env[`LAB_PROXY_${k}`] || "",
}));

const result = { ok: false, step: "launch", login: false, chat_ms: null, ttfm_ms: null, gap_ms: null, gaps_ms: {}, restarts: 0, a: null, b: null, error: null };
const log = (...m) => console.error(`[lab-call ${new Date().toISOString().slice(11, 23)}]`, ...m);
const step = (s) => {
  result.step = s;
  log(s);
};

/// Chromium run inside network namespace `ns` (Playwright talks to it over a pipe).
function wrapper(ns, dir) {
  const file = path.join(dir, `chromium-in-${ns}.sh`);
  fs.writeFileSync(file, `#!/bin/sh\nexec ip netns exec ${ns} ${CHROMIUM} "$@"\n`, { mode: 0o755 });
  return file;
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "iris-lab-call-"));
const browsers = [];

async function open(u) {
  // Names resolve through the site's DNS (lab.sh), as on a real network; S5 has only a proxy.
  const extra = u.proxy ? [`--proxy-server=${u.proxy}`] : [];
  const browser = await launchBrowser({ executablePath: wrapper(u.ns, tmp), extra });
  browsers.push(browser);
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 800 } });
  await context.grantPermissions(["camera", "microphone"], { origin: BASE });
  await addIceHelpers(context);
  if (process.env.LAB_DEBUG_ICE) {
    await context.addInitScript(() => {
      const Orig = window.RTCPeerConnection;
      window.RTCPeerConnection = function (cfg, ...rest) {
        console.error("pc config " + JSON.stringify(cfg, (k, v) => (k === "credential" ? "(redacted)" : v)));
        const pc = new Orig(cfg, ...rest);
        pc.addEventListener("icecandidateerror", (e) => console.error(`icecandidateerror ${e.url} ${e.errorCode} ${e.errorText} ${e.address}`));
        pc.addEventListener("icecandidate", (e) => console.error(`icecandidate ${e.candidate?.candidate}`));
        pc.addEventListener("iceconnectionstatechange", () => console.error(`ice ${pc.iceConnectionState}`));
        pc.addEventListener("signalingstatechange", () => console.error(`signaling ${pc.signalingState}`));
        window.addEventListener("online", () => console.error("online event"));
        window.addEventListener("offline", () => console.error("offline event"));
        return pc;
      };
      window.RTCPeerConnection.prototype = Orig.prototype;
    });
  }
  const page = await context.newPage();
  page.on("console", (m) => (m.type() === "error" || m.type() === "warning") && log(`${u.login} console: ${m.text()}`));
  page.on("pageerror", (e) => log(`${u.login} page error: ${e.message}`));
  return page;
}

const row = (page, jid) => page.locator(`button.row[data-jid="${jid}"]`);
const both = (pages) => Promise.all(pages.map((p) => statsSummary(p, appPc)));
const brief = (s) => s && { pair: s.pair, rtt_ms: s.rttMs, frame: `${s.frameWidth}x${s.frameHeight}`, in: s.inbound, out: s.outbound, gathered: s.gathered };
const ufrag = (page) => page.evaluate(() => window.iceUfrag(window.iris.calls.current?.pc?.localDescription));

/// Media flows both ways: on both pages audio and video arrived since `before` (per side) and
/// video frames were decoded. Polls every `every` ms for at most `ms`; returns the stats or null.
async function flowing(pages, before, ms, every = 100) {
  let prev = before;
  const [stats] = await within(ms, async () => {
    const now = await both(pages);
    const ok = now.every((s, i) => s && grew(prev?.[i], s) && s.framesDecoded > 0 && s.outbound.audio > 0 && s.outbound.video > 0);
    prev = before === null ? prev : now;
    return ok ? now : null;
  }, every);
  return stats;
}

const timer = setTimeout(() => {
  result.error = `overall deadline (${DEADLINE_MS / 1000} s) in step ${result.step}`;
  console.log(JSON.stringify(result));
  process.exit(1);
}, DEADLINE_MS);

try {
  const pages = [];
  for (const u of users) pages.push(await open(u));
  const [a, b] = pages;

  step("login");
  for (const [i, p] of pages.entries()) {
    await p.goto(`${BASE}/`, { waitUntil: "load", timeout: 30000 });
    await webLogin(p, BASE, users[i].login, users[i].password, { timeout: T });
  }
  result.login = true;

  step("contacts");
  await a.getByLabel("Search the directory").fill(users[1].login.split("@")[0]);
  await a.getByRole("button", { name: `Add ${users[1].name}` }).click({ timeout: T });
  await a.getByLabel("Search the directory").fill("");
  await b.getByRole("button", { name: `Accept ${users[0].name}` }).click({ timeout: T });
  // Both see the other online (the call button needs the peer's presence).
  await row(a, users[1].login).locator(".presence-text", { hasText: "Available" }).waitFor({ timeout: T });
  await row(b, users[0].login).locator(".presence-text", { hasText: "Available" }).waitFor({ timeout: T });

  step("chat");
  const tc = Date.now();
  const hello = [`Hello ${users[1].name} ${tc}`, `Hello ${users[0].name} ${tc}`];
  await row(a, users[1].login).click();
  await row(b, users[0].login).click();
  const input = (p) => p.getByLabel("Message", { exact: true });
  await input(a).fill(hello[0]);
  await input(a).press("Enter");
  await b.locator(".msg .text", { hasText: hello[0] }).waitFor({ timeout: T });
  await input(b).fill(hello[1]);
  await input(b).press("Enter");
  await a.locator(".msg .text", { hasText: hello[1] }).waitFor({ timeout: T });
  result.chat_ms = Date.now() - tc;

  step("call");
  await a.getByRole("button", { name: "Video call" }).click({ timeout: T });
  await b.getByRole("alertdialog").waitFor({ timeout: T });
  const answered = Date.now();
  await b.getByRole("button", { name: "Accept with video" }).click({ timeout: T });
  // Time to first media: from the answer until audio and video arrive on both sides.
  const first = await flowing(pages, null, 30000);
  if (!first) throw new Error(`no media both ways within 30 s of answering: ${JSON.stringify((await both(pages)).map(brief))}`);
  result.ttfm_ms = Date.now() - answered;
  // …and keeps flowing.
  await sleep(1000);
  const steady = await flowing(pages, first, 5000, 250);
  if (!steady) throw new Error("media stopped after the first packets");
  [result.a, result.b] = steady.map(brief);

  // S7: first the caller's address changes, then the callee's; each time the app must restart
  // ICE (the initiator restarts; a responder asks it to) and media must flow both ways again.
  const moves = [["caller", process.env.LAB_MOVE_A], ["callee", process.env.LAB_MOVE_B]].filter(([, cmd]) => cmd);
  for (const [who, cmd] of moves) {
    step(`address change (${who})`);
    const before = await ufrag(a);
    const moved = Date.now();
    execSync(cmd, { stdio: "inherit", timeout: 10000 });
    // Packets already in flight may still arrive: consecutive samples 250 ms apart must grow.
    await sleep(300);
    const again = await flowing(pages, await both(pages), 30000, 250);
    if (!again) throw new Error(`media did not resume within 30 s of the ${who}'s address change: ${JSON.stringify((await both(pages)).map(brief))}`);
    const gap = Date.now() - moved;
    result.gaps_ms[who] = gap;
    result.gap_ms = Math.max(result.gap_ms ?? 0, gap);
    [result.a, result.b] = again.map(brief);
    if ((await ufrag(a)) === before) throw new Error(`media resumed after the ${who}'s address change without an ICE restart`);
    result.restarts++;
  }

  step("hang up");
  await a.getByRole("button", { name: "Hang up" }).click({ timeout: T });
  for (const p of pages) await p.locator("section.call").waitFor({ state: "detached", timeout: T });
  result.ok = true;
} catch (e) {
  result.error = String(e && e.message ? e.message : e).split("\n")[0];
}
for (const b of browsers) await b.close().catch(() => {});
fs.rmSync(tmp, { recursive: true, force: true });
clearTimeout(timer);
console.log(JSON.stringify(result));
process.exit(result.ok ? 0 : 1);
