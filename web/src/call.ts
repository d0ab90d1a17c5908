//! 1:1 calls: XEP-0353 ringing (propose/retract/reject/proceed/finish), XEP-0166/0167 Jingle
//! sessions with XEP-0176 trickle ICE over transport-info, ICE restart by the initiator when the
//! connection drops, either side's network changes or inbound media stalls, mute (XEP-0167 session-info), screen sharing by
//! replacing the outgoing video track, device choice. Media comes from getUserMedia /
//! getDisplayMedia; ICE servers from GET /api/v1/ice-servers. Group calls are not handled here.
import { App } from "./app";
import { XEl, x, kid, kids } from "./xml";
import { bare } from "./xmpp";
import { JNS, Role, sdpToJingle, jingleToSdp, candidateInfo, candidateToSdp, iceCredentials, withIceCredentials, restartContents, splitSdp } from "./jingle";
import { callEntry, Conversation } from "./model";
import { CallMediaWatch } from "./stall";
import { captureMedia } from "./media";

export const IRIS_CALL = "urn:iris:call:0";

export type CallState = "outgoing" | "incoming" | "connecting" | "active" | "ended";

export interface Call {
  sid: string;
  peer: string;
  peerFull: string;
  role: Role;
  video: boolean;
  state: CallState;
  pc: RTCPeerConnection | null;
  local: MediaStream | null;
  remote: MediaStream;
  startedAt: number;
  muted: boolean;
  cameraOff: boolean;
  sharing: boolean;
  remoteSharing: boolean;
  remoteMuted: boolean;
  /** The peer said its camera is off (XEP-0167 mute on the video content). */
  remoteCameraOff: boolean;
  reason: string;
  relayOnly: boolean;
  /** A session-initiate that arrived before the user answered (direct Jingle, no XEP-0353). */
  offer: XEl | null;
  signalled: boolean;
  restarting: boolean;
  /** A restart was asked for while one was in flight: run it once that one is answered (its
   * candidates may have been gathered on the network that just went away). */
  restartAgain: boolean;
  restartGen: number;
  remoteSdp: string;
  pendingRemote: RTCIceCandidateInit[];
  pendingLocal: XEl[];
  timers: ReturnType<typeof setTimeout>[];
  camera: MediaStreamTrack | null;
}

const RING_TIMEOUT_MS = 45000;

export class Calls {
  current: Call | null = null;
  devices: MediaDeviceInfo[] = [];
  private ringer: { stop: () => void } | null = null;

  constructor(private app: App) {
    app.callHandler = (s) => this.handle(s);
    if (typeof window !== "undefined") {
      window.addEventListener("online", () => this.networkChanged());
      const conn = (navigator as Navigator & { connection?: EventTarget }).connection;
      conn?.addEventListener?.("change", () => this.networkChanged());
      window.addEventListener("beforeunload", () => this.hangup());
    }
  }

  get relayOnly(): boolean {
    return localStorage.getItem("iris.relayOnly") === "1";
  }
  set relayOnly(v: boolean) {
    localStorage.setItem("iris.relayOnly", v ? "1" : "0");
    this.app.emit();
  }

  private send(s: XEl) {
    this.app.xmpp?.send(s);
  }

  /** A stored XEP-0353 message (`propose`, `proceed`, `reject`, `retract`, `finish`). */
  private jm(to: string, name: string, sid: string, ...children: (XEl | null)[]) {
    this.send(x("message", { to, type: "chat", id: name === "propose" ? sid : crypto.randomUUID() }, x(name, { xmlns: JNS.message, id: sid }, children), x("store", { xmlns: "urn:xmpp:hints" })));
  }

  /** Media capture for a call (missing devices only reduce what is sent); on an unexpected
   * failure the call ends. Returns false then. */
  private async captureOrEnd(c: Call): Promise<boolean> {
    try {
      await this.capture(c);
      return true;
    } catch (e) {
      this.app.toast(`Camera or microphone unavailable: ${(e as Error).message}`);
      this.hangup("failed-application");
      return false;
    }
  }

  private conv(peer: string): Conversation {
    return this.app.conversation(peer, "chat");
  }

  private log(c: Call, patch: Parameters<typeof callEntry>[5]) {
    callEntry(this.conv(c.peer), c.sid, c.role === "initiator" ? this.app.me : c.peer, c.role === "initiator", Date.now(), patch, this.app.active === c.peer);
  }

  private newCall(peer: string, peerFull: string, role: Role, video: boolean, sid: string): Call {
    return {
      sid, peer, peerFull, role, video, state: role === "initiator" ? "outgoing" : "incoming", pc: null, local: null,
      remote: new MediaStream(), startedAt: 0, muted: false, cameraOff: !video, sharing: false, remoteSharing: false,
      remoteMuted: false, remoteCameraOff: false, reason: "", relayOnly: this.relayOnly, offer: null, signalled: false, restarting: false, restartAgain: false, restartGen: 0,
      remoteSdp: "", pendingRemote: [], pendingLocal: [], timers: [], camera: null,
    };
  }

  // ---------- user actions ----------

  async start(peer: string, video: boolean) {
    if (this.current) {
      this.app.toast("You are already in a call");
      return;
    }
    const sid = crypto.randomUUID();
    const c = this.newCall(peer, "", "initiator", video, sid);
    this.current = c;
    this.app.setInCall(true);
    this.jm(peer, "propose", sid, x("description", { xmlns: JNS.rtp, media: "audio" }), video ? x("description", { xmlns: JNS.rtp, media: "video" }) : null);
    this.log(c, { video, outcome: "ringing" });
    this.ring("out");
    c.timers.push(setTimeout(() => c.state === "outgoing" && this.hangup("timeout"), RING_TIMEOUT_MS));
    this.app.emit();
    await this.captureOrEnd(c);
  }

  async accept(video: boolean) {
    const c = this.current;
    if (!c || c.state !== "incoming") return;
    c.video = video;
    c.cameraOff = !video;
    c.state = "connecting";
    this.stopRing();
    this.app.setInCall(true);
    this.app.emit();
    if (!(await this.captureOrEnd(c)) || this.current !== c) return;
    if (c.offer) {
      await this.answer(c, c.offer);
    } else {
      this.jm(c.peerFull, "proceed", c.sid);
    }
    this.log(c, { outcome: "answered" });
  }

  decline() {
    const c = this.current;
    if (!c || c.state !== "incoming") return;
    if (c.offer) this.terminate(c, "decline");
    else this.jm(c.peer, "reject", c.sid);
    this.log(c, { outcome: "declined" });
    this.cleanup(c, "declined");
  }

  /** Ends the call from our side (`reason` is a Jingle reason). */
  hangup(reason = "success") {
    const c = this.current;
    if (!c) return;
    if (c.state === "incoming") return this.decline();
    if (c.role === "initiator" && !c.signalled) {
      this.jm(c.peer, "retract", c.sid);
      this.log(c, { outcome: "missed" });
    } else {
      this.terminate(c, reason);
      this.jm(c.peer, "finish", c.sid, x("reason", { xmlns: JNS.jingle }, x(reason, {})));
      this.log(c, { outcome: "ended", duration: c.startedAt ? (Date.now() - c.startedAt) / 1000 : 0 });
    }
    this.cleanup(c, reason === "timeout" ? "No answer" : "Call ended");
  }

  toggleMute() {
    const c = this.current;
    if (!c) return;
    c.muted = !c.muted;
    c.local?.getAudioTracks().forEach((t) => (t.enabled = !c.muted));
    this.sendMute(c, "audio", c.muted);
    this.app.emit();
  }

  async toggleCamera() {
    const c = this.current;
    if (!c || c.sharing) return;
    if (c.cameraOff && !c.camera) {
      try {
        const s = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 } });
        c.camera = s.getVideoTracks()[0] ?? null;
        if (c.camera) c.local?.addTrack(c.camera);
      } catch (e) {
        this.app.toast(`Camera unavailable: ${(e as Error).message}`);
        return;
      }
    }
    c.cameraOff = !c.cameraOff;
    if (c.camera) c.camera.enabled = !c.cameraOff;
    await this.videoSender(c)?.replaceTrack(c.cameraOff ? null : c.camera);
    this.sendMute(c, "video", c.cameraOff);
    this.app.emit();
  }

  async toggleShare() {
    const c = this.current;
    if (!c || !c.pc) return;
    if (c.sharing) return this.stopShare(c);
    let display: MediaStream;
    try {
      display = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
    } catch (e) {
      this.app.toast(`Screen sharing unavailable: ${(e as Error).message}`);
      return;
    }
    const track = display.getVideoTracks()[0];
    if (!track) return;
    track.contentHint = "detail";
    track.addEventListener("ended", () => this.stopShare(c));
    await this.videoSender(c)?.replaceTrack(track);
    c.sharing = true;
    (c as Call & { screen?: MediaStreamTrack }).screen = track;
    this.sessionInfo(c, x("screen", { xmlns: IRIS_CALL, active: "true" }));
    this.app.emit();
  }

  private async stopShare(c: Call) {
    if (!c.sharing) return;
    const screen = (c as Call & { screen?: MediaStreamTrack }).screen;
    screen?.stop();
    c.sharing = false;
    await this.videoSender(c)?.replaceTrack(c.cameraOff ? null : c.camera);
    this.sessionInfo(c, x("screen", { xmlns: IRIS_CALL, active: "false" }));
    this.app.emit();
  }

  async refreshDevices() {
    try {
      this.devices = await navigator.mediaDevices.enumerateDevices();
    } catch {
      this.devices = [];
    }
    this.app.emit();
  }

  /** Switches the microphone or camera during a call. */
  async useDevice(kind: "audioinput" | "videoinput", deviceId: string) {
    localStorage.setItem(`iris.${kind}`, deviceId);
    const c = this.current;
    if (!c || !c.local) return;
    const audio = kind === "audioinput";
    try {
      const s = await navigator.mediaDevices.getUserMedia(audio ? { audio: { deviceId: { exact: deviceId } } } : { video: { deviceId: { exact: deviceId }, width: 640, height: 480 } });
      const track = s.getTracks()[0];
      if (!track) return;
      const old = audio ? c.local.getAudioTracks()[0] : c.camera;
      if (old) {
        c.local.removeTrack(old);
        old.stop();
      }
      c.local.addTrack(track);
      if (audio) {
        track.enabled = !c.muted;
        await c.pc?.getSenders().find((t) => t.track?.kind === "audio" || t === this.audioSender(c))?.replaceTrack(track);
      } else {
        c.camera = track;
        track.enabled = !c.cameraOff;
        if (!c.sharing && !c.cameraOff) await this.videoSender(c)?.replaceTrack(track);
      }
      this.app.emit();
    } catch (e) {
      this.app.toast(`Could not switch device: ${(e as Error).message}`);
    }
  }

  // ---------- media and peer connection ----------

  /** Captures what the call asks for, with less if a device is missing or refused (media.ts):
   * no camera leaves the camera off, no microphone leaves the call muted, neither leaves it
   * receive-only. The peer is told once the session is set up ([`announce`]). */
  private async capture(c: Call) {
    const cam = localStorage.getItem("iris.videoinput");
    const got = await captureMedia(c.video ? { width: 640, height: 480, ...(cam ? { deviceId: cam } : {}) } : false);
    if (this.current !== c) {
      got.stream?.getTracks().forEach((t) => t.stop());
      return;
    }
    c.local = got.stream ?? new MediaStream();
    c.camera = got.camera;
    if (!got.mic) c.muted = true;
    if (!c.camera) c.cameraOff = true;
    if (got.notice) this.app.toast(got.notice);
    void this.refreshDevices();
    this.app.emit();
  }

  /** Tells the peer (XEP-0167 session-info) what it cannot see in the media: a microphone or
   * camera that is off from the start (missing, or turned off before the session was set up).
   * Sent once both sides have the session: by the responder after its session-accept, by the
   * initiator when that accept arrives, so the peer maps the content names. */
  private announce(c: Call) {
    if (c.muted) this.sendMute(c, "audio", true);
    if (c.video && c.cameraOff) this.sendMute(c, "video", true);
  }

  /** XEP-0167 `<mute/>` / `<unmute/>` session-info for the content of `kind`. */
  private sendMute(c: Call, kind: "audio" | "video", muted: boolean) {
    this.sessionInfo(c, x(muted ? "mute" : "unmute", { xmlns: JNS.info, creator: "initiator", name: this.midOf(c, kind) }));
  }

  private async peer(c: Call): Promise<RTCPeerConnection> {
    let iceServers: RTCIceServer[] = [];
    try {
      iceServers = await this.app.api.iceServers();
    } catch (e) {
      this.app.toast(`No relay available: ${(e as Error).message}`);
    }
    const pc = new RTCPeerConnection({ iceServers, iceTransportPolicy: c.relayOnly ? "relay" : "all", bundlePolicy: "max-bundle", rtcpMuxPolicy: "require" });
    c.pc = pc;
    pc.ontrack = (e) => {
      c.remote.addTrack(e.track);
      this.app.emit();
    };
    pc.onicecandidate = (e) => {
      if (!e.candidate || !e.candidate.candidate || !pc.localDescription) return;
      const creds = this.localCreds(pc, e.candidate.sdpMid ?? "");
      const content = candidateInfo(e.candidate.sdpMid ?? "0", e.candidate.candidate, creds.ufrag, creds.pwd);
      if (!content) return;
      if (c.signalled) this.jingle(c, "transport-info", [content]);
      else c.pendingLocal.push(content);
    };
    pc.onconnectionstatechange = () => {
      if (this.current !== c) return;
      if (pc.connectionState === "connected" && c.state !== "active") {
        c.state = "active";
        if (!c.startedAt) c.startedAt = Date.now();
        this.stopRing();
      }
      this.app.emit();
    };
    this.watchMedia(c, pc);
    pc.oniceconnectionstatechange = () => {
      if (this.current !== c || c.role !== "initiator") return;
      const st = pc.iceConnectionState;
      if (st === "failed") void this.restart(c);
      if (st === "disconnected") {
        c.timers.push(setTimeout(() => pc.iceConnectionState === "disconnected" && void this.restart(c), 2000));
      }
    };
    return pc;
  }

  /** One-way media: after an address change the browsers may keep a pair on which the peer's
   * packets no longer arrive while ICE still reads "connected" (checks pass one way, consent
   * takes 30 s to expire), so neither state change nor network event restarts ICE. The receiver
   * notices: inbound RTP bytes (audio keeps flowing while muted; only track.enabled is cleared)
   * stop growing for MEDIA_STALL_MS, and the call is restarted as for a network change. */
  private watchMedia(c: Call, pc: RTCPeerConnection) {
    const watch = new CallMediaWatch();
    const id = setInterval(() => {
      if (this.current !== c || c.pc !== pc || c.state !== "active" || c.restarting) return;
      const video = !c.remoteCameraOff || c.remoteSharing;
      void pc.getStats().then((stats) => {
        if (watch.sample(stats.values() as Iterable<RTCInboundRtpStreamStats>, video, Date.now()) && this.current === c) {
          console.warn("iris: inbound media stalled, restarting ICE");
          this.networkChanged();
        }
      }, () => {});
    }, 1000);
    c.timers.push(id as unknown as ReturnType<typeof setTimeout>);
  }

  private localCreds(pc: RTCPeerConnection, mid: string) {
    const { media } = splitSdp(pc.localDescription?.sdp ?? "");
    const m = media.find((s) => s.mid === mid) ?? media[0];
    const get = (k: string) => m?.lines.find((l) => l.startsWith(`a=${k}:`))?.slice(k.length + 3) ?? "";
    return { ufrag: get("ice-ufrag"), pwd: get("ice-pwd") };
  }

  private audioSender(c: Call) {
    return c.pc?.getTransceivers().find((t) => t.receiver.track.kind === "audio")?.sender;
  }
  private videoSender(c: Call) {
    return c.pc?.getTransceivers().find((t) => t.receiver.track.kind === "video")?.sender;
  }
  private midOf(c: Call, kind: string) {
    return c.pc?.getTransceivers().find((t) => t.receiver.track.kind === kind)?.mid ?? kind;
  }

  /** Initiator: after `proceed`, offer audio and video (video may start without a track). */
  private async initiate(c: Call) {
    const pc = await this.peer(c);
    const audio = c.local?.getAudioTracks()[0];
    pc.addTransceiver(audio ?? "audio", { direction: "sendrecv", streams: c.local ? [c.local] : [] });
    pc.addTransceiver(c.camera && !c.cameraOff ? c.camera : "video", { direction: "sendrecv", streams: c.local ? [c.local] : [] });
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    c.state = "connecting";
    this.app.emit();
    try {
      await this.jingleIq(c, "session-initiate", sdpToJingle(pc.localDescription?.sdp ?? "", "initiator"));
    } catch {
      this.app.toast("The call could not be set up");
      this.cleanup(c, "Call failed");
      return;
    }
    this.flushLocal(c);
  }

  /** Responder: answer a session-initiate. */
  private async answer(c: Call, jingle: XEl) {
    const pc = await this.peer(c);
    c.remoteSdp = jingleToSdp(jingle, "initiator");
    try {
      await pc.setRemoteDescription({ type: "offer", sdp: c.remoteSdp });
      for (const t of pc.getTransceivers()) {
        const kind = t.receiver.track.kind;
        const track = kind === "audio" ? c.local?.getAudioTracks()[0] : c.cameraOff ? null : c.camera;
        t.direction = "sendrecv";
        if (track) await t.sender.replaceTrack(track);
        if (c.local) t.sender.setStreams?.(c.local);
      }
      await pc.setLocalDescription(await pc.createAnswer());
    } catch (e) {
      this.app.toast(`Incompatible call: ${(e as Error).message}`);
      this.terminate(c, "incompatible-parameters");
      this.cleanup(c, "Call failed");
      return;
    }
    await this.flushRemote(c);
    this.jingle(c, "session-accept", sdpToJingle(pc.localDescription?.sdp ?? "", "responder"));
    this.flushLocal(c);
    this.announce(c);
  }

  private flushLocal(c: Call) {
    c.signalled = true;
    const pending = c.pendingLocal.splice(0);
    if (pending.length) this.jingle(c, "transport-info", pending);
  }

  private async flushRemote(c: Call) {
    for (const cand of c.pendingRemote.splice(0)) await c.pc?.addIceCandidate(cand).catch(() => {});
  }

  /** ICE restart (initiator): new credentials in a transport-info; the peer answers in kind. */
  private async restart(c: Call) {
    const pc = c.pc;
    if (!pc || this.current !== c || !c.signalled) return;
    if (c.restarting) {
      c.restartAgain = true;
      return;
    }
    if (pc.signalingState !== "stable") return;
    c.restarting = true;
    const gen = ++c.restartGen;
    try {
      const offer = await pc.createOffer({ iceRestart: true });
      await pc.setLocalDescription(offer);
      this.jingle(c, "transport-info", restartContents(pc.localDescription?.sdp ?? ""));
    } catch {
      this.restartDone(c);
    }
    // An answer that never comes does not block later restarts.
    c.timers.push(setTimeout(() => c.restartGen === gen && c.restarting && this.restartDone(c), 10000));
  }

  private restartDone(c: Call) {
    c.restarting = false;
    if (c.restartAgain) {
      c.restartAgain = false;
      void this.restart(c);
    }
  }

  /** the initiator restarts ICE at once; a responder asks it to (a responder's own offer
   * would swap the DTLS roles), rather than wait seconds for ICE to notice the dead path. */
  private networkChanged() {
    const c = this.current;
    if (!c || !c.pc || !c.signalled) return;
    // The signalling connection may have died with the old address: check it, so that the
    // restart below reaches the peer after a reconnect instead of a dead socket.
    this.app.xmpp?.probe();
    if (c.role === "initiator") void this.restart(c);
    else this.sessionInfo(c, x("network-changed", { xmlns: IRIS_CALL }));
  }

  // ---------- signalling ----------

  private jingleEl(c: Call, action: string, children: XEl[]) {
    return x("jingle", { xmlns: JNS.jingle, action, sid: c.sid, initiator: c.role === "initiator" ? this.app.xmpp?.jid : c.peerFull, responder: action === "session-accept" ? this.app.xmpp?.jid : undefined }, children);
  }

  private jingle(c: Call, action: string, children: XEl[]) {
    this.app.xmpp?.iq(x("iq", { type: "set", to: c.peerFull }, this.jingleEl(c, action, children))).catch(() => {});
  }

  private jingleIq(c: Call, action: string, children: XEl[]) {
    return this.app.xmpp?.iq(x("iq", { type: "set", to: c.peerFull }, this.jingleEl(c, action, children))) ?? Promise.reject(new Error("offline"));
  }

  private sessionInfo(c: Call, payload: XEl) {
    if (c.signalled) this.jingle(c, "session-info", [payload]);
  }

  private terminate(c: Call, reason: string) {
    if (c.peerFull) this.jingle(c, "session-terminate", [x("reason", {}, x(reason, {}))]);
  }

  /** Call stanzas: XEP-0353 messages and Jingle IQs. Returns true when consumed. */
  handle(s: XEl): boolean {
    if (s.name === "message") return this.handleMessage(s);
    if (s.name !== "iq" || s.attrs.type !== "set") return false;
    const j = kid(s, "jingle", JNS.jingle);
    if (!j) return false;
    void this.handleJingle(s, j);
    return true;
  }

  private handleMessage(s: XEl): boolean {
    const jm = s.children.find((c): c is XEl => typeof c !== "string" && c.attrs.xmlns === JNS.message);
    if (!jm) return false;
    const from = s.attrs.from ?? "";
    const sid = jm.attrs.id ?? "";
    const c = this.current;
    // Our own answer from another device (a carbon): stop ringing here.
    const carbonOfMine = bare(from) === this.app.me;
    if (carbonOfMine) {
      if (c && c.sid === sid && c.state === "incoming" && (jm.name === "proceed" || jm.name === "reject" || jm.name === "accept")) {
        this.cleanup(c, "Answered on another device");
      }
      return false;
    }
    if (jm.name === "propose") {
      if (c || this.app.inConference) {
        // Busy: reject the second call.
        this.jm(bare(from), "reject", sid, x("reason", { xmlns: JNS.jingle }, x("busy", {})));
        return false;
      }
      const video = kids(jm, "description").some((d) => d.attrs.media === "video");
      const call = this.newCall(bare(from), from, "responder", video, sid);
      this.current = call;
      this.ringIn(call);
      return false;
    }
    if (!c || c.sid !== sid || bare(from) !== c.peer) return false;
    switch (jm.name) {
      case "retract":
        if (c.state === "incoming") this.cleanup(c, "Missed call");
        break;
      case "reject":
        if (c.state === "outgoing") {
          this.log(c, { outcome: "declined" });
          this.cleanup(c, "Declined");
        }
        break;
      case "proceed":
        if (c.state === "outgoing" && c.role === "initiator") {
          c.peerFull = from;
          this.stopRing();
          this.log(c, { outcome: "answered" });
          void this.initiate(c);
        }
        break;
    }
    return false;
  }

  private ringIn(c: Call) {
    this.ring("in");
    this.app.notify(`${this.app.nameOf(c.peer)} is calling`, c.video ? "Video call" : "Audio call", "call");
    c.timers.push(
      setTimeout(() => {
        if (this.current === c && c.state === "incoming") {
          this.log(c, { outcome: "missed" });
          this.cleanup(c, "Missed call");
        }
      }, RING_TIMEOUT_MS),
    );
    this.app.emit();
  }

  private async handleJingle(iq: XEl, j: XEl) {
    const xmpp = this.app.xmpp;
    if (!xmpp) return;
    const action = j.attrs.action ?? "";
    const sid = j.attrs.sid ?? "";
    const from = iq.attrs.from ?? "";
    const c = this.current;
    if (action === "session-initiate") {
      xmpp.result(iq);
      if (c && c.sid === sid && bare(from) === c.peer && c.role === "responder") {
        c.peerFull = from;
        if (c.state === "connecting") await this.answer(c, j);
        else c.offer = j;
        return;
      }
      if (c) {
        xmpp.send(x("iq", { type: "set", to: from }, x("jingle", { xmlns: JNS.jingle, action: "session-terminate", sid }, x("reason", {}, x("busy", {})))));
        return;
      }
      // A direct Jingle call without XEP-0353 ringing.
      const video = kids(j, "content").some((ct) => kid(ct, "description")?.attrs.media === "video");
      const call = this.newCall(bare(from), from, "responder", video, sid);
      call.offer = j;
      this.current = call;
      this.log(call, { video, outcome: "ringing" });
      this.ringIn(call);
      return;
    }
    if (!c || c.sid !== sid || bare(from) !== c.peer) {
      xmpp.send(x("iq", { type: "error", id: iq.attrs.id, to: from }, x("error", { type: "cancel" }, x("item-not-found", { xmlns: "urn:ietf:params:xml:ns:xmpp-stanzas" }), x("unknown-session", { xmlns: JNS.errors }))));
      return;
    }
    xmpp.result(iq);
    const pc = c.pc;
    switch (action) {
      case "session-accept":
        if (!pc) return;
        c.remoteSdp = jingleToSdp(j, "responder");
        try {
          await pc.setRemoteDescription({ type: "answer", sdp: c.remoteSdp });
        } catch (e) {
          this.app.toast(`Call failed: ${(e as Error).message}`);
          this.hangup("incompatible-parameters");
          return;
        }
        await this.flushRemote(c);
        this.announce(c);
        break;
      case "transport-info": {
        const creds = iceCredentials(j);
        if (pc && creds && c.remoteSdp && !c.remoteSdp.includes(`a=ice-ufrag:${creds.ufrag}\r\n`)) {
          await this.remoteRestart(c, pc, creds);
        }
        for (const content of kids(j, "content")) {
          const t = kid(content, "transport");
          for (const cand of kids(t, "candidate")) {
            const line = candidateToSdp(cand);
            if (!line) continue;
            const init: RTCIceCandidateInit = { candidate: line, sdpMid: content.attrs.name, usernameFragment: t?.attrs.ufrag };
            if (pc?.remoteDescription && !c.restarting) await pc.addIceCandidate(init).catch(() => {});
            else c.pendingRemote.push(init);
          }
        }
        break;
      }
      case "session-info": {
        if (kid(j, "network-changed", IRIS_CALL) && c.role === "initiator") void this.restart(c);
        const screen = kid(j, "screen", IRIS_CALL);
        if (screen) c.remoteSharing = screen.attrs.active === "true";
        const mute = kid(j, "mute", JNS.info);
        const unmute = kid(j, "unmute", JNS.info);
        const muted = (mute ?? unmute)?.attrs.name;
        if (muted && this.midOf(c, "audio") === muted) c.remoteMuted = !!mute;
        if (muted && this.midOf(c, "video") === muted) c.remoteCameraOff = !!mute;
        break;
      }
      case "session-terminate": {
        const reason = kid(j, "reason")?.children.find((r): r is XEl => typeof r !== "string" && r.name !== "text")?.name ?? "success";
        if (c.state === "incoming") this.log(c, { outcome: "missed" });
        else this.log(c, { outcome: "ended", duration: c.startedAt ? (Date.now() - c.startedAt) / 1000 : 0 });
        this.cleanup(c, reason === "decline" ? "Declined" : reason === "busy" ? "Busy" : "Call ended");
        break;
      }
    }
    this.app.emit();
  }

  /** The peer restarted ICE (responder) or answered our restart (initiator). */
  private async remoteRestart(c: Call, pc: RTCPeerConnection, creds: { ufrag: string; pwd: string }) {
    c.remoteSdp = withIceCredentials(c.remoteSdp, creds.ufrag, creds.pwd);
    let answered = false;
    try {
      if (c.role === "initiator" && pc.signalingState === "have-local-offer") {
        await pc.setRemoteDescription({ type: "answer", sdp: c.remoteSdp });
        c.restarting = false;
        answered = true;
      } else if (c.role === "responder") {
        await pc.setRemoteDescription({ type: "offer", sdp: c.remoteSdp });
        await pc.setLocalDescription(await pc.createAnswer());
        this.jingle(c, "transport-info", restartContents(pc.localDescription?.sdp ?? ""));
      }
    } catch {
      c.restarting = false;
      answered = true;
    }
    // The answered generation's candidates first, then a restart asked for meanwhile.
    await this.flushRemote(c);
    if (answered) this.restartDone(c);
  }

  private cleanup(c: Call, reason: string) {
    // clearTimeout also clears intervals (one id pool, HTML §8.6).
    c.timers.forEach(clearTimeout);
    c.state = "ended";
    c.reason = reason;
    this.stopRing();
    c.local?.getTracks().forEach((t) => t.stop());
    c.camera?.stop();
    (c as Call & { screen?: MediaStreamTrack }).screen?.stop();
    c.pc?.getSenders().forEach((s) => s.track?.stop());
    c.pc?.close();
    c.pc = null;
    if (this.current === c) this.current = null;
    this.app.setInCall(false);
    this.app.toast(reason);
    this.app.emit();
  }

  // ---------- ringing tones (Web Audio, no assets) ----------

  private ring(kind: "in" | "out") {
    this.stopRing();
    try {
      const ctx = new AudioContext();
      const gain = ctx.createGain();
      gain.gain.value = 0;
      gain.connect(ctx.destination);
      const osc = ctx.createOscillator();
      osc.frequency.value = kind === "in" ? 660 : 440;
      osc.connect(gain);
      osc.start();
      const beep = () => {
        const t = ctx.currentTime;
        gain.gain.setValueAtTime(kind === "in" ? 0.12 : 0.05, t);
        gain.gain.setValueAtTime(0, t + (kind === "in" ? 0.4 : 1.0));
      };
      beep();
      const timer = setInterval(beep, kind === "in" ? 1200 : 3000);
      this.ringer = {
        stop: () => {
          clearInterval(timer);
          void ctx.close().catch(() => {});
        },
      };
    } catch {
      this.ringer = null;
    }
  }

  private stopRing() {
    this.ringer?.stop();
    this.ringer = null;
  }
}
