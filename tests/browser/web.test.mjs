// End-to-end test of the Iris web client (issue 5) in headless Chromium against a real
// `iris serve`: three users (ann, bob, cat, password IRIS_PASSWORD) use the app at `/` in
// separate browser contexts. Covers login, contact invitation/acceptance, live presence and
// status text, 1:1 chat with read marker, typing, edit and delete, a bubble whose history a
// later-invited member sees (MAM), a missed call entry, video calls with direct ICE and with
// relay-only ICE through the Iris relay (inbound audio and video bytes grow on both sides,
// per getStats, tests/browser/lib.mjs), ICE restarts after either side's network change,
// screen sharing, hang-up releasing media and presence back to "Available", and a callee
// without a microphone (video only; his camera off must not look like a dead path).
// Saves screenshots to IRIS_SCREENSHOTS and prints time to interactive.
//
// Run: node --test tests/browser/web.test.mjs (crates/iris/tests/browser_web.rs starts the
// server, creates the users and does this).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { addIceHelpers, appPc, launchBrowser, statsSummary, webLogin } from "./lib.mjs";

const BASE = process.env.IRIS_BASE_URL;
const PASSWORD = process.env.IRIS_PASSWORD;
const SHOTS = process.env.IRIS_SCREENSHOTS || "/tmp";
const T = 20000;

let browser;
const pages = {};
const consoleErrors = [];

async function newUser(name, viewport = { width: 1280, height: 800 }) {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport });
  await context.grantPermissions(["camera", "microphone", "notifications"], { origin: BASE });
  await addIceHelpers(context);
  const page = await context.newPage();
  page.on("console", (m) => {
    if (m.type() === "error") consoleErrors.push(`${name}: ${m.text()}`);
  });
  page.on("pageerror", (e) => consoleErrors.push(`${name}: ${e.message}`));
  pages[name] = page;
  return page;
}

async function login(page, login) {
  await page.goto(BASE + "/", { waitUntil: "load" });
  await webLogin(page, BASE, login, PASSWORD, { timeout: T });
}

// Screenshots of the main screens, without transient toasts (hidden through the CSSOM: the
// app's CSP rightly refuses injected <style> elements).
async function shot(page, name) {
  const toasts = (show) => page.evaluate((v) => document.querySelector(".toasts")?.style.setProperty("display", v), show);
  await toasts("none");
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`) });
  await toasts("");
}
const contactRow = (page, jid) => page.locator(`button.row[data-jid="${jid}"]`);

async function presenceOf(page, jid, text) {
  await contactRow(page, jid).locator(".presence-text", { hasText: text }).waitFor({ timeout: T });
}

async function befriend(a, b, bLogin, bName, aName) {
  await a.getByLabel("Search the directory").fill(bLogin.split("@")[0]);
  await a.getByRole("button", { name: `Add ${bName}` }).click();
  await a.getByLabel("Search the directory").fill("");
  await b.getByRole("button", { name: `Accept ${aName}` }).click({ timeout: T });
}

// ---- call helpers evaluated in the pages ----

// The current call's getStats summary (lib.mjs), with the candidate types of the selected pair.
async function callStats(page) {
  const s = await statsSummary(page, appPc);
  return s && { ...s, local: s.local?.type, remote: s.remote?.type };
}

// Until the call's inbound video (and audio, unless `audio` is false) grows; returns the stats.
async function mediaFlows(page, label, { audio = true } = {}) {
  const deadline = Date.now() + 30000;
  let first = null;
  let last = null;
  const audioGrew = (a, b) => !audio || b.inbound.audio > a.inbound.audio + 1000;
  while (Date.now() < deadline) {
    last = await callStats(page);
    if (last && last.state === "connected" && (!audio || last.inbound.audio > 0) && last.inbound.video > 0) {
      if (!first) first = last;
      else if (audioGrew(first, last) && last.inbound.video > first.inbound.video + 5000) return last;
    }
    await page.waitForTimeout(500);
  }
  assert.fail(`${label}: inbound ${audio ? "audio and " : ""}video did not grow: ${JSON.stringify({ first, last })}`);
}

// The ICE usernames of the current call: [local, remote].
const ufrags = (p) => p.evaluate(() => {
  const pc = window.iris.calls.current.pc;
  return [window.iceUfrag(pc.localDescription), window.iceUfrag(pc.remoteDescription)];
});

async function videoCall(caller, callee, calleeJid, callerJid, observer, name) {
  await caller.locator(`button.row[data-jid="${calleeJid}"]`).click();
  await caller.getByRole("button", { name: "Video call" }).click();
  await callee.getByRole("alertdialog").waitFor({ timeout: T });
  await callee.getByRole("button", { name: "Accept with video" }).click();
  await caller.locator(".call.active").waitFor({ timeout: 30000 });
  await callee.locator(".call.active").waitFor({ timeout: 30000 });
  const a = await mediaFlows(caller, `${name} caller`);
  const b = await mediaFlows(callee, `${name} callee`);
  // The third user sees the caller on the phone.
  await presenceOf(observer, callerJid, "On the phone");
  return { a, b };
}

async function hangUpAndCheck(caller, callee, callerJid, observer) {
  await caller.getByRole("button", { name: "Hang up" }).click();
  for (const p of [caller, callee]) {
    await p.locator("section.call").waitFor({ state: "detached", timeout: T });
    const freed = await p.evaluate(() => window.iris.calls.current === null && !window.iris.app.inCall);
    assert.ok(freed, "the call state is released");
  }
  await presenceOf(observer, callerJid, "Available");
}

before(async () => {
  assert.ok(BASE && PASSWORD, "set IRIS_BASE_URL and IRIS_PASSWORD");
  browser = await launchBrowser({
    extra: ["--auto-select-desktop-capture-source=Entire screen", "--allow-loopback-in-peer-connection"],
  });
});

after(async () => {
  await browser?.close().catch(() => {});
});

test("the web client: presence, chat, bubbles and calls", { timeout: 420000 }, async (t) => {
  const ann = await newUser("ann");
  const bob = await newUser("bob");
  const cat = await newUser("cat", { width: 390, height: 844 });

  await t.test("the app loads at / and signs in", async () => {
    await ann.goto(BASE + "/", { waitUntil: "load" });
    await ann.getByRole("button", { name: "Sign in" }).waitFor();
    const tti = await ann.evaluate(() => performance.getEntriesByName("iris-interactive")[0]?.startTime ?? -1);
    assert.ok(tti > 0, "the app marks when it is interactive");
    console.log(`time to interactive (login screen): ${tti.toFixed(0)} ms`);
    await shot(ann, "01-login");
    await ann.getByLabel("Login").fill("ann@localhost");
    await ann.getByLabel("Password").fill("wrong-password");
    await ann.getByRole("button", { name: "Sign in" }).click();
    await ann.getByRole("alert").waitFor({ timeout: T });
    const t0 = Date.now();
    await login(ann, "ann@localhost");
    console.log(`login to online roster: ${Date.now() - t0} ms`);
    await login(bob, "bob@localhost");
    await login(cat, "cat@localhost");
  });

  await t.test("contacts: invite, accept and live presence", async () => {
    await befriend(ann, bob, "bob@localhost", "Bob Stone", "Ann Lee");
    await befriend(ann, cat, "cat@localhost", "Cat Diaz", "Ann Lee");
    await presenceOf(ann, "bob@localhost", "Available");
    await presenceOf(bob, "ann@localhost", "Available");
    await presenceOf(cat, "ann@localhost", "Available");
    // Bob goes away with a status; Ann sees it live, then Bob comes back.
    await bob.getByLabel("My availability").selectOption("away");
    await bob.getByLabel("Status message").fill("In a meeting");
    await bob.getByLabel("Status message").press("Enter");
    await presenceOf(ann, "bob@localhost", "In a meeting");
    assert.ok(await contactRow(ann, "bob@localhost").locator(".dot.away").count(), "away dot");
    await bob.getByLabel("My availability").selectOption("available");
    await bob.getByLabel("Status message").fill("");
    await bob.getByLabel("Status message").press("Enter");
    await presenceOf(ann, "bob@localhost", "Available");
    // Settings: devices, relay-only calls, notifications; Escape closes and returns focus.
    await ann.getByRole("button", { name: "Settings" }).click();
    await ann.getByRole("dialog", { name: "Settings" }).getByLabel("Camera").waitFor();
    // A new avatar (vCard photo) reaches Bob through the presence hash.
    const png = await ann.evaluate(() => {
      const c = document.createElement("canvas");
      c.width = c.height = 96;
      const g = c.getContext("2d");
      const grad = g.createLinearGradient(0, 0, 96, 96);
      grad.addColorStop(0, "#ff9a8b");
      grad.addColorStop(1, "#ff6a88");
      g.fillStyle = grad;
      g.fillRect(0, 0, 96, 96);
      g.fillStyle = "#fff";
      g.beginPath();
      g.arc(48, 38, 18, 0, Math.PI * 2);
      g.arc(48, 100, 36, 0, Math.PI * 2);
      g.fill();
      return c.toDataURL("image/png").split(",")[1];
    });
    await ann.getByLabel("Avatar image").setInputFiles({ name: "me.png", mimeType: "image/png", buffer: Buffer.from(png, "base64") });
    await ann.locator(".avatar-pick img").waitFor({ timeout: T });
    await contactRow(bob, "ann@localhost").locator(".avatar img").waitFor({ timeout: T });
    await shot(ann, "09-settings");
    await ann.keyboard.press("Escape");
    await ann.getByRole("dialog").waitFor({ state: "detached" });
  });

  await t.test("1:1 chat: message, unread, read marker, typing, edit, delete, links", async () => {
    await contactRow(ann, "bob@localhost").click();
    const annInput = ann.getByLabel("Message", { exact: true });
    await annInput.fill("Hi Bob! The plan is at https://example.com/plan 🚀");
    await annInput.press("Enter");
    await annInput.fill("Can you review it today?");
    await annInput.press("Enter");
    // Bob has not opened the chat: an unread badge.
    await contactRow(bob, "ann@localhost").getByLabel("2 unread").waitFor({ timeout: T });
    assert.equal(await bob.title(), "(2) Iris", "the tab title counts unread messages");
    await contactRow(bob, "ann@localhost").click();
    await bob.locator(".msg .text", { hasText: "Can you review it today?" }).waitFor({ timeout: T });
    const link = bob.locator(".msg a", { hasText: "https://example.com/plan" });
    assert.equal(await link.getAttribute("href"), "https://example.com/plan");
    // Ann sees the read marker.
    await ann.locator(".msg.mine .receipt.read").last().waitFor({ timeout: T });
    // Bob types: Ann sees the typing indicator, then the reply.
    await bob.getByLabel("Message", { exact: true }).pressSequentially("Sure, looking now", { delay: 20 });
    await ann.locator(".typing", { hasText: "Bob Stone is typing" }).waitFor({ timeout: T });
    await bob.getByLabel("Message", { exact: true }).press("Enter");
    await ann.locator(".msg .text", { hasText: "Sure, looking now" }).waitFor({ timeout: T });
    // Ann edits her last message (arrow up), then deletes a message sent by mistake.
    await annInput.press("ArrowUp");
    await annInput.fill("Can you review it by Friday?");
    await annInput.press("Enter");
    await bob.locator(".msg .text", { hasText: "Can you review it by Friday?" }).waitFor({ timeout: T });
    await bob.locator(".msg .edited").waitFor({ timeout: T });
    await annInput.fill("Oops, wrong window");
    await annInput.press("Enter");
    await bob.locator(".msg .text", { hasText: "Oops, wrong window" }).waitFor({ timeout: T });
    const oops = ann.locator(".msg.mine", { hasText: "Oops, wrong window" });
    await oops.hover();
    await oops.getByRole("button", { name: "Delete message" }).click();
    await bob.locator(".msg.retracted", { hasText: "Message deleted" }).waitFor({ timeout: T });
    // Keyboard: Alt+↓ / Alt+↑ switch conversations.
    await ann.keyboard.press("Alt+ArrowDown");
    await ann.getByRole("heading", { name: "Cat Diaz" }).waitFor({ timeout: T });
    await ann.keyboard.press("Alt+ArrowUp");
    await ann.getByRole("heading", { name: "Bob Stone" }).waitFor({ timeout: T });
    // The connection drops: the app shows it, resumes the XEP-0198 session and delivers what
    // was written meanwhile.
    const dropped = await ann.evaluate(() => {
      window.dispatchEvent(new Event("offline"));
      return window.iris.app.status;
    });
    assert.equal(dropped, "reconnecting");
    await annInput.fill("Written while reconnecting");
    await annInput.press("Enter");
    await ann.waitForFunction(() => window.iris.app.status === "online" && window.iris.app.xmpp.resumptions > 0, null, { timeout: T });
    await bob.locator(".msg .text", { hasText: "Written while reconnecting" }).waitFor({ timeout: T });
    await ann.locator(".msg.mine", { hasText: "Written while reconnecting" }).locator(".receipt.read").waitFor({ timeout: T });
    await shot(ann, "02-chat");
  });

  await t.test("a bubble: create, talk, invite a third member who sees the history", async () => {
    await ann.getByRole("button", { name: "New bubble" }).click();
    await ann.getByLabel("Bubble name").fill("Launch plan");
    await ann.getByRole("dialog").getByLabel("Bob Stone").check();
    await ann.getByRole("button", { name: "Create" }).click();
    await ann.getByRole("heading", { name: "Launch plan" }).waitFor({ timeout: T });
    await bob.getByRole("button", { name: /Launch plan/ }).click({ timeout: T });
    await bob.locator(".conv-presence", { hasText: "2 here" }).waitFor({ timeout: T });
    const annInput = ann.getByLabel("Message", { exact: true });
    await annInput.fill("Welcome to the launch bubble 🎉");
    await annInput.press("Enter");
    await bob.locator(".msg .text", { hasText: "Welcome to the launch bubble" }).waitFor({ timeout: T });
    await bob.getByLabel("Message", { exact: true }).fill("Glad to be here");
    await bob.getByLabel("Message", { exact: true }).press("Enter");
    await ann.locator(".msg .text", { hasText: "Glad to be here" }).waitFor({ timeout: T });
    // Invite Cat (phone-sized window): she sees the earlier messages.
    await ann.getByRole("button", { name: "Invite" }).click();
    await ann.getByRole("dialog").getByLabel("Cat Diaz").check();
    await ann.getByRole("dialog").getByRole("button", { name: "Invite" }).click();
    await cat.getByRole("button", { name: /Launch plan/ }).click({ timeout: T });
    await cat.locator(".msg .text", { hasText: "Welcome to the launch bubble" }).waitFor({ timeout: T });
    await cat.locator(".msg .text", { hasText: "Glad to be here" }).waitFor({ timeout: T });
    await cat.locator(".sender", { hasText: "Ann Lee" }).first().waitFor({ timeout: T });
    await shot(ann, "03-bubble");
    await shot(cat, "04-phone-bubble");
    await cat.getByRole("button", { name: "Back to contacts" }).click();
    await shot(cat, "05-phone-contacts");
  });

  await t.test("missed and declined calls show in the conversation", async () => {
    await contactRow(ann, "bob@localhost").click();
    await contactRow(bob, "ann@localhost").click();
    await ann.getByRole("button", { name: "Audio call" }).click();
    await bob.getByRole("alertdialog").waitFor({ timeout: T });
    await shot(bob, "06-incoming-call");
    await ann.getByRole("button", { name: "Hang up" }).click();
    await bob.getByRole("alertdialog").waitFor({ state: "detached", timeout: T });
    await bob.locator(".call-entry.missed", { hasText: "Missed call from Ann Lee" }).waitFor({ timeout: T });
    // Declined: Bob rejects, Ann's call ends and both see the entry.
    await ann.getByRole("button", { name: "Audio call" }).click();
    await bob.getByRole("alertdialog").waitFor({ timeout: T });
    await bob.getByRole("button", { name: "Decline" }).click();
    await ann.locator("section.call").waitFor({ state: "detached", timeout: T });
    await ann.locator(".call-entry.declined").waitFor({ timeout: T });
    await bob.locator(".call-entry.declined").waitFor({ timeout: T });
    assert.equal(await ann.evaluate(() => window.iris.calls.current), null);
  });

  await t.test("video call with direct ICE, screen sharing, hang-up", async () => {
    const { a, b } = await videoCall(ann, bob, "bob@localhost", "ann@localhost", cat, "direct");
    console.log(`direct call: ann ${JSON.stringify(a)} bob ${JSON.stringify(b)}`);
    assert.notEqual(a.local, "relay", "the direct call does not use the relay");
    await shot(ann, "07-video-call");
    // Screen sharing: Bob sees the "sharing" state and frames of the shared screen.
    const before = (await callStats(bob)).frameWidth;
    await ann.getByRole("button", { name: "Share screen" }).click();
    await bob.locator(".pill", { hasText: "Sharing their screen" }).waitFor({ timeout: T });
    await ann.getByRole("button", { name: "Stop sharing" }).waitFor({ timeout: T });
    const shared = await ann.evaluate(() => {
      const s = window.iris.calls.current.pc.getTransceivers().find((t) => t.receiver.track.kind === "video").sender.track;
      return { label: s?.label, state: s?.readyState };
    });
    assert.equal(shared.state, "live", `the screen track is sent: ${JSON.stringify(shared)}`);
    let after = before;
    for (let i = 0; i < 40 && after === before; i++) {
      await bob.waitForTimeout(250);
      after = (await callStats(bob)).frameWidth;
    }
    console.log(`screen share: bob's inbound frame width ${before} -> ${after} (${shared.label})`);
    assert.notEqual(after, before, "the shared screen's frames arrive (new frame size)");
    await shot(bob, "08-screen-share");
    await ann.getByRole("button", { name: "Stop sharing" }).click();
    // Mute is signalled (XEP-0167 session-info) and shown to the other side.
    await ann.getByRole("button", { name: "Mute" }).click();
    await bob.locator(".pill", { hasText: "Muted" }).waitFor({ timeout: T });
    const enabled = await ann.evaluate(() => window.iris.calls.current.local.getAudioTracks().map((t) => t.enabled));
    assert.deepEqual(enabled, [false], "the microphone track is disabled");
    await ann.getByRole("button", { name: "Unmute" }).click();
    await bob.locator(".pill", { hasText: "Muted" }).waitFor({ state: "detached", timeout: T });
    await hangUpAndCheck(ann, bob, "ann@localhost", cat);
    await ann.locator(".call-entry.ended").last().waitFor({ timeout: T });
  });

  await t.test("video call forced through the Iris relay", async () => {
    for (const p of [ann, bob]) await p.evaluate(() => (window.iris.calls.relayOnly = true));
    const { a, b } = await videoCall(ann, bob, "bob@localhost", "ann@localhost", cat, "relay-only");
    console.log(`relay call: ann ${JSON.stringify(a)} bob ${JSON.stringify(b)}`);
    assert.equal(a.local, "relay", "ann's selected candidate is a relay candidate");
    assert.equal(b.local, "relay", "bob's selected candidate is a relay candidate");
    // a network change restarts ICE (new credentials on both sides) and media resumes.
    // Until both sides' ICE credentials differ from `old` and the negotiation is done.
    const restarted = (p, old) => p.waitForFunction((old) => {
      const pc = window.iris.calls.current.pc;
      return pc.signalingState === "stable" && window.iceUfrag(pc.localDescription) !== old[0] && window.iceUfrag(pc.remoteDescription) !== old[1];
    }, old, { timeout: T });
    const [annBefore, bobBefore] = [await ufrags(ann), await ufrags(bob)];
    const restartedAt = Date.now();
    await ann.evaluate(() => window.dispatchEvent(new Event("online")));
    await restarted(ann, annBefore);
    const bobAfter = await ufrags(bob);
    assert.notEqual(bobAfter[0], bobBefore[0], "bob answered the restart with new credentials");
    await mediaFlows(ann, "after ICE restart (ann)");
    await mediaFlows(bob, "after ICE restart (bob)");
    console.log(`ICE restart: media flowing again ${Date.now() - restartedAt} ms after the network change`);
    // The responder's network changes: it asks the initiator (session-info), which restarts.
    const [annMid, bobMid] = [await ufrags(ann), await ufrags(bob)];
    const askedAt = Date.now();
    await bob.evaluate(() => window.dispatchEvent(new Event("online")));
    await restarted(ann, annMid);
    assert.notEqual((await ufrags(bob))[0], bobMid[0], "bob has new credentials after his network change");
    await mediaFlows(ann, "after the responder's network change (ann)");
    await mediaFlows(bob, "after the responder's network change (bob)");
    console.log(`ICE restart asked by the responder: media flowing again ${Date.now() - askedAt} ms after its network change`);
    // One-way media with no event at all (what an address change can leave behind: ICE still
    // "connected", no network event): bob stops sending without telling anyone; ann's watchdog
    // sees her inbound bytes stall and restarts ICE.
    const annStall = await ufrags(ann);
    const setActive = (p, active) => p.evaluate(async (active) => {
      for (const s of window.iris.calls.current.pc.getSenders()) {
        if (!s.track) continue;
        const params = s.getParameters();
        params.encodings.forEach((e) => (e.active = active));
        await s.setParameters(params);
      }
    }, active);
    const stalledAt = Date.now();
    await setActive(bob, false);
    await restarted(ann, annStall);
    const restartMs = Date.now() - stalledAt;
    console.log(`stalled inbound media: ICE restarted ${restartMs} ms after the peer went silent`);
    assert.ok(restartMs >= 2000, `no restart before the stall window (${restartMs} ms)`);
    await setActive(bob, true);
    await mediaFlows(ann, "after the stall restart (ann)");
    await mediaFlows(bob, "after the stall restart (bob)");
    await hangUpAndCheck(ann, bob, "ann@localhost", cat);
    for (const p of [ann, bob]) await p.evaluate(() => (window.iris.calls.relayOnly = false));
  });

  await t.test("a callee without a microphone: video only; camera off is no dead path", async () => {
    // Bob's machine has no microphone: every request for audio fails as Chromium's does when
    // there is no such device. He answers with his camera alone, muted.
    await bob.evaluate(() => {
      const md = navigator.mediaDevices;
      window.realGetUserMedia = md.getUserMedia.bind(md);
      md.getUserMedia = (c) => (c?.audio ? Promise.reject(new DOMException("Requested device not found", "NotFoundError")) : window.realGetUserMedia(c));
    });
    await ann.locator(`button.row[data-jid="bob@localhost"]`).click();
    await ann.getByRole("button", { name: "Video call" }).click();
    await bob.getByRole("alertdialog").waitFor({ timeout: T });
    await bob.getByRole("button", { name: "Accept with video" }).click();
    await bob.locator(".toast", { hasText: "Microphone unavailable" }).waitFor({ timeout: T });
    for (const p of [ann, bob]) await p.locator(".call.active").waitFor({ timeout: 30000 });
    await mediaFlows(ann, "ann, from a callee without a microphone", { audio: false });
    await mediaFlows(bob, "bob, without a microphone");
    // Ann is told he is muted (session-info after his session-accept); his mute button is off.
    await ann.locator(".pill", { hasText: "Muted" }).waitFor({ timeout: T });
    assert.ok(await bob.getByRole("button", { name: "Unmute" }).isDisabled(), "no microphone: the mute button is disabled");
    await shot(bob, "10-call-without-microphone");
    // Bob turns his camera off: now nothing at all flows towards Ann, which is not a dead path,
    // so her one-way-media watchdog (2.5 s) must not restart ICE.
    const before = await ufrags(ann);
    await bob.getByRole("button", { name: "Turn camera off" }).click();
    await ann.waitForFunction(() => window.iris.calls.current?.remoteCameraOff === true, null, { timeout: T });
    const silentAt = Date.now();
    await ann.waitForTimeout(7000);
    const stats = await callStats(ann);
    assert.deepEqual(await ufrags(ann), before, "no ICE restart while the peer's only media is off");
    assert.equal(stats.state, "connected", "the call stays connected");
    console.log(`video-only peer with its camera off: no restart in ${Date.now() - silentAt} ms`);
    // Camera back on: his video reaches Ann again.
    await bob.getByRole("button", { name: "Turn camera on" }).click();
    await mediaFlows(ann, "ann, after the callee's camera came back", { audio: false });
    await hangUpAndCheck(ann, bob, "ann@localhost", cat);
    // Now Bob calls, still without a microphone: as the initiator he tells Ann he is muted
    // once her session-accept arrives.
    await bob.locator(`button.row[data-jid="ann@localhost"]`).click();
    await bob.getByRole("button", { name: "Video call" }).click();
    await ann.getByRole("alertdialog").waitFor({ timeout: T });
    await ann.getByRole("button", { name: "Accept with video" }).click();
    for (const p of [ann, bob]) await p.locator(".call.active").waitFor({ timeout: 30000 });
    await mediaFlows(ann, "ann, from a caller without a microphone", { audio: false });
    await ann.locator(".pill", { hasText: "Muted" }).waitFor({ timeout: T });
    await hangUpAndCheck(bob, ann, "bob@localhost", ann);
    await bob.evaluate(() => (navigator.mediaDevices.getUserMedia = window.realGetUserMedia));
  });

  await t.test("history scroll-back pages through the archive (MAM)", async () => {
    await ann.evaluate(() => {
      window.iris.app.conversation("cat@localhost");
      for (let i = 1; i <= 55; i++) window.iris.app.sendMessage("cat@localhost", `History line ${i}`);
    });
    await ann.waitForFunction(() => window.iris.app.conversation("cat@localhost").messages.filter((m) => m.state !== "sending").length >= 55, null, { timeout: T });
    // A fresh page load restores the session and loads the newest page only.
    await cat.reload();
    await cat.waitForFunction(() => window.iris.app.status === "online" && window.iris.app.readyAt > 0, null, { timeout: T });
    await contactRow(cat, "ann@localhost").click();
    await cat.locator(".msg .text", { hasText: "History line 55" }).waitFor({ timeout: T });
    assert.equal(await cat.locator(".msg .text", { hasText: /^History line 1$/ }).count(), 0, "only the newest page at first");
    for (let i = 0; i < 10 && !(await cat.locator(".msg .text", { hasText: /^History line 1$/ }).count()); i++) {
      await cat.locator(".messages").evaluate((el) => { el.scrollTop = 0; el.dispatchEvent(new Event("scroll")); });
      await cat.waitForTimeout(400);
    }
    await cat.locator(".msg .text", { hasText: /^History line 1$/ }).waitFor({ timeout: T });
    await cat.getByRole("button", { name: "Back to contacts" }).click();
  });

  await t.test("removing a contact", async () => {
    cat.once("dialog", (d) => d.accept());
    await contactRow(cat, "ann@localhost").click();
    await cat.getByRole("button", { name: "Remove Ann Lee from contacts" }).click();
    await contactRow(cat, "ann@localhost").waitFor({ state: "detached", timeout: T });
    await contactRow(ann, "cat@localhost").waitFor({ state: "detached", timeout: T });
  });

  await t.test("no console errors", async () => {
    // Expected network noise (a refused password is a 401 the app shows as an alert).
    const real = consoleErrors.filter((e) => !/401|Unauthorized/.test(e));
    assert.deepEqual(real, [], "console errors");
  });
});
