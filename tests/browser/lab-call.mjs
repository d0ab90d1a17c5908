// One 1:1 video call between two headless Chromium instances, each running inside its own
// network namespace of the lab (scripts/lab/lab.sh), for issue 6. Each page logs in over REST,
// gets its ICE servers and calls the other with ICE over every candidate type (host,
// server-reflexive, relayed); the test process is the signalling channel. It prints one JSON
// line: {"ok", "ttfm_ms", "gap_ms", "pair": {...}} and exits 1 if media does not flow both ways.
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

async function pageLogin({ login, password }) {
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
  window.token = t.access_token;
  return window.iceServers.length;
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
  const inbound = { audio: 0, video: 0 };
  for (const s of all) if (s.type === "inbound-rtp") inbound[s.kind] += s.bytesReceived || 0;
  return {
    local: local ? `${local.candidateType}/${local.relayProtocol || local.protocol}` : null,
    remote: remote ? `${remote.candidateType}/${remote.protocol}` : null,
    rtt_ms: pair?.currentRoundTripTime != null ? Math.round(pair.currentRoundTripTime * 1000) : null,
    inbound,
  };
}

// ---- driver ----

function wrapper(ns) {
  const file = path.join(os.tmpdir(), `iris-lab-chromium-${ns}.sh`);
  fs.writeFileSync(file, `#!/bin/sh\nexec ip netns exec ${ns} ${CHROMIUM} "$@"\n`, { mode: 0o755 });
  return file;
}

async function launch(ns, proxy) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "iris-lab-profile-"));
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
  const ctx = await chromium.launchPersistentContext(dir, {
    executablePath: wrapper(ns), headless: true, ignoreHTTPSErrors: true, timeout: 60000, args,
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

/// Polls until both sides' inbound video grows; returns the time it took or null.
async function mediaFlows(pages, since, deadlineMs) {
  const start = await Promise.all(pages.map((p) => p.evaluate(pageStats)));
  const deadline = Date.now() + deadlineMs;
  while (Date.now() < deadline) {
    await sleep(100);
    const now = await Promise.all(pages.map((p) => p.evaluate(pageStats)));
    const grew = now.every((s, i) => s.inbound.video > start[i].inbound.video && s.inbound.audio > start[i].inbound.audio);
    if (grew) return { ms: Date.now() - since, stats: now };
  }
  return null;
}

const result = { ok: false, ttfm_ms: null, gap_ms: null, a: null, b: null, error: null };
const browsers = [];
const timer = setTimeout(() => { result.error = "overall deadline (120 s)"; console.log(JSON.stringify(result)); process.exit(1); }, 120000);
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
    await p.evaluate(pageLogin, users[i]);
    await p.evaluate(pageSetup);
    pages.push(p);
  }
  const t0 = Date.now();
  await negotiate(pages[0], pages[1], false);
  if (!(await signal(pages, 30000))) throw new Error("ICE did not connect in 30 s");
  const first = await mediaFlows(pages, t0, 15000);
  if (!first) throw new Error("no media both ways within 15 s of connecting");
  result.ttfm_ms = first.ms;
  [result.a, result.b] = first.stats.map((s) => ({ local: s.local, remote: s.remote, rtt_ms: s.rtt_ms }));
  if (process.env.LAB_MOVE_CMD) {
    await sleep(1000);
    const moved = Date.now();
    execSync(process.env.LAB_MOVE_CMD, { stdio: "inherit", timeout: 10000 });
    // The client notices its new address and restarts ICE.
    await negotiate(pages[0], pages[1], true);
    if (!(await signal(pages, 30000))) throw new Error("ICE restart did not reconnect in 30 s");
    const again = await mediaFlows(pages, moved, 15000);
    if (!again) throw new Error("media did not resume after the address change");
    result.gap_ms = again.ms;
    [result.a, result.b] = again.stats.map((s) => ({ local: s.local, remote: s.remote, rtt_ms: s.rtt_ms }));
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
