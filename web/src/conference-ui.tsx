//! The conference screen (Preact): talker, thumbnails and grid layouts measured so the unit
//! gets the real tile size, a shared screen as the main tile, speaker highlight, participant
//! list with mute states, controls (mic, camera, screen, view, data saver, leave); and the
//! "Join conference" entry points of a bubble. State lives in Conferences (conference.ts).
import { useEffect, useLayoutEffect, useReducer, useRef, useState } from "preact/hooks";
import type { App } from "./app";
import { Conferences, Conference, Participant, ViewMode, gridShape, participantList, THUMB_HEIGHT, MAX_GRID } from "./conference";
import { Avatar, Icon, Video } from "./ui";
import { clock } from "./model";

const ConfIcon = {
  grid: <svg viewBox="0 0 24 24" aria-hidden="true"><path d="M3 3h8v8H3zm10 0h8v8h-8zM3 13h8v8H3zm10 0h8v8h-8z" /></svg>,
  talker: <svg viewBox="0 0 24 24" aria-hidden="true"><path d="M3 4h18v16H3zm2 2v12h14V6z" /><circle cx="12" cy="11" r="2.6" /><path d="M7.5 17c.8-2.2 2.5-3.3 4.5-3.3s3.7 1.1 4.5 3.3z" /></svg>,
  thumbs: <svg viewBox="0 0 24 24" aria-hidden="true"><path d="M3 3h18v12H3zm0 14h5v4H3zm6.5 0h5v4h-5zm6.5 0h5v4h-5z" /></svg>,
  people: <svg viewBox="0 0 24 24" aria-hidden="true"><path d="M9 12a4 4 0 1 0 0-8 4 4 0 0 0 0 8zm7 0a3 3 0 1 0 0-6 3 3 0 0 0 0 6zM9 14c-3.3 0-7 1.6-7 4v2h14v-2c0-2.4-3.7-4-7-4zm7 0c-.5 0-1 0-1.5.1 1.5.9 2.5 2.2 2.5 3.9v2h5v-2c0-2.3-3.3-4-6-4z" /></svg>,
  leaf: <svg viewBox="0 0 24 24" aria-hidden="true"><path d="M20 3c-8 0-14 4-14 11 0 1.6.4 3 1 4.2L4 21.5 5.5 23l3.2-3.2A7.8 7.8 0 0 0 13 21c7 0 9-8 7-18zm-7 15.5c-.9 0-1.8-.2-2.6-.6L15 13.4l-1.4-1.4-4.6 4.6c-.3-.8-.5-1.7-.5-2.6 0-5 4-8.4 9.9-8.9.8 6.5-1.2 13.4-5.4 13.4z" /></svg>,
  camOff: <svg viewBox="0 0 24 24" aria-hidden="true"><path d="M21 6.5l-4 4V7a1 1 0 0 0-1-1H9.8L21 17.2zM3.3 2 2 3.3 4.7 6H4a1 1 0 0 0-1 1v10a1 1 0 0 0 1 1h12c.2 0 .4-.1.6-.2l3.1 3.2 1.3-1.3z" /></svg>,
};

const VIEWS: { mode: ViewMode; label: string; icon: preact.JSX.Element }[] = [
  { mode: "talker", label: "Active talker", icon: ConfIcon.talker },
  { mode: "thumbnails", label: "Talker and thumbnails", icon: ConfIcon.thumbs },
  { mode: "grid", label: "Grid", icon: ConfIcon.grid },
];

/** The bubble header's button: start a conference, or join the running one (with its count). */
export function JoinConferenceButton({ confs, room, disabled }: { confs: Conferences; room: string; disabled: boolean }) {
  const n = confs.count(room);
  const inThis = confs.current?.room === room;
  return (
    <button
      class={`small conf-join${n ? " live" : ""}`}
      disabled={disabled || !!confs.current}
      aria-label={n ? `Join conference (${n} in it)` : "Start conference"}
      title={inThis ? "You are in this conference" : n ? "Join the conference" : "Start a conference in this bubble"}
      onClick={() => void confs.join(room)}
    >
      {Icon.video}
      {n ? <>Join <span class="conf-count">{n}</span></> : "Start conference"}
    </button>
  );
}

/** A strip above a bubble's messages while its conference runs. */
export function ConferenceBanner({ app, confs, room, disabled }: { app: App; confs: Conferences; room: string; disabled: boolean }) {
  const jids = confs.running.get(room) ?? [];
  if (!jids.length || confs.current?.room === room) return null;
  const names = [...new Set(jids)].map((j) => app.nameOf(j));
  return (
    <div class="conf-banner" role="status">
      <span class="live-dot" aria-hidden="true" />
      <span>
        <strong>Conference in progress</strong> · {jids.length} {jids.length === 1 ? "participant" : "participants"}: {names.join(", ")}
      </span>
      <button class="small primary" disabled={disabled || !!confs.current} onClick={() => void confs.join(room)}>Join</button>
    </div>
  );
}

function useStageSize(confs: Conferences) {
  const ref = useRef<HTMLDivElement>(null);
  const [size, setSize] = useState({ width: 0, height: 0 });
  useLayoutEffect(() => {
    const el = ref.current;
    if (!el) return;
    const measure = () => {
      const r = el.getBoundingClientRect();
      setSize((s) => (s.width === r.width && s.height === r.height ? s : { width: r.width, height: r.height }));
    };
    measure();
    const ro = new ResizeObserver(measure);
    ro.observe(el);
    return () => ro.disconnect();
  }, []);
  useEffect(() => {
    if (size.width > 0) confs.setStage(size.width, size.height);
  }, [size.width, size.height]);
  return { ref, size };
}

function useCssVars(vars: Record<string, string>) {
  const ref = useRef<HTMLDivElement>(null);
  useLayoutEffect(() => {
    for (const [k, v] of Object.entries(vars)) ref.current?.style.setProperty(k, v);
  });
  return ref;
}

export function ConferenceView({ app, confs, conf }: { app: App; confs: Conferences; conf: Conference }) {
  const [, tick] = useReducer((n: number) => n + 1, 0);
  const [people, setPeople] = useState(typeof window !== "undefined" && window.innerWidth > 1100);
  useEffect(() => {
    const t = setInterval(() => tick(0), 1000);
    return () => clearInterval(t);
  }, []);
  const layout = confs.layout(conf);
  const byId = new Map(conf.roster.participants.map((p) => [p.id, p]));
  const bubble = app.conversations.get(conf.room)?.name ?? conf.room.split("@")[0];
  // A shared screen or the talker's thumbnails put the tiles in a strip; talker view shows us in a
  // corner; the grid fills the stage.
  const strip = !!layout.screen || conf.mode === "thumbnails";
  const pip = !strip && conf.mode === "talker";
  const { ref: stageRef, size } = useStageSize(confs);
  // The grid's shape comes from the same function that sizes the view request.
  const shape = gridShape(Math.min(layout.tiles.length, MAX_GRID + 1), size.width, size.height);
  const gridRef = useCssVars({ "--cols": String(shape.cols), "--tile-w": `${shape.tileWidth}px`, "--tile-h": `${shape.tileHeight}px`, "--thumb-h": `${THUMB_HEIGHT}px` });
  const count = conf.roster.participants.length;
  const status = conf.state === "joining" ? "Joining…" : conf.pc?.connectionState === "connected" ? clock((Date.now() - conf.startedAt) / 1000) : conf.pc?.connectionState === "failed" ? "Reconnecting…" : "Connecting…";
  const tile = (id: string, me: boolean, kind: "main" | "tile" | "screen" | "pip") => (
    <TileView key={`${kind}-${id}`} app={app} confs={confs} conf={conf} p={byId.get(id)} id={id} me={me} kind={kind} />
  );
  return (
    <section class={`conf mode-${conf.mode}`} aria-label={`Conference in ${bubble}`}>
      <header class="conf-head">
        <span class="live-dot" aria-hidden="true" />
        <strong>{bubble}</strong>
        <span class="call-status" aria-live="polite">{status}</span>
        <span class="pill">{count} {count === 1 ? "participant" : "participants"}</span>
        {conf.dataSaver && <span class="pill">Data saver</span>}
        {conf.relayOnly && <span class="pill">Via relay</span>}
      </header>
      <div class="conf-body">
        <div class={`conf-stage${strip ? " has-strip" : ""}`}>
          <div class="conf-main" ref={stageRef}>
            {layout.screen ? tile(layout.screen, false, "screen") : layout.main ? tile(layout.main, false, "main") : null}
            {pip && layout.tiles.map((t) => tile(t.id, t.me, "pip"))}
            {!strip && !pip && (
              <div class="conf-grid" ref={gridRef} role="list" aria-label="Participants' videos">
                {layout.tiles.map((t) => tile(t.id, t.me, "tile"))}
              </div>
            )}
            {count <= 1 && <p class="conf-alone">{conf.state === "joining" ? "Joining…" : "Waiting for others to join…"}</p>}
          </div>
          {strip && (
            <div class="conf-strip" ref={gridRef} role="list" aria-label="Thumbnails">
              {layout.tiles.map((t) => tile(t.id, t.me, "tile"))}
            </div>
          )}
        </div>
        {people && (
          <aside class="conf-people" aria-label="Participants">
            <h3>Participants <span class="muted">{count}</span></h3>
            <ul>
              {participantList(conf.roster, conf.id, (p) => confs.name(p)).map((e) => (
                <li key={e.id} class={e.speaking ? "speaking" : ""} data-participant={e.id}>
                  <Avatar name={e.name} size={30} />
                  <span class="who">{e.name}{e.me && <span class="muted"> (you)</span>}</span>
                  {e.screen && <span class="state" title="Sharing the screen" aria-label="sharing the screen">{Icon.screen}</span>}
                  <span class={`state${e.videoOff ? " off" : ""}`} title={e.videoOff ? "Camera off" : "Camera on"} aria-label={e.videoOff ? "camera off" : "camera on"}>{e.videoOff ? ConfIcon.camOff : Icon.video}</span>
                  <span class={`state${e.audioMuted ? " off" : ""}`} title={e.audioMuted ? "Muted" : "Microphone on"} aria-label={e.audioMuted ? "muted" : "microphone on"}>{e.audioMuted ? Icon.micOff : Icon.mic}</span>
                </li>
              ))}
            </ul>
          </aside>
        )}
      </div>
      <div class="controls" role="toolbar" aria-label="Conference controls">
        <button class={`round${conf.muted ? " off" : ""}`} aria-pressed={conf.muted} aria-label={conf.muted ? "Unmute" : "Mute"} title={conf.muted ? "Unmute" : "Mute"} disabled={!conf.mic} onClick={() => confs.toggleMute()}>{conf.muted ? Icon.micOff : Icon.mic}</button>
        <button class={`round${conf.cameraOff ? " off" : ""}`} aria-pressed={!conf.cameraOff} aria-label={conf.cameraOff ? "Turn camera on" : "Turn camera off"} title="Camera" disabled={!conf.pc} onClick={() => void confs.toggleCamera()}>{conf.cameraOff ? ConfIcon.camOff : Icon.video}</button>
        <button class={`round${conf.sharing ? " on" : ""}`} aria-pressed={conf.sharing} aria-label={conf.sharing ? "Stop sharing" : "Share screen"} title="Share screen" disabled={conf.state !== "joined"} onClick={() => void confs.toggleShare()}>{Icon.screen}</button>
        <div class="segmented" role="group" aria-label="Layout">
          {VIEWS.map((v) => (
            <button key={v.mode} class={`round${conf.mode === v.mode ? " on" : ""}`} aria-pressed={conf.mode === v.mode} aria-label={v.label} title={v.label} onClick={() => confs.setMode(v.mode)}>{v.icon}</button>
          ))}
        </div>
        <button class={`round${people ? " on" : ""}`} aria-pressed={people} aria-label="Participants" title="Participants" onClick={() => setPeople(!people)}>{ConfIcon.people}</button>
        <button class={`round${conf.dataSaver ? " on" : ""}`} aria-pressed={conf.dataSaver} aria-label="Data saver" title="Data saver: 480p up, 500 kbit/s down" onClick={() => void confs.setDataSaver(!conf.dataSaver)}>{ConfIcon.leaf}</button>
        <button class="round danger" aria-label="Leave conference" title="Leave" onClick={() => confs.leave()}>{Icon.hang}</button>
      </div>
      {confs.audioStreams(conf).map((s) => (
        <Audio key={s.id} stream={s} />
      ))}
    </section>
  );
}

function Audio({ stream }: { stream: MediaStream }) {
  const ref = useRef<HTMLAudioElement>(null);
  useEffect(() => {
    const a = ref.current;
    if (a && a.srcObject !== stream) a.srcObject = stream;
    void a?.play().catch(() => {});
  }, [stream]);
  return <audio ref={ref} autoPlay />;
}

function TileView({ app, confs, conf, p, id, me, kind }: { app: App; confs: Conferences; conf: Conference; p: Participant | undefined; id: string; me: boolean; kind: "main" | "tile" | "screen" | "pip" }) {
  const name = me ? app.user?.display_name || app.nick : p ? confs.name(p) : "…";
  const stream = me ? conf.local : confs.streamOf(conf, id, kind === "screen" ? "screen" : "video");
  const track = stream?.getVideoTracks()[0];
  const camera = me ? !conf.cameraOff : kind === "screen" || (!!p && p.video && !p.videoMuted);
  const live = !!track && !track.muted && track.readyState === "live" && camera;
  const muted = me ? conf.muted : !!p && (!p.audio || p.audioMuted);
  const speaking = !!p && conf.roster.speaker === p.id && kind !== "screen";
  return (
    <div class={`tile ${kind}${speaking ? " speaking" : ""}${me ? " me" : ""}${live ? " live" : ""}`} role="listitem" data-participant={id} aria-label={kind === "screen" ? `${name}'s screen` : name}>
      <Video stream={live ? stream : null} muted label={kind === "screen" ? `${name}'s screen` : `${name}'s video`} class={me ? "mirror" : ""} />
      {!live && (
        <div class="tile-avatar">
          <Avatar name={name} size={kind === "main" || kind === "screen" ? 96 : kind === "pip" ? 40 : 56} />
        </div>
      )}
      <div class="tile-name">
        {muted && kind !== "screen" && <span class="mic-off" aria-label="muted">{Icon.micOff}</span>}
        {kind === "screen" ? `${name} is sharing` : name}
        {me && " (you)"}
      </div>
    </div>
  );
}
