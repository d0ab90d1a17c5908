// End-to-end test of bubble conferences in the Iris web client (issue 7, part 6) in headless
// Chromium against a real `iris serve`: three users (ann, bob, cat, password IRIS_PASSWORD) sign
// in to the app at `/`; ann starts a conference from a bubble, bob and cat see "Join (n)" and
// join through the UI. Asserts with getStats on the app's own RTCPeerConnection: everyone
// receives everyone's audio and video; in grid view each received camera is the layer the tile
// size asks for (360p for tall tiles, 180p in a small window); in talker view the talker arrives
// at 720p; in thumbnails view the thumbnails at 180p; a screen share arrives; mute and camera
// states reach the participant list; contacts see "In a conference"; a participant who leaves
// disappears for the others within 5 s. Saves screenshots to IRIS_SCREENSHOTS.
//
// Run by crates/iris/tests/browser_web_conference.rs.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { chromium } from "playwright-core";
import { addIceHelpers } from "./lib.mjs";

const BASE = process.env.IRIS_BASE_URL;
const PASSWORD = process.env.IRIS_PASSWORD;
const SHOTS = process.env.IRIS_SCREENSHOTS || "/tmp";
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const T = 20000;
const BIG = { width: 1280, height: 800 };
const SMALL = { width: 960, height: 540 };

let browser;
const consoleErrors = [];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function newUser(name) {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: BIG });
  await context.grantPermissions(["camera", "microphone"], { origin: BASE });
  await addIceHelpers(context);
  const page = await context.newPage();
  page.on("console", (m) => {
    if (m.type() === "error") consoleErrors.push(`${name}: ${m.text()}`);
    if (m.type() === "warning") console.log(`${name} warning: ${m.text()}`);
  });
  page.on("pageerror", (e) => consoleErrors.push(`${name}: ${e.message}`));
  return page;
}

async function login(page, login) {
  await page.goto(BASE + "/", { waitUntil: "load" });
  await page.getByLabel("Login").fill(login);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForFunction(() => window.iris.app.status === "online" && window.iris.app.readyAt > 0, null, { timeout: T });
}

async function shot(page, name) {
  const toasts = (show) => page.evaluate((v) => document.querySelector(".toasts")?.style.setProperty("display", v), show);
  await toasts("none");
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`) });
  await toasts("");
}

const contactRow = (page, jid) => page.locator(`button.row[data-jid="${jid}"]`);

async function befriend(a, b, bLogin, bName, aName) {
  await a.getByLabel("Search the directory").fill(bLogin.split("@")[0]);
  await a.getByRole("button", { name: `Add ${bName}` }).click();
  await a.getByLabel("Search the directory").fill("");
  await b.getByRole("button", { name: `Accept ${aName}` }).click({ timeout: T });
}

/** Inbound streams of the page's conference, with the slot kind and the source participant. */
async function confStats(page) {
  return page.evaluate(async () => {
    const c = window.iris.confs.current;
    if (!c?.pc) return null;
    const kindOf = {};
    for (const [t, k] of c.kinds) if (t.mid !== null) kindOf[t.mid] = k;
    const all = [...(await c.pc.getStats()).values()];
    return {
      id: c.id,
      view: c.view,
      state: c.pc.connectionState,
      inbound: all
        .filter((s) => s.type === "inbound-rtp")
        .map((s) => ({
          mid: s.mid,
          slot: kindOf[s.mid],
          source: c.slots[s.mid] ?? null,
          packets: s.packetsReceived || 0,
          bytes: s.bytesReceived || 0,
          frameHeight: s.frameHeight || 0,
          framesDecoded: s.framesDecoded || 0,
          t: s.timestamp,
        })),
    };
  });
}

/** Streams that received packets (and kbit/s) over `ms`. */
async function flowing(page, ms = 1500) {
  const a = await confStats(page);
  await sleep(ms);
  const b = await confStats(page);
  if (!a || !b) return [];
  return b.inbound
    .map((s) => {
      const prev = a.inbound.find((x) => x.mid === s.mid);
      const dt = prev ? (s.t - prev.t) / 1000 : 1;
      return { ...s, kbps: prev ? ((s.bytes - prev.bytes) * 8) / 1000 / dt : 0, flowing: !!prev && s.packets > prev.packets, decoding: !!prev && s.framesDecoded > prev.framesDecoded };
    })
    .filter((s) => s.flowing);
}

async function within(ms, f) {
  const start = Date.now();
  let v;
  while (Date.now() - start < ms) {
    v = await f();
    if (v) return [v, Date.now() - start];
    await sleep(200);
  }
  return [await f(), Date.now() - start];
}

const fmt = (s) => s.map((x) => `${x.slot}:${x.source}:${x.frameHeight}p:${x.kbps.toFixed(0)}k`).join(" ");

before(async () => {
  assert.ok(BASE && PASSWORD, "set IRIS_BASE_URL and IRIS_PASSWORD");
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 60000,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
      "--auto-select-desktop-capture-source=Entire screen", "--ignore-certificate-errors",
      "--allow-loopback-in-peer-connection", "--autoplay-policy=no-user-gesture-required",
      "--disable-renderer-backgrounding", "--disable-background-timer-throttling", "--disable-backgrounding-occluded-windows",
    ],
  });
});

after(async () => {
  await browser?.close().catch(() => {});
});

test("a bubble conference in the web client", { timeout: 360000 }, async (t) => {
  const ann = await newUser("ann");
  const bob = await newUser("bob");
  const cat = await newUser("cat");
  const all = { ann, bob, cat };
  let ids = {};

  await t.test("sign in, contacts, a bubble", async () => {
    await login(ann, "ann@localhost");
    await login(bob, "bob@localhost");
    await login(cat, "cat@localhost");
    await befriend(ann, bob, "bob@localhost", "Bob Stone", "Ann Lee");
    await befriend(ann, cat, "cat@localhost", "Cat Diaz", "Ann Lee");
    await ann.getByRole("button", { name: "New bubble" }).click();
    await ann.getByLabel("Bubble name").fill("Design review");
    await ann.getByRole("dialog").getByLabel("Bob Stone").check();
    await ann.getByRole("dialog").getByLabel("Cat Diaz").check();
    await ann.getByRole("button", { name: "Create" }).click();
    await ann.getByRole("heading", { name: "Design review" }).waitFor({ timeout: T });
    for (const p of [bob, cat]) {
      await p.getByRole("button", { name: /Design review/ }).click({ timeout: T });
      await p.getByRole("button", { name: "Start conference" }).waitFor({ timeout: T });
    }
    await ann.waitForFunction(() => window.iris.app.conversations.get(window.iris.app.active)?.joined === true, null, { timeout: T });
  });

  await t.test("ann starts a conference; the others see it running and join", async () => {
    await ann.getByRole("button", { name: "Start conference" }).click();
    await ann.getByRole("region", { name: /Conference in Design review/ }).waitFor({ timeout: T });
    await ann.waitForFunction(() => window.iris.confs.current?.state === "joined", null, { timeout: 30000 });
    // Bob sees the running conference with its count, in the header, the banner and the sidebar.
    await bob.getByRole("button", { name: "Join conference (1 in it)" }).waitFor({ timeout: T });
    await bob.locator(".conf-banner", { hasText: "Conference in progress" }).waitFor({ timeout: T });
    await bob.locator(".conf-live", { hasText: "Conference · 1 in it" }).waitFor({ timeout: T });
    await shot(bob, "conf-01-bubble-join");
    await bob.getByRole("button", { name: "Join conference (1 in it)" }).click();
    await cat.getByRole("button", { name: "Join conference (2 in it)" }).click({ timeout: T });
    for (const p of Object.values(all)) {
      await p.waitForFunction(() => window.iris.confs.current?.state === "joined" && window.iris.confs.current.roster.participants.length === 3, null, { timeout: 30000 });
    }
    ids = Object.fromEntries(await Promise.all(Object.entries(all).map(async ([n, p]) => [n, await p.evaluate(() => window.iris.confs.current.id)])));
    console.log("participants", ids);
    // Contacts see "In a conference" in their roster.
    await contactRow(ann, "bob@localhost").locator(".presence-text", { hasText: "In a conference" }).waitFor({ timeout: T });
    await contactRow(bob, "ann@localhost").locator(".presence-text", { hasText: "In a conference" }).waitFor({ timeout: T });
  });

  await t.test("everyone receives everyone's audio and video", async () => {
    for (const [name, p] of Object.entries(all)) {
      const others = Object.entries(ids).filter(([n]) => n !== name).map(([, id]) => id).sort();
      const [ok] = await within(40000, async () => {
        const s = await flowing(p, 1000);
        const audio = s.filter((x) => x.slot === "audio");
        const video = s.filter((x) => x.slot === "video" && x.decoding);
        const sources = [...new Set(video.map((x) => x.source))].sort();
        return audio.length >= 2 && JSON.stringify(sources) === JSON.stringify(others) ? s : null;
      });
      assert.ok(ok, `${name} receives two audio and two video streams: ${fmt(await flowing(p, 1000))}`);
      console.log(`${name} receives`, fmt(ok));
    }
    // Tiles show live video for both others.
    for (const p of Object.values(all)) await p.locator(".tile.live:not(.me)").nth(1).waitFor({ timeout: T });
  });

  await t.test("grid view: the layer follows the tile size", async () => {
    // Big window: three tiles of ≥ 270 px get the 360p layer.
    const view = await ann.evaluate(() => window.iris.confs.current.view);
    console.log("ann's grid view (1280x800)", JSON.stringify(view));
    assert.equal(view.mode, "grid");
    const want = view.tileHeight >= 270 ? 360 : 180;
    const [big, took] = await within(15000, async () => {
      const s = (await flowing(ann, 1500)).filter((x) => x.slot === "video");
      return s.length === 2 && s.every((x) => x.frameHeight === want) ? s : null;
    });
    assert.ok(big, `ann's tiles at ${want}p: ${fmt(await flowing(ann))}`);
    console.log(`grid ${view.tileHeight}px tiles → ${fmt(big)} (${took} ms)`);
    await shot(ann, "conf-02-grid");
    // A small window: the client reports smaller tiles and gets the 180p layer.
    for (const p of Object.values(all)) await p.setViewportSize(SMALL);
    const [small] = await within(10000, async () => {
      const v = await ann.evaluate(() => window.iris.confs.current.view);
      return v.tileHeight < 270 ? v : null;
    });
    assert.ok(small, "the smaller tiles are reported");
    console.log("ann's grid view (960x540)", JSON.stringify(small));
    for (const [name, p] of Object.entries(all)) {
      const [low, tookLow] = await within(15000, async () => {
        const s = (await flowing(p, 1500)).filter((x) => x.slot === "video");
        return s.length === 2 && s.every((x) => x.frameHeight > 0 && x.frameHeight <= 180) ? s : null;
      });
      assert.ok(low, `${name}'s grid tiles at ≤ 180p: ${fmt(await flowing(p))}`);
      // The rate after the switch's keyframes, for the report (the caps are checked by
      // conference.test.mjs; here the frame size proves the layer).
      await sleep(2000);
      const rate = (await flowing(p, 5000)).filter((x) => x.slot === "video");
      console.log(`${name} small grid → ${fmt(rate)} (switched in ${tookLow} ms)`);
    }
    await shot(ann, "conf-03-grid-small");
    for (const p of Object.values(all)) await p.setViewportSize(BIG);
  });

  await t.test("talker and thumbnails views", async () => {
    await ann.getByRole("button", { name: "Active talker" }).click();
    const [talker, took] = await within(20000, async () => {
      const s = (await flowing(ann, 1000)).filter((x) => x.slot === "video");
      return s.some((x) => x.frameHeight === 720) ? s : null;
    });
    assert.ok(talker, `the talker arrives at 720p: ${fmt(await flowing(ann))}`);
    console.log(`talker view → ${fmt(talker)} (${took} ms)`);
    await ann.locator(".tile.main.live").waitFor({ timeout: T });
    const rate = (await flowing(ann, 4000)).filter((x) => x.slot === "video" && x.frameHeight === 720);
    for (const x of rate) assert.ok(x.kbps <= 880, `720p layer within 800 kbit/s (+10 %): ${x.kbps}`);
    await shot(ann, "conf-04-talker");
    await ann.getByRole("button", { name: "Talker and thumbnails" }).click();
    const [thumbs] = await within(20000, async () => {
      const s = (await flowing(ann, 1200)).filter((x) => x.slot === "video");
      return s.length === 2 && s.some((x) => x.frameHeight === 720) && s.some((x) => x.frameHeight === 180) ? s : null;
    });
    assert.ok(thumbs, `thumbnails view: the talker at 720p, the thumbnail at 180p: ${fmt(await flowing(ann))}`);
    console.log(`thumbnails view → ${fmt(thumbs)}`);
    await ann.locator(".conf-strip .tile").first().waitFor({ timeout: T });
    await ann.locator(".tile.main.live").waitFor({ timeout: T });
    await shot(ann, "conf-05-thumbnails");
    await ann.getByRole("button", { name: "Grid" }).click();
  });

  await t.test("screen share, mute and camera states", async () => {
    await cat.getByRole("button", { name: "Share screen" }).click();
    await cat.getByRole("button", { name: "Stop sharing" }).waitFor({ timeout: T });
    for (const [name, p] of [["ann", ann], ["bob", bob]]) {
      const [screen] = await within(20000, async () => {
        const s = (await flowing(p, 1000)).find((x) => x.slot === "screen" && x.decoding);
        return s ?? null;
      });
      assert.ok(screen, `${name} receives cat's screen`);
      assert.equal(screen.source, ids.cat);
      console.log(`${name} receives the screen at ${screen.frameHeight}p ${screen.kbps.toFixed(0)} kbit/s`);
      await p.locator(".tile.screen.live").waitFor({ timeout: T });
    }
    await shot(ann, "conf-06-screen-share");
    await cat.getByRole("button", { name: "Stop sharing" }).click();
    await ann.locator(".tile.screen").waitFor({ state: "detached", timeout: T });
    // Mute and camera off reach the participant list.
    await bob.getByRole("button", { name: "Mute", exact: true }).click();
    await ann.locator(`.conf-people li[data-participant="${ids.bob}"] [aria-label="muted"]`).waitFor({ timeout: T });
    await cat.getByRole("button", { name: "Turn camera off" }).click();
    await ann.locator(`.conf-people li[data-participant="${ids.cat}"] [aria-label="camera off"]`).waitFor({ timeout: T });
    await ann.locator(`.tile[data-participant="${ids.cat}"]:not(.live) .tile-avatar`).waitFor({ timeout: T });
    await shot(ann, "conf-07-muted-camera-off");
    await cat.getByRole("button", { name: "Turn camera on" }).click();
    await bob.getByRole("button", { name: "Unmute" }).click();
    await ann.locator(`.tile[data-participant="${ids.cat}"].live`).waitFor({ timeout: T });
    await ann.locator(`.conf-people li[data-participant="${ids.bob}"] [aria-label="microphone on"]`).waitFor({ timeout: T });
  });

  await t.test("media that stops arriving (path dead, no network event) restarts ICE", async () => {
    // Nothing reaches bob although the roster says microphones are on: ann and cat stop
    // sending without telling anyone (what a dead path after an address change looks like).
    await bob.waitForFunction(() => {
      const c = window.iris.confs.current;
      return c.roster.participants.some((p) => p.id !== c.id && p.audio && !p.audioMuted);
    }, null, { timeout: T });
    const ufrag = (p) => p.evaluate(() => window.iceUfrag(window.iris.confs.current.pc.localDescription));
    // replaceTrack(null): nothing is sent, and the app's layer control (which sets encodings
    // active or not) cannot bring the stream back behind the test's back.
    const silence = (p, on) => p.evaluate(async (on) => {
      const pc = window.iris.confs.current.pc;
      if (on) window.__saved = pc.getSenders().filter((s) => s.track).map((s) => [s, s.track]);
      for (const [s, track] of window.__saved) await s.replaceTrack(on ? null : track);
    }, on);
    const before = await ufrag(bob);
    const silentAt = Date.now();
    for (const p of [ann, cat]) await silence(p, true);
    await bob.waitForFunction((old) => {
      const pc = window.iris.confs.current?.pc;
      const u = window.iceUfrag(pc?.localDescription);
      return u && u !== old && pc.signalingState === "stable";
    }, before, { timeout: 30000 }).catch(async (e) => {
      const s = await flowing(bob, 1000);
      const state = await bob.evaluate(() => {
        const c = window.iris.confs.current;
        return { conn: c.pc.connectionState, signaling: c.pc.signalingState, roster: c.roster.participants, me: c.id };
      });
      console.log(`bob after the silence: still flowing ${fmt(s)}; ${JSON.stringify(state)}`);
      for (const [n, p] of [["ann", ann], ["cat", cat]]) {
        const out = await p.evaluate(async () => {
          const pc = window.iris.confs.current.pc;
          const senders = pc.getSenders().map((s) => `${s.track?.kind ?? "none"}:${s.track?.readyState ?? "-"}`);
          const outbound = [...(await pc.getStats()).values()].filter((x) => x.type === "outbound-rtp").map((x) => `${x.kind}/${x.rid ?? "-"}:${x.bytesSent}`);
          return { senders, outbound, saved: (window.__saved ?? []).length };
        });
        console.log(`${n} after the silence: ${JSON.stringify(out)}`);
      }
      throw e;
    });
    const ms = Date.now() - silentAt;
    console.log(`conference: bob restarted ICE ${ms} ms after nothing arrived`);
    assert.ok(ms >= 2000, `not before the stall window (${ms} ms)`);
    for (const p of [ann, cat]) await silence(p, false);
    const [ok] = await within(20000, async () => {
      const s = await flowing(bob, 1000);
      return s.some((x) => x.slot === "audio") ? s : null;
    });
    assert.ok(ok, "bob receives again after the restart");
    assert.notEqual(await ufrag(bob), before);
  });

  await t.test("a participant who leaves disappears for the others within 5 s", async () => {
    const left = Date.now();
    await bob.getByRole("button", { name: "Leave conference" }).click();
    await bob.getByRole("region", { name: /Conference in/ }).waitFor({ state: "detached", timeout: T });
    for (const p of [ann, cat]) {
      await p.locator(`.tile[data-participant="${ids.bob}"]`).waitFor({ state: "detached", timeout: 5000 });
      const n = await p.evaluate(() => window.iris.confs.current.roster.participants.length);
      assert.equal(n, 2);
    }
    console.log(`bob gone for the others after ${Date.now() - left} ms`);
    assert.ok(Date.now() - left <= 5000);
    // Bob sees the conference still running, and is back to "Available" for ann.
    await bob.getByRole("button", { name: "Join conference (2 in it)" }).waitFor({ timeout: T });
    await contactRow(ann, "bob@localhost").locator(".presence-text", { hasText: "Available" }).waitFor({ timeout: T });
    for (const p of [ann, cat]) await p.getByRole("button", { name: "Leave conference" }).click();
    await bob.getByRole("button", { name: "Start conference" }).waitFor({ timeout: T });
    for (const p of Object.values(all)) assert.equal(await p.evaluate(() => window.iris.confs.current === null && !window.iris.app.inConference), true);
  });

  await t.test("no console errors", async () => {
    assert.deepEqual(consoleErrors, [], "console errors");
  });
});
