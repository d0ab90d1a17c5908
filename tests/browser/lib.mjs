// Shared helpers of the browser tests (relay, web, converse, conference and the network lab's
// call driver): launching headless Debian Chromium through playwright-core with the flags every
// test needs, HTTPS requests to a server with a self-signed certificate, signing in to the Iris
// web client through its login form, and a getStats summary of an RTCPeerConnection (selected
// candidate pair, inbound/outbound bytes, received frame size). Test logic stays in the tests.
import fs from "node:fs";
import https from "node:https";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";

export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/// Chromium flags: headless, no sandbox/GPU, quiet (no QUIC, sync, component updates),
/// fake camera and microphone granted without prompts (`media`), self-signed certificates
/// accepted (Chromium does TURN over TLS in its network service, which honours only this flag).
export function chromiumArgs({ media = true, strictTls = false, extra = [] } = {}) {
  return [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ...(media ? ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"] : []),
    ...(strictTls ? [] : ["--ignore-certificate-errors"]),
    ...extra,
  ];
}

/// A headless Chromium (`chromium.launch`); `executablePath` may be a wrapper (the lab runs
/// Chromium inside a network namespace). Options as for `chromiumArgs`.
export function launchBrowser({ executablePath = CHROMIUM, ...opts } = {}) {
  return chromium.launch({ executablePath, headless: true, timeout: 60000, args: chromiumArgs(opts) });
}

/// One persistent context in a fresh profile directory, removed again by `close()`.
/// `context` holds extra Playwright context options (e.g. `bypassCSP`).
export async function launchContext({ executablePath = CHROMIUM, context = {}, ...opts } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "iris-chromium-"));
  const ctx = await chromium.launchPersistentContext(dir, {
    executablePath, headless: true, ignoreHTTPSErrors: true, timeout: 60000, args: chromiumArgs(opts), ...context,
  });
  const close = ctx.close.bind(ctx);
  ctx.close = async () => {
    await close().catch(() => {});
    fs.rmSync(dir, { recursive: true, force: true });
  };
  return ctx;
}

/// Installs `window.iceUfrag(description)` in every page of `context`: the ICE username
/// fragment of an RTCSessionDescription, or null. Code that runs in the page (`evaluate`,
/// `waitForFunction`) cannot import this module, so the tests share it this way.
export function addIceHelpers(context) {
  return context.addInitScript(() => {
    window.iceUfrag = (d) => /a=ice-ufrag:(\S+)/.exec(d?.sdp ?? "")?.[1] ?? null;
  });
}

/// A JSON request to the server under test (self-signed certificate accepted); rejects on
/// any status outside 2xx.
export function request(method, url, { body, token } = {}) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = https.request(
      url,
      {
        method,
        rejectUnauthorized: false,
        timeout: 15000,
        headers: {
          ...(data ? { "content-type": "application/json", "content-length": Buffer.byteLength(data) } : {}),
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c) => (text += c));
        res.on("end", () => {
          if (res.statusCode < 200 || res.statusCode >= 300) reject(new Error(`${method} ${url}: HTTP ${res.statusCode}: ${text}`));
          else resolve(text ? JSON.parse(text) : null);
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${method} ${url}: timed out`)));
    req.on("error", reject);
    if (data) req.write(data);
    req.end();
  });
}

/// Polls `f` every `every` ms until it returns a truthy value or `ms` pass; returns
/// `[value, elapsed ms]` (the value is the last, falsy one on timeout).
export async function within(ms, f, every = 100) {
  const start = Date.now();
  let v;
  while (Date.now() - start < ms) {
    v = await f();
    if (v) return [v, Date.now() - start];
    await sleep(every);
  }
  return [await f(), Date.now() - start];
}

/// Signs in to the Iris web client at `base`/ through its login form and waits until the
/// roster is shown and the XMPP session is online.
export async function webLogin(page, base, login, password, { timeout = 20000 } = {}) {
  if (!page.url().startsWith(base)) await page.goto(base + "/", { waitUntil: "load", timeout });
  await page.getByLabel("Login").fill(login);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("complementary", { name: "Contacts and bubbles" }).waitFor({ timeout });
  await page.waitForFunction(() => window.iris.app.status === "online" && window.iris.app.readyAt > 0, null, { timeout });
}

/// In-page getter of the web client's current call's RTCPeerConnection (`window.iris` is the
/// app's documented handle, set in web/src/main.tsx).
export const appPc = () => window.iris?.calls?.current?.pc ?? null;

/// The getStats summary of the RTCPeerConnection `getPc` returns in `page` (default
/// `window.pc`), or null without one:
///   { state, iceState, pairState, local: {type, protocol, relayProtocol, address, url},
///     remote: {type, protocol, address}, pair: "relay/udp ⇄ srflx/udp", rttMs,
///     inbound: {audio, video} bytes, outbound: {audio, video} bytes, packetsIn,
///     framesDecoded, frameWidth, frameHeight (largest inbound video), gathered: {"host/udp": n} }
export async function statsSummary(page, getPc = () => window.pc) {
  const pc = await page.evaluateHandle(getPc);
  try {
    return await pc.evaluate(pageSummary);
  } finally {
    await pc.dispose().catch(() => {});
  }
}

// Runs in the page (self-contained).
async function pageSummary(pc) {
  if (!pc) return null;
  const all = [...(await pc.getStats()).values()];
  const byId = new Map(all.map((s) => [s.id, s]));
  const transport = all.find((s) => s.type === "transport" && s.selectedCandidatePairId);
  const pair = transport ? byId.get(transport.selectedCandidatePairId) : undefined;
  const l = pair ? byId.get(pair.localCandidateId) : undefined;
  const r = pair ? byId.get(pair.remoteCandidateId) : undefined;
  const local = l ? { type: l.candidateType, protocol: l.protocol, relayProtocol: l.relayProtocol ?? null, address: l.address ?? null, url: l.url ?? null } : null;
  const remote = r ? { type: r.candidateType, protocol: r.protocol, address: r.address ?? null } : null;
  const out = {
    state: pc.connectionState,
    iceState: pc.iceConnectionState,
    pairState: pair?.state ?? null,
    local,
    remote,
    pair: local && remote ? `${local.type}/${local.relayProtocol || local.protocol} ⇄ ${remote.type}/${remote.protocol}` : null,
    rttMs: pair?.currentRoundTripTime != null ? Math.round(pair.currentRoundTripTime * 1000) : null,
    inbound: { audio: 0, video: 0 },
    outbound: { audio: 0, video: 0 },
    packetsIn: { audio: 0, video: 0 },
    framesDecoded: 0,
    frameWidth: 0,
    frameHeight: 0,
    gathered: {},
  };
  for (const s of all) {
    if (s.type === "inbound-rtp" && s.kind in out.inbound) {
      out.inbound[s.kind] += s.bytesReceived || 0;
      out.packetsIn[s.kind] += s.packetsReceived || 0;
      if (s.kind === "video") {
        out.framesDecoded += s.framesDecoded || 0;
        if ((s.frameWidth || 0) * (s.frameHeight || 0) > out.frameWidth * out.frameHeight) {
          out.frameWidth = s.frameWidth;
          out.frameHeight = s.frameHeight;
        }
      }
    } else if (s.type === "outbound-rtp" && s.kind in out.outbound) {
      out.outbound[s.kind] += s.bytesSent || 0;
    } else if (s.type === "local-candidate") {
      const k = `${s.candidateType}/${s.relayProtocol || s.protocol}`;
      out.gathered[k] = (out.gathered[k] || 0) + 1;
    }
  }
  return out;
}

/// True if audio and video arrived between two summaries of the same connection.
export function grew(before, after) {
  if (!after) return false;
  const b = before ?? { inbound: { audio: 0, video: 0 } };
  return after.inbound.audio > b.inbound.audio && after.inbound.video > b.inbound.video;
}
