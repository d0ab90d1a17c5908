// Browser acceptance test for the media relay (issue 4): two headless Chromium pages with
// `iceTransportPolicy: "relay"` exchange audio and video through Iris's built-in TURN relay over
// `turn:…?transport=udp`, `turn:…?transport=tcp` and `turns:…` on the HTTPS port, one transport at
// a time. Passes only if getStats shows a selected candidate pair whose local candidate is a relay
// candidate of the expected protocol and inbound audio and video bytes grow on both sides.
//
// Environment:
//   IRIS_BASE_URL   https://127.0.0.1:PORT of a running `iris serve` (self-signed TLS is fine)
//   IRIS_LOGIN      an existing user's login for page A, e.g. rita@localhost
//   IRIS_PASSWORD   that user's password
//   IRIS_LOGIN_B, IRIS_PASSWORD_B   the user of page B (default: the same user)
//   CHROMIUM        the browser (default /usr/bin/chromium)
//   IRIS_TRANSPORTS comma-separated subset of udp,tcp,tls (default all three)
//
// Run: node --test tests/browser/relay.test.mjs   (the Rust test crates/iris/tests/browser_relay.rs
// starts a server and does this).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launchContext, request, statsSummary } from "./lib.mjs";

const BASE = process.env.IRIS_BASE_URL;
// Two users, one per page, as in a real call (and each within its own relay allocation quota).
const USERS = [
  [process.env.IRIS_LOGIN, process.env.IRIS_PASSWORD],
  [process.env.IRIS_LOGIN_B || process.env.IRIS_LOGIN, process.env.IRIS_PASSWORD_B || process.env.IRIS_PASSWORD],
];
const TRANSPORTS = (process.env.IRIS_TRANSPORTS || "udp,tcp,tls").split(",").map((s) => s.trim());
const MEASURE_MS = 3000;

/// The single TURN URL for one transport from the server's RTCIceServer list.
function turnServerFor(servers, transport) {
  const turn = servers.find((s) => s.username && s.credential);
  assert.ok(turn, `a TURN entry with credentials in ${JSON.stringify(servers)}`);
  const urls = Array.isArray(turn.urls) ? turn.urls : [turn.urls];
  const pick = {
    udp: (u) => u.startsWith("turn:") && u.endsWith("?transport=udp"),
    tcp: (u) => u.startsWith("turn:") && u.endsWith("?transport=tcp"),
    tls: (u) => u.startsWith("turns:"),
  }[transport];
  const url = urls.find(pick);
  assert.ok(url, `a ${transport} TURN URL in ${JSON.stringify(urls)}`);
  return { urls: [url], username: turn.username, credential: turn.credential };
}

// ---- code evaluated inside the pages ----

async function pageSetup(iceServer) {
  const pc = new RTCPeerConnection({
    iceServers: [iceServer],
    iceTransportPolicy: "relay",
    bundlePolicy: "max-bundle",
  });
  window.pc = pc;
  // Trickle ICE: candidates are collected here and forwarded by the test to the other page.
  window.candidates = [];
  pc.addEventListener("icecandidate", (e) => {
    if (e.candidate && e.candidate.candidate) window.candidates.push(e.candidate.toJSON());
  });
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 320, height: 240 } });
  for (const track of stream.getTracks()) pc.addTrack(track, stream);
  return stream.getTracks().map((t) => t.kind).sort();
}

async function pageOffer() {
  await window.pc.setLocalDescription(await window.pc.createOffer());
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

function pageTakeCandidates() {
  return { candidates: window.candidates.splice(0), state: window.pc.connectionState };
}

async function pageAddCandidates(candidates) {
  for (const c of candidates) await window.pc.addIceCandidate(c);
}

// ---- the test ----

let browser;
let tokens = [];

before(async () => {
  assert.ok(BASE && USERS[0][0] && USERS[0][1], "set IRIS_BASE_URL, IRIS_LOGIN and IRIS_PASSWORD");
  for (const [login, password] of USERS) {
    const t = await request("POST", `${BASE}/api/v1/auth/login`, { body: { login, password } });
    assert.ok(t.access_token, `login of ${login} returned an access token`);
    tokens.push(t.access_token);
  }
  browser = await launchContext({
    // IRIS_STRICT_TLS: without --ignore-certificate-errors the `turns:` allocation to the
    // self-signed `localhost` certificate fails (Chromium's network service checks it).
    strictTls: !!process.env.IRIS_STRICT_TLS,
    extra: process.env.IRIS_CHROMIUM_LOG ? ["--enable-logging=stderr", "--v=0", "--vmodule=*turn_port*=2,*port_allocator*=1,*p2p_socket*=2,*socket_udp*=2"] : [],
  });
});

after(async () => {
  await browser?.close();
});

const rows = [];

for (const transport of TRANSPORTS) {
  test(`two relay-only peers exchange audio and video over TURN ${transport}`, { timeout: 90000 }, async () => {
    // Fresh credentials per transport, as a client would fetch them before a call.
    const iceServers = [];
    for (const token of tokens) {
      iceServers.push(turnServerFor(await request("GET", `${BASE}/api/v1/ice-servers`, { token }), transport));
    }
    if (transport === "tls") {
      const port = (u) => new URL(u.replace(/^turns:/, "https://").replace(/\?.*$/, "")).port;
      assert.equal(port(iceServers[0].urls[0]), new URL(BASE).port, "turns: shares the HTTPS port");
    }
    const pages = [await browser.newPage(), await browser.newPage()];
    try {
      // getUserMedia needs a secure context: the server's own HTTPS origin.
      for (const p of pages) await p.goto(`${BASE}/`, { waitUntil: "commit" });
      const [a, b] = pages;
      for (const [i, p] of pages.entries()) {
        const kinds = await p.evaluate(pageSetup, iceServers[i]);
        assert.deepEqual(kinds, ["audio", "video"]);
      }
      const t0 = Date.now();
      const offer = await a.evaluate(pageOffer);
      const answer = await b.evaluate(pageAnswer, offer);
      await a.evaluate(pageAccept, answer);
      // Signalling: forward trickled candidates between the pages until both are connected.
      // (Trickle rather than waiting for gathering to complete: Chromium also allocates from its
      // IPv6 network, where `localhost` is ::1 and nothing listens in this test, and a UDP
      // allocation only gives up after ~40 s of retransmissions.)
      const forwarded = [[], []];
      const deadline = Date.now() + 30000;
      for (;;) {
        const taken = await Promise.all(pages.map((p) => p.evaluate(pageTakeCandidates)));
        for (const [i, t] of taken.entries()) {
          forwarded[i].push(...t.candidates.map((c) => c.candidate));
          if (t.candidates.length) await pages[1 - i].evaluate(pageAddCandidates, t.candidates);
        }
        if (taken.every((t) => t.state === "connected")) break;
        const bad = taken.find((t) => t.state === "failed" || t.state === "closed");
        assert.ok(!bad, `connection ${bad?.state} over ${transport}; candidates ${JSON.stringify(forwarded)}`);
        assert.ok(Date.now() < deadline, `not connected in 30 s over ${transport}; states ${taken.map((t) => t.state)}; candidates ${JSON.stringify(forwarded)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      for (const [i, list] of forwarded.entries()) {
        assert.ok(list.length > 0, `peer ${i} gathered candidates`);
        for (const c of list) assert.match(c, / typ relay /, `relay policy: only relay candidates (${c})`);
      }
      const connectMs = Date.now() - t0;

      // Let media start, then measure growth over MEASURE_MS.
      await new Promise((r) => setTimeout(r, 1000));
      const first = await Promise.all(pages.map((p) => statsSummary(p)));
      await new Promise((r) => setTimeout(r, MEASURE_MS));
      const second = await Promise.all(pages.map((p) => statsSummary(p)));

      for (const [i, name] of ["A", "B"].entries()) {
        const s = second[i];
        assert.equal(s.pairState, "succeeded", `${name}: selected pair succeeded: ${JSON.stringify(s)}`);
        assert.equal(s.local?.type, "relay", `${name}: local candidate is relayed: ${JSON.stringify(s)}`);
        assert.equal(s.local?.relayProtocol, transport, `${name}: relayProtocol ${transport}: ${JSON.stringify(s)}`);
        assert.equal(s.remote?.type, "relay", `${name}: remote candidate is relayed: ${JSON.stringify(s)}`);
        for (const kind of ["audio", "video"]) {
          const before = first[i].inbound[kind] ?? 0;
          const now = s.inbound[kind] ?? 0;
          assert.ok(now > before, `${name}: inbound ${kind} bytes grow (${before} -> ${now})`);
        }
        rows.push({
          transport,
          peer: name,
          "connected (ms)": connectMs,
          relayProtocol: s.local.relayProtocol,
          "audio bytes": s.inbound.audio,
          [`audio +${MEASURE_MS / 1000}s`]: s.inbound.audio - (first[i].inbound.audio ?? 0),
          "video bytes": s.inbound.video,
          [`video +${MEASURE_MS / 1000}s`]: s.inbound.video - (first[i].inbound.video ?? 0),
        });
      }
    } finally {
      // Closing the connections first lets Chromium release its allocations (Refresh lifetime 0).
      for (const p of pages) await p.evaluate(() => window.pc?.close()).catch(() => {});
      for (const p of pages) await p.close().catch(() => {});
    }
  });
}

after(() => {
  if (rows.length) {
    console.log("relay media through Iris (Chromium, iceTransportPolicy=relay):");
    console.table(rows);
  }
});
