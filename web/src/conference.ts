//! Bubble conferences through the Iris conference unit (SFU), signalled with
//! `urn:xmpp:iris:conference:0` (crates/conference/README.md): the pure model (roster, slots and
//! status payloads, view → tile size → requested layer, grid shape, who is the talker, the
//! participant list) and `Conferences`, which joins with one RTCPeerConnection (3-layer VP8
//! simulcast up, receive slots down), renegotiates for screen sharing and ICE restarts, mutes,
//! and keeps presence "In a conference". 1:1 calls live in call.ts; rendering in conference-ui.tsx.
import type { App } from "./app";
import { XEl, x, kid, kids, text } from "./xml";
import { bare } from "./xmpp";
import { StallWatch, freshBytes } from "./stall";
import { captureMedia } from "./media";

export const CONF_NS = "urn:xmpp:iris:conference:0";

// ---------------------------------------------------------------- pure model

export type ViewMode = "talker" | "thumbnails" | "grid";
export type Rid = "l" | "m" | "h";

export interface Participant {
  id: string;
  nick: string;
  jid: string;
  audio: boolean;
  video: boolean;
  screen: boolean;
  audioMuted: boolean;
  videoMuted: boolean;
}

export interface Roster {
  speaker: string | null;
  participants: Participant[];
}

/** SPEC §7 simulcast layers and their caps: 180p ≤ 100 kbit/s, 360p ≤ 300, 720p ≤ 800. */
export const LAYERS: { rid: Rid; height: number; cap: number; maxBitrate: number }[] = [
  { rid: "l", height: 180, cap: 100_000, maxBitrate: 0 },
  { rid: "m", height: 360, cap: 300_000, maxBitrate: 0 },
  { rid: "h", height: 720, cap: 800_000, maxBitrate: 0 },
];
/**
 * The encoder's target is kept this far under each cap: with `maxBitrate` at the cap, Chrome's
 * VP8 overshoots it by 15–40 % over 5 s (measured in tests/browser/web-conference.test.mjs).
 */
export const CAP_HEADROOM = 0.85;
for (const l of LAYERS) l.maxBitrate = Math.round(l.cap * CAP_HEADROOM);
/** Data-saver mode: the top layer is sent at 480p (SPEC §7), mobile-like 800 kbit/s in all. */
export const DATA_SAVER_TOP = { height: 480, maxBitrate: 400_000 };
/** The unit's limits (crates/conference room budget). */
export const MAX_GRID = 12;
export const MAX_THUMBNAILS = 5;
/** Grid tiles at least this tall (CSS px) get the 360p layer. */
export const GRID_MID_TILE_HEIGHT = 270;
/** Receive slots we offer: last-N audio, grid-many cameras, one screen. */
export const SLOTS = { audio: 3, video: MAX_GRID, screen: 1 };
/** Height of a thumbnail tile (CSS px), next to the talker or a shared screen. */
export const THUMB_HEIGHT = 112;

const yes = (v: string | undefined) => v === "true" || v === "1";

/** `<roster speaker='…'><participant …/>…</roster>`. */
export function parseRoster(el: XEl): Roster {
  return {
    speaker: el.attrs.speaker || null,
    participants: kids(el, "participant")
      .filter((p) => p.attrs.id)
      .map((p) => ({
        id: p.attrs.id,
        nick: p.attrs.nick ?? "",
        jid: p.attrs.jid ?? "",
        audio: yes(p.attrs.audio),
        video: yes(p.attrs.video),
        screen: yes(p.attrs.screen),
        audioMuted: yes(p.attrs["audio-muted"]),
        videoMuted: yes(p.attrs["video-muted"]),
      })),
  };
}

/** `<slots><slot mid='5' participant='3'/>…</slots>` → mid → participant id (null: empty). */
export function parseSlots(el: XEl): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  for (const s of kids(el, "slot")) if (s.attrs.mid) out[s.attrs.mid] = s.attrs.participant || null;
  return out;
}

/** `<send-layers l m h/>` → which of our simulcast layers somebody consumes. */
export function parseSendLayers(el: XEl): Record<Rid, boolean> {
  return { l: yes(el.attrs.l), m: yes(el.attrs.m), h: yes(el.attrs.h) };
}

/** `<status count='n'><participant jid/>…</status>` → bare JIDs of the participants. */
export function parseStatus(el: XEl): string[] {
  return kids(el, "participant").map((p) => p.attrs.jid ?? "").filter(Boolean);
}

/** The simulcast encodings we send (lowest first; rids as the unit expects). */
export function sendEncodings(dataSaver: boolean): RTCRtpEncodingParameters[] {
  return LAYERS.map((l) => {
    const top = l.rid === "h" && dataSaver;
    const height = top ? DATA_SAVER_TOP.height : l.height;
    return { rid: l.rid, scaleResolutionDownBy: 720 / height, maxBitrate: top ? DATA_SAVER_TOP.maxBitrate : l.maxBitrate, active: true };
  });
}

export interface GridShape {
  cols: number;
  rows: number;
  tileWidth: number;
  tileHeight: number;
}

/** The 16:9 grid of `n` tiles with the largest tiles in a `width` × `height` stage. */
export function gridShape(n: number, width: number, height: number, gap = 8): GridShape {
  const count = Math.max(1, n);
  let best: GridShape = { cols: 1, rows: 1, tileWidth: 0, tileHeight: 0 };
  for (let cols = 1; cols <= count; cols++) {
    const rows = Math.ceil(count / cols);
    const w = (width - gap * (cols - 1)) / cols;
    const h = (height - gap * (rows - 1)) / rows;
    const tileHeight = Math.max(0, Math.min(h, (w * 9) / 16));
    if (tileHeight > best.tileHeight) best = { cols, rows, tileWidth: (tileHeight * 16) / 9, tileHeight };
  }
  return { ...best, tileWidth: Math.floor(best.tileWidth), tileHeight: Math.floor(best.tileHeight) };
}

export interface ViewRequest {
  mode: ViewMode;
  /** Height in CSS px of a grid or thumbnail tile (the main tile in talker view). */
  tileHeight: number;
  dataSaver: boolean;
}

/**
 * What we tell the unit for a layout: `tiles` video tiles on a `width` × `height` stage (ours
 * included in the grid), `screen` when a shared screen takes the main area (cameras become
 * thumbnails then).
 */
export function viewFor(mode: ViewMode, tiles: number, width: number, height: number, dataSaver: boolean, screen = false): ViewRequest {
  if (screen || mode === "thumbnails") return { mode, tileHeight: THUMB_HEIGHT, dataSaver };
  if (mode === "talker") return { mode, tileHeight: Math.max(0, Math.floor(height)), dataSaver };
  return { mode, tileHeight: gridShape(Math.min(tiles, MAX_GRID + 1), width, height).tileHeight, dataSaver };
}

/** The `<view/>` payload of a request. */
export function viewElement(v: ViewRequest): XEl {
  return x("view", { xmlns: CONF_NS, mode: v.mode, "tile-height": Math.max(0, Math.round(v.tileHeight)), "data-saver": v.dataSaver ? "true" : "false" });
}

/** Whether a new view request is worth sending (mode, data saver, or the tile size really changed). */
export function viewChanged(old: ViewRequest | null, v: ViewRequest): boolean {
  if (!old) return true;
  if (old.mode !== v.mode || old.dataSaver !== v.dataSaver) return true;
  const crosses = (old.tileHeight >= GRID_MID_TILE_HEIGHT) !== (v.tileHeight >= GRID_MID_TILE_HEIGHT);
  return crosses || Math.abs(old.tileHeight - v.tileHeight) > Math.max(16, old.tileHeight * 0.15);
}

/**
 * The layer the unit forwards for a camera in a view (before bandwidth step-down): the talker at
 * 720p, thumbnails at 180p, grid tiles at 360p when tall enough, else 180p.
 */
export function layerFor(v: ViewRequest, isTalker: boolean): Rid {
  if (v.mode === "talker") return "h";
  if (v.mode === "thumbnails") return isTalker ? "h" : "l";
  return v.tileHeight >= GRID_MID_TILE_HEIGHT ? "m" : "l";
}

const hasCamera = (p: Participant) => p.video && !p.videoMuted;

/**
 * Who fills the main tile in talker and thumbnails views, mirroring the unit's last-N order: the
 * active speaker, then the most recent speakers (`recent`, newest first), then join order —
 * among the others with their camera on; failing that, anyone else.
 */
export function talkerOf(r: Roster, me: string, recent: string[]): string | null {
  const others = r.participants.filter((p) => p.id !== me);
  const byId = new Map(others.map((p) => [p.id, p]));
  for (const id of [r.speaker, ...recent]) {
    const p = id ? byId.get(id) : undefined;
    if (p && hasCamera(p)) return p.id;
  }
  return (others.find(hasCamera) ?? others[0])?.id ?? null;
}

/**
 * The main tile from what the unit actually forwards (it orders by recent speech, which clients
 * cannot see): in talker view the one camera that flows; in thumbnails view the camera received
 * taller than a thumbnail (`heights`: frame height by slot mid). Falls back to [`talkerOf`].
 */
export function mainFromSlots(mode: ViewMode, r: Roster, me: string, recent: string[], cameraSlots: Record<string, string | null>, heights: Record<string, number>): string | null {
  if (mode === "grid") return null;
  const present = new Set(r.participants.filter((p) => p.id !== me && hasCamera(p)).map((p) => p.id));
  const fed = Object.entries(cameraSlots).filter(([, id]) => id && present.has(id)) as [string, string][];
  if (mode === "talker" && fed.length === 1) return fed[0][1];
  let best: [string, number] | null = null;
  for (const [mid, id] of fed) {
    const h = heights[mid] ?? 0;
    if (h > 180 && (!best || h > best[1])) best = [id, h];
  }
  return best ? best[0] : talkerOf(r, me, recent);
}

/** Remembers a new speaker first in the recent list (bounded). */
export function rememberSpeaker(recent: string[], speaker: string | null): string[] {
  if (!speaker) return recent;
  return [speaker, ...recent.filter((s) => s !== speaker)].slice(0, 16);
}

export interface Tile {
  id: string;
  me: boolean;
}

export interface Layout {
  /** The big tile: the talker (talker, thumbnails) or null (grid). */
  main: string | null;
  /** The other tiles: thumbnails or the grid, in join order, ours included. */
  tiles: Tile[];
  /** Who shares a screen we receive. */
  screen: string | null;
}

/** Which participant goes where for a view, `main` being the talker (ignored in grid view). */
export function arrange(mode: ViewMode, r: Roster, me: string, talker: string | null, screen: string | null): Layout {
  const main = mode === "grid" ? null : talker;
  const others = r.participants.filter((p) => p.id !== main);
  const mine = others.filter((p) => p.id === me).map((p) => ({ id: p.id, me: true }));
  const rest = others.filter((p) => p.id !== me).map((p) => ({ id: p.id, me: false }));
  let tiles: Tile[];
  if (mode === "talker") tiles = screen ? [...(main ? [{ id: main, me: false }] : []), ...mine] : mine;
  else if (mode === "thumbnails") tiles = [...rest.slice(0, MAX_THUMBNAILS), ...mine];
  else tiles = [...mine, ...rest.slice(0, MAX_GRID)];
  return { main: screen ? null : main, tiles, screen };
}

export interface ListEntry {
  id: string;
  name: string;
  me: boolean;
  speaking: boolean;
  audioMuted: boolean;
  videoOff: boolean;
  screen: boolean;
}

/** The participant list: us first, then by name; mute states and who speaks. */
export function participantList(r: Roster, me: string, nameOf: (p: Participant) => string): ListEntry[] {
  return r.participants
    .map((p) => ({
      id: p.id,
      name: nameOf(p),
      me: p.id === me,
      speaking: p.id === r.speaker,
      audioMuted: !p.audio || p.audioMuted,
      videoOff: !hasCamera(p),
      screen: p.screen,
    }))
    .sort((a, b) => Number(b.me) - Number(a.me) || a.name.localeCompare(b.name));
}

/** Who joined and who left between two rosters. */
export function rosterDiff(old: Roster, now: Roster): { joined: Participant[]; left: Participant[] } {
  const before = new Set(old.participants.map((p) => p.id));
  const after = new Set(now.participants.map((p) => p.id));
  return {
    joined: now.participants.filter((p) => !before.has(p.id)),
    left: old.participants.filter((p) => !after.has(p.id)),
  };
}

// ---------------------------------------------------------------- the session

type SlotKind = "audio" | "video" | "screen";

export interface Conference {
  room: string;
  state: "joining" | "joined" | "ended";
  id: string;
  pc: RTCPeerConnection | null;
  local: MediaStream;
  mic: MediaStreamTrack | null;
  camera: MediaStreamTrack | null;
  screenTrack: MediaStreamTrack | null;
  roster: Roster;
  slots: Record<string, string | null>;
  recent: string[];
  mode: ViewMode;
  dataSaver: boolean;
  muted: boolean;
  cameraOff: boolean;
  sharing: boolean;
  sendLayers: Record<Rid, boolean>;
  /** Remote streams by slot mid. */
  streams: Map<string, MediaStream>;
  kinds: Map<RTCRtpTransceiver, SlotKind>;
  startedAt: number;
  /** The last view told to the unit. */
  view: ViewRequest | null;
  stage: { width: number; height: number };
  relayOnly: boolean;
  /** Received frame height by camera slot mid (from getStats, every second). */
  heights: Record<string, number>;
  timer: ReturnType<typeof setInterval> | undefined;
  /** One-way media watchdog (see `stall.ts`), fed by the 1 s stats poll. */
  stall: StallWatch;
  /** Pending restart after the connection stayed "disconnected" for 2 s. */
  disconnectTimer?: ReturnType<typeof setTimeout>;
}

const SUPPRESS_TOASTS_MS = 1500;

/** Conferences of every bubble: who is in each (for "Join (n)") and the one we are in. */
export class Conferences {
  current: Conference | null = null;
  /** Bubble → bare JIDs of its conference's participants. */
  running = new Map<string, string[]>();
  private queue: Promise<unknown> = Promise.resolve();
  private viewTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(private app: App) {
    app.conferenceHandler = (s) => this.handle(s);
    app.onBubbleJoined = (room) => void this.refresh(room);
    if (typeof window !== "undefined") {
      window.addEventListener("online", () => void this.restartIce());
      window.addEventListener("beforeunload", () => this.current && this.leave());
    }
  }

  /** How many are in `room`'s conference. */
  count(room: string): number {
    return this.running.get(room)?.length ?? 0;
  }

  /** Asks the unit who is in `room`'s conference. */
  async refresh(room: string) {
    try {
      const r = await this.app.xmpp?.iq(x("iq", { type: "get", to: room }, x("status", { xmlns: CONF_NS })));
      const st = kid(r, "status", CONF_NS);
      if (st) this.setRunning(room, parseStatus(st));
    } catch {
      /* no conference service */
    }
  }

  private setRunning(room: string, jids: string[]) {
    if (jids.length) this.running.set(room, jids);
    else this.running.delete(room);
    this.app.emit();
  }

  // ---------- pushes ----------

  private handle(s: XEl): boolean {
    const c = kid(s, "conference", CONF_NS);
    if (!c) return false;
    const room = bare(s.attrs.from ?? "");
    const cur = this.current;
    for (const ch of kids(c)) {
      if (ch.name === "status") this.setRunning(room, parseStatus(ch));
      if (!cur || cur.room !== room) continue;
      if (ch.name === "ended") {
        // The unit serving this bubble stopped or went silent: the server forgot us.
        this.app.toast("The conference was interrupted — join again to continue");
        this.cleanup(cur);
        break;
      }
      if (ch.name === "roster") this.onRoster(cur, parseRoster(ch));
      else if (ch.name === "slots") cur.slots = parseSlots(ch);
      else if (ch.name === "send-layers") {
        cur.sendLayers = parseSendLayers(ch);
        void this.applyEncodings(cur);
      }
    }
    this.app.emit();
    return true;
  }

  private onRoster(c: Conference, r: Roster) {
    const { joined, left } = rosterDiff(c.roster, r);
    if (Date.now() - c.startedAt > SUPPRESS_TOASTS_MS) {
      for (const p of joined) if (p.id !== c.id) this.app.toast(`${this.name(p)} joined the conference`);
      for (const p of left) if (p.id !== c.id) this.app.toast(`${this.name(p)} left the conference`);
    }
    c.recent = rememberSpeaker(c.recent, r.speaker);
    c.roster = r;
    this.scheduleView();
  }

  name(p: Participant): string {
    return p.jid ? this.app.nameOf(bare(p.jid)) : p.nick;
  }

  // ---------- user actions ----------

  async join(room: string, opts: { video?: boolean } = {}) {
    if (this.current) {
      this.app.toast("You are already in a conference");
      return;
    }
    const c: Conference = {
      room, state: "joining", id: "", pc: null, local: new MediaStream(), mic: null, camera: null, screenTrack: null,
      roster: { speaker: null, participants: [] }, slots: {}, recent: [], mode: "grid",
      dataSaver: localStorage.getItem("iris.dataSaver") === "1", muted: false, cameraOff: false, sharing: false,
      sendLayers: { l: true, m: true, h: true }, streams: new Map(), kinds: new Map(), startedAt: Date.now(), view: null,
      stage: { width: 1280, height: 720 }, relayOnly: localStorage.getItem("iris.relayOnly") === "1",
      heights: {}, timer: undefined, stall: new StallWatch(),
    };
    this.current = c;
    this.app.emit();
    try {
      await this.capture(c, opts.video !== false);
      if (this.current !== c) return;
      await this.connect(c);
      if (this.current !== c) return this.abandon(c);
      c.state = "joined";
      c.startedAt = Date.now();
      c.timer = setInterval(() => void this.pollStats(c), 1000);
      this.app.setInConference(true);
      this.app.emit();
    } catch (e) {
      if (this.current === c) {
        this.app.toast(`Could not join the conference: ${(e as Error).message}`);
        this.cleanup(c);
      }
      this.abandon(c);
    }
  }

  /** The user left while the join was under way: leave on the unit too. */
  private abandon(c: Conference) {
    if (c.id && this.current !== c) this.app.xmpp?.iq(x("iq", { type: "set", to: c.room }, x("leave", { xmlns: CONF_NS }))).catch(() => {});
  }

  leave() {
    const c = this.current;
    if (!c) return;
    if (c.id) this.app.xmpp?.iq(x("iq", { type: "set", to: c.room }, x("leave", { xmlns: CONF_NS }))).catch(() => {});
    this.cleanup(c);
  }

  toggleMute() {
    const c = this.current;
    if (!c) return;
    c.muted = !c.muted;
    if (c.mic) c.mic.enabled = !c.muted;
    this.sendMute(c);
    this.app.emit();
  }

  async toggleCamera() {
    const c = this.current;
    if (!c || !c.pc) return;
    const sender = this.sender(c, "video");
    if (!c.cameraOff) {
      c.cameraOff = true;
      await sender?.replaceTrack(null);
      if (c.camera) {
        c.local.removeTrack(c.camera);
        c.camera.stop();
        c.camera = null;
      }
    } else {
      try {
        const s = await navigator.mediaDevices.getUserMedia({ video: cameraConstraints() });
        c.camera = s.getVideoTracks()[0] ?? null;
      } catch (e) {
        this.app.toast(`Camera unavailable: ${(e as Error).message}`);
        return;
      }
      if (!c.camera) return;
      c.local.addTrack(c.camera);
      c.cameraOff = false;
      await sender?.replaceTrack(c.camera);
    }
    this.sendMute(c);
    this.app.emit();
  }

  /** Screen sharing as its own track (one layer, up to 1080p / 2 Mbit/s), by renegotiation. */
  async toggleShare() {
    const c = this.current;
    if (!c || !c.pc || c.state !== "joined") return;
    if (c.sharing) return this.stopShare(c);
    let track: MediaStreamTrack | undefined;
    try {
      const display = await navigator.mediaDevices.getDisplayMedia({ video: { width: { max: 1920 }, height: { max: 1080 }, frameRate: { max: 15 } }, audio: false });
      track = display.getVideoTracks()[0];
    } catch (e) {
      this.app.toast(`Screen sharing unavailable: ${(e as Error).message}`);
      return;
    }
    if (!track || this.current !== c || !c.pc) return;
    await this.shareTrack(c, track);
  }

  /** Publishes `track` as our screen share (also used by tests with a canvas track). */
  async shareTrack(c: Conference, track: MediaStreamTrack) {
    const pc = c.pc;
    if (!pc) return;
    track.contentHint = "detail";
    track.addEventListener("ended", () => void this.stopShare(c));
    const t = pc.addTransceiver(track, { direction: "sendonly", sendEncodings: [{ maxBitrate: 2_000_000 }] });
    c.kinds.set(t, "screen");
    c.screenTrack = track;
    c.sharing = true;
    this.app.emit();
    try {
      await this.renegotiate(c);
    } catch (e) {
      this.app.toast(`Screen sharing failed: ${(e as Error).message}`);
      await this.stopShare(c);
    }
  }

  private async stopShare(c: Conference) {
    if (!c.sharing || !c.pc) return;
    c.sharing = false;
    c.screenTrack?.stop();
    c.screenTrack = null;
    for (const [t, k] of c.kinds) {
      if (k === "screen" && t.direction === "sendonly") {
        t.stop();
        c.kinds.delete(t);
      }
    }
    this.app.emit();
    if (this.current === c && c.state === "joined") await this.renegotiate(c).catch(() => {});
  }

  setMode(mode: ViewMode) {
    const c = this.current;
    if (!c || c.mode === mode) return;
    c.mode = mode;
    this.sendView(c);
    this.app.emit();
  }

  async setDataSaver(on: boolean) {
    const c = this.current;
    localStorage.setItem("iris.dataSaver", on ? "1" : "0");
    if (!c) return;
    c.dataSaver = on;
    this.sendView(c);
    await this.applyEncodings(c);
    this.app.emit();
  }

  /** The stage (where tiles go) was resized: the tile size the unit must know may change. */
  setStage(width: number, height: number) {
    const c = this.current;
    if (!c) return;
    c.stage = { width, height };
    this.scheduleView();
  }

  /** The layout the UI shows now. */
  layout(c: Conference): Layout {
    const cams: Record<string, string | null> = {};
    for (const [t, k] of c.kinds) if (k === "video" && t.direction === "recvonly" && t.mid !== null) cams[t.mid] = c.slots[t.mid] ?? null;
    const talker = mainFromSlots(c.mode, c.roster, c.id, c.recent, cams, c.heights);
    return arrange(c.mode, c.roster, c.id, talker, this.screenSource(c));
  }

  /** Which camera arrives at which size (to find the talker in thumbnails view). */
  /** Once a second: received frame heights (talker view picks the sharpest) and the one-way
   * media watchdog: inbound RTP bytes that stop growing for 2.5 s while another participant's
   * microphone is on (a muted microphone still sends) restart ICE, as a network change does. */
  private async pollStats(c: Conference) {
    const pc = c.pc;
    if (!pc) return;
    const heights: Record<string, number> = {};
    let bytes = 0;
    try {
      for (const s of (await pc.getStats()).values()) {
        if (s.type !== "inbound-rtp") continue;
        bytes += freshBytes(s);
        if (s.kind === "video" && s.mid) heights[s.mid] = s.frameHeight ?? 0;
      }
    } catch {
      return;
    }
    if (this.current !== c || c.pc !== pc) return;
    const expected = c.roster.participants.some((p) => p.id !== c.id && p.audio && !p.audioMuted);
    if (!expected || c.state !== "joined" || pc.connectionState !== "connected") c.stall.pause();
    else if (c.stall.sample(bytes, Date.now())) {
      console.warn("iris: conference media stalled, restarting ICE");
      void this.restartIce();
    }
    if (c.mode === "grid") return;
    const before = this.layout(c).main;
    c.heights = heights;
    if (this.layout(c).main !== before) this.app.emit();
  }

  /** The participant whose screen we receive, if any. */
  screenSource(c: Conference): string | null {
    for (const [t, k] of c.kinds) {
      if (k !== "screen" || t.direction !== "recvonly" || t.mid === null) continue;
      const id = c.slots[t.mid];
      if (id && c.roster.participants.some((p) => p.id === id && p.screen)) return id;
    }
    return null;
  }

  /** The stream (and its slot) carrying `id`'s camera or screen. */
  streamOf(c: Conference, id: string, kind: "video" | "screen" = "video"): MediaStream | null {
    for (const [t, k] of c.kinds) {
      if (k === kind && t.direction === "recvonly" && t.mid !== null && c.slots[t.mid] === id) return c.streams.get(t.mid) ?? null;
    }
    return null;
  }

  /** Streams of our audio slots (one `<audio>` each). */
  audioStreams(c: Conference): MediaStream[] {
    const out: MediaStream[] = [];
    for (const [t, k] of c.kinds) if (k === "audio" && t.direction === "recvonly" && t.mid !== null) {
      const s = c.streams.get(t.mid);
      if (s) out.push(s);
    }
    return out;
  }

  // ---------- media and negotiation ----------

  private async capture(c: Conference, video: boolean) {
    const got = await captureMedia(video ? cameraConstraints() : false);
    if (got.stream) c.local = got.stream;
    c.mic = got.mic;
    c.camera = got.camera;
    c.cameraOff = !c.camera;
    if (got.notice) this.app.toast(got.notice);
  }

  private async connect(c: Conference) {
    let iceServers: RTCIceServer[] = [];
    try {
      iceServers = await this.app.api.iceServers();
    } catch {
      /* direct only */
    }
    const pc = new RTCPeerConnection({ iceServers, iceTransportPolicy: c.relayOnly ? "relay" : "all", bundlePolicy: "max-bundle", rtcpMuxPolicy: "require" });
    c.pc = pc;
    c.kinds.set(pc.addTransceiver(c.mic ?? "audio", { direction: "sendonly", streams: [c.local] }), "audio");
    const cam = pc.addTransceiver(c.camera ?? "video", { direction: "sendonly", streams: [c.local], sendEncodings: sendEncodings(c.dataSaver) });
    c.kinds.set(cam, "video");
    const p = cam.sender.getParameters();
    // Simulcast already offers smaller sizes: keep each layer's resolution, drop frames instead.
    p.degradationPreference = "maintain-resolution";
    await cam.sender.setParameters(p).catch(() => {});
    for (const [kind, n] of Object.entries(SLOTS) as [SlotKind, number][]) {
      for (let i = 0; i < n; i++) c.kinds.set(pc.addTransceiver(kind === "audio" ? "audio" : "video", { direction: "recvonly" }), kind);
    }
    pc.onconnectionstatechange = () => {
      if (this.current !== c) return;
      if (pc.connectionState === "failed") void this.restartIce();
      // As in 1:1 calls: a path that stays disconnected for 2 s is restarted, not left to the
      // ~30 s until the browser declares it failed.
      clearTimeout(c.disconnectTimer);
      if (pc.connectionState === "disconnected") {
        c.disconnectTimer = setTimeout(() => c.pc === pc && pc.connectionState === "disconnected" && void this.restartIce(), 2000);
      }
      this.app.emit();
    };
    c.view = this.viewNow(c);
    const offer = await this.offer(c);
    const r = await this.app.xmpp?.iq(
      x("iq", { type: "set", to: c.room }, x("join", { xmlns: CONF_NS, nick: this.app.user?.display_name?.slice(0, 64) || this.app.nick }, offer, viewElement(c.view))),
    );
    const joined = kid(r, "joined", CONF_NS);
    if (!joined) throw new Error("no answer from the conference unit");
    c.id = joined.attrs.participant ?? "";
    await pc.setRemoteDescription({ type: "answer", sdp: text(kid(joined, "sdp", CONF_NS)) });
    this.bindStreams(c);
    await this.applyEncodings(c);
    // Also a fresh roster push, in case the first one raced our join.
    this.sendMute(c);
  }

  /** An offer with every m-line's role (`<track mid kind dir/>`), ICE fully gathered (no trickle). */
  private async offer(c: Conference, iceRestart = false): Promise<XEl[]> {
    const pc = c.pc;
    if (!pc) throw new Error("closed");
    await pc.setLocalDescription(await pc.createOffer({ iceRestart }));
    await gathered(pc);
    const tracks: XEl[] = [];
    for (const t of pc.getTransceivers()) {
      const kind = c.kinds.get(t);
      if (!kind || t.mid === null || t.direction === "stopped" || t.currentDirection === "stopped") continue;
      tracks.push(x("track", { xmlns: CONF_NS, mid: t.mid, kind, dir: t.direction === "sendonly" ? "send" : "recv" }));
    }
    return [x("sdp", { xmlns: CONF_NS }, pc.localDescription?.sdp ?? ""), ...tracks];
  }

  /** A new offer in `<update/>` (screen share, ICE restart); one at a time. */
  private renegotiate(c: Conference, iceRestart = false): Promise<void> {
    const run = async () => {
      if (!c.pc || this.current !== c) return;
      const body = await this.offer(c, iceRestart);
      const r = await this.app.xmpp?.iq(x("iq", { type: "set", to: c.room }, x("update", { xmlns: CONF_NS }, body)));
      const sdp = text(kid(kid(r, "updated", CONF_NS), "sdp", CONF_NS));
      if (!sdp) throw new Error("no answer from the conference unit");
      await c.pc.setRemoteDescription({ type: "answer", sdp });
      this.bindStreams(c);
      await this.applyEncodings(c);
    };
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => {});
    return p;
  }

  private async restartIce() {
    const c = this.current;
    if (!c || c.state !== "joined" || !c.pc) return;
    // The `<update/>` goes over XMPP, whose socket may have died with the old address.
    this.app.xmpp?.probe();
    await this.renegotiate(c, true).catch(() => {});
  }

  private bindStreams(c: Conference) {
    for (const [t, k] of c.kinds) {
      if (t.direction !== "recvonly" || t.mid === null || c.streams.has(t.mid)) continue;
      const track = t.receiver.track;
      c.streams.set(t.mid, new MediaStream([track]));
      if (k !== "audio") {
        track.addEventListener("mute", () => this.app.emit());
        track.addEventListener("unmute", () => this.app.emit());
      }
    }
  }

  /** Pauses the layers nobody consumes; data-saver sends the top layer at 480p. */
  private async applyEncodings(c: Conference) {
    const sender = this.sender(c, "video");
    if (!sender) return;
    const p = sender.getParameters();
    if (!p.encodings?.length) return;
    const wanted = sendEncodings(c.dataSaver);
    for (const e of p.encodings) {
      const w = wanted.find((x) => x.rid === e.rid);
      if (!w || !e.rid) continue;
      e.active = c.sendLayers[e.rid as Rid] ?? true;
      e.maxBitrate = w.maxBitrate;
      e.scaleResolutionDownBy = w.scaleResolutionDownBy;
    }
    await sender.setParameters(p).catch(() => {});
  }

  private sender(c: Conference, kind: SlotKind): RTCRtpSender | undefined {
    for (const [t, k] of c.kinds) if (k === kind && t.direction === "sendonly") return t.sender;
    return undefined;
  }

  private sendMute(c: Conference) {
    if (!c.id) return;
    this.app.xmpp?.iq(x("iq", { type: "set", to: c.room }, x("mute", { xmlns: CONF_NS, audio: String(c.muted || !c.mic), video: String(c.cameraOff) }))).catch(() => {});
  }

  private viewNow(c: Conference): ViewRequest {
    const l = this.layout(c);
    const tiles = l.tiles.length;
    return viewFor(c.mode, tiles, c.stage.width, c.stage.height, c.dataSaver, !!l.screen);
  }

  /** Tells the unit the view soon (coalescing resizes and roster changes). */
  private scheduleView() {
    clearTimeout(this.viewTimer);
    this.viewTimer = setTimeout(() => this.current && this.sendView(this.current, false), 200);
  }

  private sendView(c: Conference, force = true) {
    const v = this.viewNow(c);
    if (!force && !viewChanged(c.view, v)) return;
    c.view = v;
    if (c.id) this.app.xmpp?.iq(x("iq", { type: "set", to: c.room }, viewElement(v))).catch(() => {});
  }

  private cleanup(c: Conference) {
    clearTimeout(this.viewTimer);
    clearInterval(c.timer);
    clearTimeout(c.disconnectTimer);
    c.state = "ended";
    c.local.getTracks().forEach((t) => t.stop());
    c.camera?.stop();
    c.screenTrack?.stop();
    c.pc?.close();
    c.pc = null;
    if (this.current === c) this.current = null;
    this.app.setInConference(false);
    void this.refresh(c.room);
    this.app.emit();
  }
}

function cameraConstraints(): MediaTrackConstraints {
  const cam = localStorage.getItem("iris.videoinput");
  return { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 24, max: 30 }, ...(cam ? { deviceId: cam } : {}) };
}

/** Waits for ICE gathering to finish (the unit takes no trickled candidates), at most 4 s. */
function gathered(pc: RTCPeerConnection): Promise<void> {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      resolve();
    };
    const check = () => pc.iceGatheringState === "complete" && done();
    const timer = setTimeout(done, 4000);
    pc.addEventListener("icegatheringstatechange", check);
  });
}
