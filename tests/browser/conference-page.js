// In-page conference client for tests/browser/conference.test.mjs: a minimal XMPP-over-WebSocket
// client (RFC 7395, SASL PLAIN, bind) and the Iris conference signalling
// (urn:xmpp:iris:conference:0, see crates/conference/README.md) driving one RTCPeerConnection
// with three simulcast layers up and receive slots down. Evaluated in the page; defines
// window.iris.
(() => {
  const NS = "urn:xmpp:iris:conference:0";
  const esc = (s) =>
    String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&apos;");
  let seq = 0;
  const nextId = () => `i${++seq}`;

  const state = { roster: [], speaker: null, slots: {}, sendLayers: null, log: [], pushes: 0 };
  let ws;
  const inbox = [];
  const waiters = [];

  function deliver(el) {
    if (el.localName === "message") {
      const c = [...el.children].find((x) => x.localName === "conference" && x.namespaceURI === NS);
      if (c) return onPush(c);
    }
    for (let i = 0; i < waiters.length; i++) {
      if (waiters[i].pred(el)) {
        const w = waiters.splice(i, 1)[0];
        w.resolve(el);
        return;
      }
    }
    inbox.push(el);
  }

  function next(pred, timeout = 15000) {
    const i = inbox.findIndex(pred);
    if (i >= 0) return Promise.resolve(inbox.splice(i, 1)[0]);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve };
      waiters.push(w);
      setTimeout(() => {
        const k = waiters.indexOf(w);
        if (k >= 0) {
          waiters.splice(k, 1);
          reject(new Error("timeout waiting for stanza; log: " + state.log.slice(-5).join(" | ")));
        }
      }, timeout);
    });
  }

  function send(xml) {
    state.log.push("> " + xml.slice(0, 200));
    ws.send(xml);
  }

  async function iq(to, type, payload) {
    const id = nextId();
    send(`<iq xmlns="jabber:client" type="${type}" id="${id}"${to ? ` to="${esc(to)}"` : ""}>${payload}</iq>`);
    const r = await next((e) => e.localName === "iq" && e.getAttribute("id") === id);
    if (r.getAttribute("type") !== "result") {
      throw new Error(`iq ${id} to ${to} failed: ${new XMLSerializer().serializeToString(r)}`);
    }
    return r;
  }

  async function connect(login, password) {
    const domain = login.split("@")[1];
    const url = location.origin.replace(/^http/, "ws") + "/xmpp-websocket";
    ws = new WebSocket(url, "xmpp");
    ws.onmessage = (m) => {
      state.log.push("< " + String(m.data).slice(0, 200));
      const doc = new DOMParser().parseFromString(m.data, "text/xml");
      deliver(doc.documentElement);
    };
    await new Promise((res, rej) => {
      ws.onopen = res;
      ws.onerror = () => rej(new Error("websocket failed"));
    });
    const open = `<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="${domain}" version="1.0"/>`;
    send(open);
    await next((e) => e.localName === "features");
    const user = login.split("@")[0];
    send(`<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">${btoa("\0" + user + "\0" + password)}</auth>`);
    const r = await next((e) => e.localName === "success" || e.localName === "failure");
    if (r.localName !== "success") throw new Error("SASL failed");
    send(open);
    await next((e) => e.localName === "features");
    const b = await iq(null, "set", `<bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"><resource>conf</resource></bind>`);
    state.jid = b.getElementsByTagName("jid")[0]?.textContent;
    send(`<presence xmlns="jabber:client"/>`);
    return state.jid;
  }

  /// Creates the bubble (first presence makes us its owner) and makes `members` members.
  async function createBubble(room, nick, members) {
    send(`<presence xmlns="jabber:client" to="${esc(room)}/${esc(nick)}"><x xmlns="http://jabber.org/protocol/muc"/></presence>`);
    await next((e) => e.localName === "presence" && (e.getAttribute("from") || "").startsWith(room + "/"));
    const items = members.map((j) => `<item jid="${esc(j)}" affiliation="member"/>`).join("");
    await iq(room, "set", `<query xmlns="http://jabber.org/protocol/muc#admin">${items}</query>`);
  }

  function onPush(c) {
    state.pushes++;
    for (const ch of c.children) {
      if (ch.localName === "roster") {
        state.speaker = ch.getAttribute("speaker");
        state.roster = [...ch.children].map((p) => ({
          id: p.getAttribute("id"),
          nick: p.getAttribute("nick"),
          jid: p.getAttribute("jid"),
          screen: p.getAttribute("screen") === "true",
        }));
      } else if (ch.localName === "slots") {
        const s = {};
        for (const slot of ch.children) s[slot.getAttribute("mid")] = slot.getAttribute("participant");
        state.slots = s;
      } else if (ch.localName === "send-layers") {
        state.sendLayers = { l: ch.getAttribute("l") === "true", m: ch.getAttribute("m") === "true", h: ch.getAttribute("h") === "true" };
        applySendLayers();
      }
    }
  }

  let pc;
  let room;
  let camera;
  const kinds = new Map(); // transceiver -> "audio" | "video" | "screen"

  async function applySendLayers() {
    if (!camera || !state.sendLayers) return;
    const p = camera.sender.getParameters();
    if (!p.encodings) return;
    for (const e of p.encodings) if (e.rid in state.sendLayers) e.active = state.sendLayers[e.rid];
    await camera.sender.setParameters(p).catch((e) => state.log.push("setParameters: " + e));
  }

  async function gathered() {
    if (pc.iceGatheringState === "complete") return;
    await new Promise((res) => {
      const t = setTimeout(res, 5000);
      pc.addEventListener("icegatheringstatechange", () => {
        if (pc.iceGatheringState === "complete") {
          clearTimeout(t);
          res();
        }
      });
    });
  }

  function tracksXml() {
    let x = "";
    for (const t of pc.getTransceivers()) {
      const kind = kinds.get(t);
      if (!kind || t.mid === null || t.currentDirection === "stopped") continue;
      const dir = t.direction === "sendonly" ? "send" : "recv";
      x += `<track mid="${esc(t.mid)}" kind="${kind}" dir="${dir}"/>`;
    }
    return x;
  }

  async function offerXml() {
    await pc.setLocalDescription(await pc.createOffer());
    await gathered();
    return `<sdp>${esc(pc.localDescription.sdp)}</sdp>${tracksXml()}`;
  }

  async function join(roomJid, nick, { relayOnly = false, iceServers = [], view = "grid", tileHeight = 180 } = {}) {
    room = roomJid;
    pc = new RTCPeerConnection({ iceServers, iceTransportPolicy: relayOnly ? "relay" : "all", bundlePolicy: "max-bundle" });
    window.pc = pc;
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 1280, height: 720, frameRate: 15 } });
    const a = pc.addTransceiver(stream.getAudioTracks()[0], { direction: "sendonly", streams: [stream] });
    kinds.set(a, "audio");
    camera = pc.addTransceiver(stream.getVideoTracks()[0], {
      direction: "sendonly",
      streams: [stream],
      sendEncodings: [
        { rid: "l", scaleResolutionDownBy: 4, maxBitrate: 85000 },
        { rid: "m", scaleResolutionDownBy: 2, maxBitrate: 260000 },
        { rid: "h", scaleResolutionDownBy: 1, maxBitrate: 700000 },
      ],
    });
    kinds.set(camera, "video");
    const p = camera.sender.getParameters();
    p.degradationPreference = "maintain-resolution";
    await camera.sender.setParameters(p).catch(() => {});
    for (let i = 0; i < 3; i++) kinds.set(pc.addTransceiver("audio", { direction: "recvonly" }), "audio");
    for (let i = 0; i < 12; i++) kinds.set(pc.addTransceiver("video", { direction: "recvonly" }), "video");
    kinds.set(pc.addTransceiver("video", { direction: "recvonly" }), "screen");
    const body = await offerXml();
    const r = await iq(room, "set", `<join xmlns="${NS}" nick="${esc(nick)}">${body}<view mode="${view}" tile-height="${tileHeight}"/></join>`);
    const joined = r.getElementsByTagNameNS(NS, "joined")[0];
    state.id = joined.getAttribute("participant");
    const sdp = joined.getElementsByTagNameNS(NS, "sdp")[0].textContent;
    await pc.setRemoteDescription({ type: "answer", sdp });
    await applySendLayers();
    return state.id;
  }

  async function setView(mode, tileHeight = 180) {
    await iq(room, "set", `<view xmlns="${NS}" mode="${mode}" tile-height="${tileHeight}"/>`);
  }

  /// A 1080p "screen" (an animated canvas) as its own track, added by renegotiation.
  async function shareScreen() {
    const canvas = document.createElement("canvas");
    canvas.width = 1920;
    canvas.height = 1080;
    const g = canvas.getContext("2d");
    let n = 0;
    setInterval(() => {
      g.fillStyle = `hsl(${(n++ * 7) % 360},60%,50%)`;
      g.fillRect(0, 0, 1920, 1080);
      g.fillStyle = "#fff";
      g.font = "120px sans-serif";
      g.fillText(`screen ${n}`, 100, 300);
    }, 100);
    const track = canvas.captureStream(10).getVideoTracks()[0];
    const t = pc.addTransceiver(track, { direction: "sendonly", sendEncodings: [{ maxBitrate: 2000000 }] });
    kinds.set(t, "screen");
    const body = await offerXml();
    const r = await iq(room, "set", `<update xmlns="${NS}">${body}</update>`);
    const sdp = r.getElementsByTagNameNS(NS, "sdp")[0].textContent;
    await pc.setRemoteDescription({ type: "answer", sdp });
  }

  async function leave() {
    await iq(room, "set", `<leave xmlns="${NS}"/>`);
    pc.close();
  }

  /// Inbound streams by mid with their kind as offered (the connection-wide summary, selected
  /// candidate pair included, is lib.mjs's statsSummary of window.pc).
  async function stats() {
    const report = await pc.getStats();
    const all = [...report.values()];
    const slotKind = {};
    for (const t of pc.getTransceivers()) if (t.mid !== null) slotKind[t.mid] = kinds.get(t);
    const inbound = all
      .filter((s) => s.type === "inbound-rtp")
      .map((s) => ({
        mid: s.mid,
        kind: s.kind,
        slot: slotKind[s.mid],
        source: state.slots[s.mid] ?? null,
        // media bytes of the layer: retransmissions (RTX repairs of losses on a busy host)
        // are transport overhead, not the sender's layer bitrate the caps are about
        bytes: (s.bytesReceived || 0) - (s.retransmittedBytesReceived || 0),
        retransmittedBytes: s.retransmittedBytesReceived || 0,
        packets: s.packetsReceived || 0,
        frameHeight: s.frameHeight || 0,
        framesDecoded: s.framesDecoded || 0,
        audioLevel: s.audioLevel || 0,
        t: s.timestamp,
      }));
    return { inbound, connection: pc.connectionState };
  }

  window.iris = { connect, createBubble, join, setView, shareScreen, leave, stats, state };
})();
