// Login, chat and a 1:1 video call between two headless Chromium instances, each running inside
// its own network namespace of the lab (scripts/lab/lab.sh), for issue 6. Each page logs in over
// REST, exchanges a chat message each way over XMPP/WSS,
// gets its ICE servers (R-9) and calls the other with ICE over every candidate type (host,
// server-reflexive, relayed); the test process is the signalling channel. It prints one JSON
// line: {"ok", "chat_ms", "ttfm_ms", "gap_ms", "a": {...}, "b": {...}} and exits 1 if media does not flow both ways.
//
// The call is driven by the small functions in "page code" below, so the Iris web client can
// replace them later (same inputs: base URL, login; same outputs: stats).
//
// Environment:
//   IRIS_BASE_URL             https://iris.lab (as the clients see it)
//   LAB_NS_A, LAB_NS_B        network namespaces of the two browsers
//   LAB_LOGIN_A/B, LAB_PASSWORD_A/B
//   LAB_PROXY_A, LAB_PROXY_B  optional HTTP proxy of each browser (http://10.1.0.1:3128)
//   LAB_RESOLVE               optional "iris.lab=203.0.113.1" for Chromium's resolver
//   LAB_MOVE_CMD              optional shell command that changes A's address mid-call (S7)
//   CHROMIUM                  the browser (default /usr/bin/chromium)
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { execSync } from "node:child_process";
import { chromium } from "playwright-core";

const BASE = process.env.IRIS_BASE_URL;
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- page code (swap for the web client) ----

async function pageLogin({ login, password, mapHost }) {
  const r = await fetch("/api/v1/auth/login", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ login, password }),
  });
  if (!r.ok) throw new Error(`login: HTTP ${r.status}`);
  const t = await r.json();
  const ice = await fetch("/api/v1/ice-servers", { headers: { authorization: `Bearer ${t.access_token}` } });
  if (!ice.ok) throw new Error(`ice-servers: HTTP ${ice.status}`);
  window.iceServers = await ice.json();
  // Chromium resolves TURN names for UDP outside the rules given to its HTTP stack: the lab
  // hands it the address (the name is still what HTTPS, TLS and proxies see).
  if (mapHost) {
    const [name, ip] = mapHost.split("=");
    for (const s of window.iceServers) {
      const urls = Array.isArray(s.urls) ? s.urls : [s.urls];
      s.urls = urls.map((u) => (u.startsWith("turns:") ? u : u.replace(`:${name}:`, `:${ip}:`)));
    }
  }
  window.token = t.access_token;
  return window.iceServers.length;
}

// Chat: XMPP over secure WebSocket (RFC 7395) on the page's origin, SASL PLAIN, bind, presence.
async function pageChatConnect({ login, password }) {
  const [local, domain] = login.split("@");
  const frames = [];
  const ws = new WebSocket(`wss://${location.host}/xmpp-websocket`, "xmpp");
  ws.onmessage = (e) => frames.push(String(e.data));
  await new Promise((ok, fail) => { ws.onopen = ok; ws.onerror = () => fail(new Error("WebSocket failed")); setTimeout(() => fail(new Error("WebSocket timeout")), 10000); });
  let cursor = 0;
  const next = async (pred, what) => {
    const deadline = Date.now() + 10000;
    for (;;) {
      while (cursor < frames.length) {
        const f = frames[cursor++];
        if (f.includes("<failure") || f.includes("stream:error") || f.includes("<close")) throw new Error(`${what}: ${f.slice(0, 200)}`);
        if (pred(f)) return f;
      }
      if (Date.now() > deadline) throw new Error(`${what}: timed out`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const open = () => ws.send(`<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="${domain}" version="1.0"/>`);
  open();
  await next((f) => f.includes("PLAIN"), "stream features");
  ws.send(`<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">${btoa(`\0${local}\0${password}`)}</auth>`);
  await next((f) => f.includes("<success"), "SASL PLAIN");
  open();
  await next((f) => f.includes("urn:ietf:params:xml:ns:xmpp-bind"), "bind feature");
  ws.send(`<iq xmlns="jabber:client" type="set" id="bind1"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"/></iq>`);
  await next((f) => f.includes("bind1"), "bind");
  ws.send(`<presence xmlns="jabber:client"/>`);
  window.chat = { ws, frames, domain };
}

function pageChatSend({ to, body }) {
  window.chat.ws.send(`<message xmlns="jabber:client" type="chat" to="${to}"><body>${body}</body></message>`);
}

async function pageChatWait(body) {
  const deadline = Date.now() + 10000;
  while (Date.now() < deadline) {
    if (window.chat.frames.some((f) => f.includes("<message") && f.includes(`<body>${body}</body>`))) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

async function pageSetup() {
  const pc = new RTCPeerConnection({ iceServers: window.iceServers, bundlePolicy: "max-bundle" });
  window.pc = pc;
  window.candidates = [];
  pc.addEventListener("icecandidate", (e) => {
    if (e.candidate && e.candidate.candidate) window.candidates.push(e.candidate.toJSON());
  });
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 360 } });
  for (const track of stream.getTracks()) pc.addTrack(track, stream);
}

async function pageOffer(restart) {
  await window.pc.setLocalDescription(await window.pc.createOffer({ iceRestart: !!restart }));
  return window.pc.localDescription.toJSON();
}

async function pageAnswer(offer) {
  await window.pc.setRemoteDescription(offer);
  await window.pc.setLocalDescription(await window.pc.createAnswer());
  return window.pc.localDescription.toJSON();
}

async function pageAccept(answer) {
  await window.pc.setRemoteDescription(answer);
}

function pageTake() {
  return { candidates: window.candidates.splice(0), state: window.pc.connectionState };
}

async function pageAdd(candidates) {
  for (const c of candidates) await window.pc.addIceCandidate(c).catch(() => {});
}

async function pageStats() {
  const all = [...(await window.pc.getStats()).values()];
  const byId = new Map(all.map((s) => [s.id, s]));
  const transport = all.find((s) => s.type === "transport" && s.selectedCandidatePairId);
  const pair = transport ? byId.get(transport.selectedCandidatePairId) : undefined;
  const local = pair ? byId.get(pair.localCandidateId) : undefined;
  const remote = pair ? byId.get(pair.remoteCandidateId) : undefined;
  const gathered = {};
  for (const s of all) {
    if (s.type !== "local-candidate") continue;
    const k = `${s.candidateType}/${s.relayProtocol || s.protocol}`;
    gathered[k] = (gathered[k] || 0) + 1;
  }
  const inbound = { audio: 0, video: 0 };
  for (const s of all) if (s.type === "inbound-rtp") inbound[s.kind] += s.bytesReceived || 0;
  return {
    local: local ? `${local.candidateType}/${local.relayProtocol || local.protocol}` : null,
    remote: remote ? `${remote.candidateType}/${remote.protocol}` : null,
    rtt_ms: pair?.currentRoundTripTime != null ? Math.round(pair.currentRoundTripTime * 1000) : null,
    gathered,
    inbound,
  };
}

// ---- driver ----

function wrapper(ns, dir) {
  const file = path.join(dir, `chromium-in-${ns}.sh`);
  fs.writeFileSync(file, `#!/bin/sh\nexec ip netns exec ${ns} ${CHROMIUM} "$@"\n`, { mode: 0o755 });
  return file;
}

async function launch(ns, proxy) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "iris-lab-profile-"));
  const profile = path.join(dir, "profile");
  const args = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream", "--ignore-certificate-errors",
  ];
  if (proxy) args.push(`--proxy-server=${proxy}`);
  if (process.env.LAB_RESOLVE && !proxy) {
    const [name, ip] = process.env.LAB_RESOLVE.split("=");
    args.push(`--host-resolver-rules=MAP ${name} ${ip}`);
  }
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: wrapper(ns, dir), headless: true, ignoreHTTPSErrors: true, timeout: 60000, args,
  });
  return { ctx, dir };
}

async function signal(pages, deadlineMs) {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const taken = await Promise.all(pages.map((p) => p.evaluate(pageTake)));
    for (const [i, t] of taken.entries()) if (t.candidates.length) await pages[1 - i].evaluate(pageAdd, t.candidates);
    if (taken.every((t) => t.state === "connected")) return true;
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
}

async function negotiate(a, b, restart) {
  const offer = await a.evaluate(pageOffer, restart);
  const answer = await b.evaluate(pageAnswer, offer);
  await a.evaluate(pageAccept, answer);
}

/// Polls until both sides' inbound audio and video grow, forwarding trickled candidates
/// meanwhile; returns the time since `since` or null.
async function mediaFlows(pages, since, deadlineMs) {
  const start = await Promise.all(pages.map((p) => p.evaluate(pageStats)));
  const deadline = Date.now() + deadlineMs;
  while (Date.now() < deadline) {
    await sleep(100);
    const taken = await Promise.all(pages.map((p) => p.evaluate(pageTake)));
    for (const [i, t] of taken.entries()) if (t.candidates.length) await pages[1 - i].evaluate(pageAdd, t.candidates);
    const now = await Promise.all(pages.map((p) => p.evaluate(pageStats)));
    const grew = now.every((s, i) => s.inbound.video > start[i].inbound.video && s.inbound.audio > start[i].inbound.audio);
    if (grew) return { ms: Date.now() - since, stats: now };
  }
  return null;
}

const result = { ok: false, chat_ms: null, ttfm_ms: null, gap_ms: null, a: null, b: null, error: null };
const browsers = [];
const timer = setTimeout(() => { result.error = "overall deadline (140 s)"; console.log(JSON.stringify(result)); process.exit(1); }, 140000);
try {
  const nss = [process.env.LAB_NS_A, process.env.LAB_NS_B];
  const proxies = [process.env.LAB_PROXY_A, process.env.LAB_PROXY_B];
  const users = [
    { login: process.env.LAB_LOGIN_A, password: process.env.LAB_PASSWORD_A },
    { login: process.env.LAB_LOGIN_B, password: process.env.LAB_PASSWORD_B },
  ];
  for (const [i, ns] of nss.entries()) browsers.push(await launch(ns, proxies[i]));
  const pages = [];
  for (const [i, b] of browsers.entries()) {
    const p = await b.ctx.newPage();
    await p.goto(`${BASE}/`, { waitUntil: "commit", timeout: 30000 });
    await p.evaluate(pageLogin, { ...users[i], mapHost: proxies[i] ? null : process.env.LAB_RESOLVE });
    await p.evaluate(pageSetup);
    pages.push(p);
  }
  // Chat both ways over XMPP/WSS before the call.
  const tc = Date.now();
  for (const [i, p] of pages.entries()) await p.evaluate(pageChatConnect, users[i]);
  const bodies = [`hello bob ${Date.now()}`, `hello alice ${Date.now()}`];
  await pages[0].evaluate(pageChatSend, { to: users[1].login, body: bodies[0] });
  if (!(await pages[1].evaluate(pageChatWait, bodies[0]))) throw new Error("chat: B did not receive A's message");
  await pages[1].evaluate(pageChatSend, { to: users[0].login, body: bodies[1] });
  if (!(await pages[0].evaluate(pageChatWait, bodies[1]))) throw new Error("chat: A did not receive B's message");
  result.chat_ms = Date.now() - tc;
  const t0 = Date.now();
  await negotiate(pages[0], pages[1], false);
  if (!(await signal(pages, 30000))) throw new Error("ICE did not connect in 30 s");
  const first = await mediaFlows(pages, t0, 15000);
  if (!first) throw new Error("no media both ways within 15 s of connecting");
  result.ttfm_ms = first.ms;
  [result.a, result.b] = first.stats.map((s) => ({ local: s.local, remote: s.remote, rtt_ms: s.rtt_ms, gathered: s.gathered }));
  if (process.env.LAB_MOVE_CMD) {
    await sleep(1000);
    const moved = Date.now();
    execSync(process.env.LAB_MOVE_CMD, { stdio: "inherit", timeout: 10000 });
    // The client notices its new address and restarts ICE (R-11).
    await negotiate(pages[0], pages[1], true);
    const again = await mediaFlows(pages, moved, 40000);
    if (!again) throw new Error("media did not resume after the address change");
    result.gap_ms = again.ms;
    [result.a, result.b] = again.stats.map((s) => ({ local: s.local, remote: s.remote, rtt_ms: s.rtt_ms, gathered: s.gathered }));
  }
  result.ok = true;
} catch (e) {
  result.error = String(e && e.message ? e.message : e).split("\n")[0];
}
for (const b of browsers) {
  await b.ctx.close().catch(() => {});
  fs.rmSync(b.dir, { recursive: true, force: true });
}
clearTimeout(timer);
console.log(JSON.stringify(result));
process.exit(result.ok ? 0 : 1);
