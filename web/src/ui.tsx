//! The user interface (Preact): login, sidebar (me, status, search, invitations, bubbles,
//! contacts), conversation (history, markers, typing, edit/delete, emoji), call screen and
//! incoming-call dialog, settings; the conference screen is in conference-ui.tsx. State lives in
//! App/Calls/Conferences; components only render and call them.
import { useEffect, useLayoutEffect, useMemo, useReducer, useRef, useState } from "preact/hooks";
import type { JSX } from "preact";
import { App, Contact, Show, SHOW_LABEL, bestPresence, Presence } from "./app";
import { Calls, Call } from "./call";
import { Conferences } from "./conference";
import { ConferenceView, JoinConferenceButton, ConferenceBanner } from "./conference-ui";
import { Conversation, Msg, clock, linkify } from "./model";
import type { User } from "./api";

function useApp(app: App) {
  const [, bump] = useReducer((n: number) => n + 1, 0);
  useEffect(() => {
    const off = app.subscribe(() => bump(0));
    return () => void off();
  }, [app]);
}

const initials = (name: string) =>
  name
    .replace(/@.*/, "")
    .split(/[\s._-]+/)
    .filter(Boolean)
    .slice(0, 2)
    .map((w) => w[0]?.toUpperCase())
    .join("") || "?";

function hue(s: string) {
  let h = 0;
  for (const ch of s) h = (h * 31 + ch.charCodeAt(0)) % 360;
  return h;
}

export function Avatar({ name, src, presence, size = 40, group, live }: { name: string; src?: string; presence?: Presence; size?: number; group?: boolean; live?: boolean }) {
  const dot = presence ? (presence.phone || presence.conference ? "phone" : presence.online ? presence.show : "offline") : live ? "live" : null;
  const ref = useRef<HTMLSpanElement>(null);
  useLayoutEffect(() => {
    ref.current?.style.setProperty("--size", `${size}px`);
    ref.current?.style.setProperty("--hue", String(hue(name)));
  }, [size, name]);
  return (
    <span class={`avatar${group ? " group" : ""}`} ref={ref} aria-hidden="true">
      {src ? <img src={src} alt="" /> : <span class="initials">{group ? "#" : initials(name)}</span>}
      {dot && <span class={`dot ${dot}`} />}
    </span>
  );
}

function presenceText(p: Presence) {
  if (!p.online) return "Offline";
  if (p.phone) return "On the phone";
  if (p.conference) return "In a conference";
  return p.status || SHOW_LABEL[p.show];
}

export const Icon = {
  phone: <svg viewBox="0 0 24 24" aria-hidden="true"><path d="M6.6 10.8a15.1 15.1 0 0 0 6.6 6.6l2.2-2.2a1 1 0 0 1 1-.25 11.4 11.4 0 0 0 3.6.57 1 1 0 0 1 1 1V20a1 1 0 0 1-1 1A17 17 0 0 1 3 4a1 1 0 0 1 1-1h3.5a1 1 0 0 1 1 1c0 1.25.2 2.45.57 3.57a1 1 0 0 1-.25 1z" /></svg>,
  video: <svg viewBox="0 0 24 24" aria-hidden="true"><path d="M17 10.5V7a1 1 0 0 0-1-1H4a1 1 0 0 0-1 1v10a1 1 0 0 0 1 1h12a1 1 0 0 0 1-1v-3.5l4 4v-11z" /></svg>,
  mic: <svg viewBox="0 0 24 24" aria-hidden="true"><path d="M12 14a3 3 0 0 0 3-3V5a3 3 0 0 0-6 0v6a3 3 0 0 0 3 3zm5-3a5 5 0 0 1-10 0H5a7 7 0 0 0 6 6.9V21h2v-3.1A7 7 0 0 0 19 11z" /></svg>,
  micOff: <svg viewBox="0 0 24 24" aria-hidden="true"><path d="M19 11h-2c0 .8-.2 1.5-.5 2.2l1.5 1.5A7 7 0 0 0 19 11zm-4 .2V5a3 3 0 0 0-6-.2zM4.3 3 3 4.3l6 6V11a3 3 0 0 0 4.5 2.6l1.6 1.6A5 5 0 0 1 7 11H5a7 7 0 0 0 6 6.9V21h2v-3.1a7 7 0 0 0 3.5-1.4l3.2 3.2 1.3-1.3z" /></svg>,
  screen: <svg viewBox="0 0 24 24" aria-hidden="true"><path d="M20 3H4a2 2 0 0 0-2 2v11a2 2 0 0 0 2 2h6v2H8v2h8v-2h-2v-2h6a2 2 0 0 0 2-2V5a2 2 0 0 0-2-2zm0 13H4V5h16z" /></svg>,
  hang: <svg viewBox="0 0 24 24" aria-hidden="true"><path d="M12 9c-1.6 0-3.15.25-4.6.72v3.1a1 1 0 0 1-.56.9 11.5 11.5 0 0 0-2.66 1.85 1 1 0 0 1-1.41 0L.29 13.08a1 1 0 0 1 0-1.41A16.9 16.9 0 0 1 12 7a16.9 16.9 0 0 1 11.71 4.67 1 1 0 0 1 0 1.41l-2.48 2.49a1 1 0 0 1-1.41 0 11.3 11.3 0 0 0-2.67-1.85 1 1 0 0 1-.56-.9v-3.1A15 15 0 0 0 12 9z" /></svg>,
  send: <svg viewBox="0 0 24 24" aria-hidden="true"><path d="M2 21l21-9L2 3v7l15 2-15 2z" /></svg>,
  back: <svg viewBox="0 0 24 24" aria-hidden="true"><path d="M20 11H7.8l5.6-5.6L12 4l-8 8 8 8 1.4-1.4L7.8 13H20z" /></svg>,
  plus: <svg viewBox="0 0 24 24" aria-hidden="true"><path d="M19 13h-6v6h-2v-6H5v-2h6V5h2v6h6z" /></svg>,
  gear: <svg viewBox="0 0 24 24" aria-hidden="true"><path d="M19.4 13a7.5 7.5 0 0 0 0-2l2.1-1.6-2-3.5-2.5 1a7.3 7.3 0 0 0-1.7-1L15 3h-4l-.4 2.9a7.3 7.3 0 0 0-1.7 1l-2.5-1-2 3.5L6.6 11a7.5 7.5 0 0 0 0 2l-2.1 1.6 2 3.5 2.5-1c.5.4 1.1.7 1.7 1L11 21h4l.4-2.9c.6-.3 1.2-.6 1.7-1l2.5 1 2-3.5zM13 15.5a3.5 3.5 0 1 1 0-7 3.5 3.5 0 0 1 0 7z" /></svg>,
  smile: <svg viewBox="0 0 24 24" aria-hidden="true"><path d="M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zm-3.5 7a1.5 1.5 0 1 1 0 3 1.5 1.5 0 0 1 0-3zm7 0a1.5 1.5 0 1 1 0 3 1.5 1.5 0 0 1 0-3zM12 18a5.5 5.5 0 0 1-5-3.3h10A5.5 5.5 0 0 1 12 18z" /></svg>,
};

export function Root({ app, calls, confs }: { app: App; calls: Calls; confs: Conferences }) {
  useApp(app);
  if (!app.user) return <Login app={app} />;
  return <Shell app={app} calls={calls} confs={confs} />;
}

function Login({ app }: { app: App }) {
  const [login, setLogin] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError("");
    try {
      await app.login(login.trim(), password);
      if (typeof Notification !== "undefined" && Notification.permission === "default") void Notification.requestPermission().catch(() => {});
    } catch (err) {
      setError((err as Error).message || "Login failed");
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="login">
      <form class="card" onSubmit={submit} aria-labelledby="login-title">
        <div class="brand">
          <img src="/favicon.svg" alt="" width={48} height={48} />
          <h1 id="login-title">Iris</h1>
        </div>
        <p class="muted">Chat, bubbles and calls with your team.</p>
        <label>
          Login
          <input name="login" autoComplete="username" placeholder="you@company" value={login} onInput={(e) => setLogin(e.currentTarget.value)} required autoFocus />
        </label>
        <label>
          Password
          <input name="password" type="password" autoComplete="current-password" value={password} onInput={(e) => setPassword(e.currentTarget.value)} required />
        </label>
        {error && <p class="error" role="alert">{error}</p>}
        <button class="primary" type="submit" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
    </main>
  );
}

function Shell({ app, calls, confs }: { app: App; calls: Calls; confs: Conferences }) {
  const [dialog, setDialog] = useState<"" | "bubble" | "settings">("");
  const call = calls.current;
  return (
    <div class={`shell${app.active ? " has-active" : ""}`}>
      <Sidebar app={app} confs={confs} onNewBubble={() => setDialog("bubble")} onSettings={() => setDialog("settings")} />
      <main class="pane" aria-live="polite">
        {app.status !== "online" && (
          <div class={`banner ${app.status}`} role="status">
            {app.status === "reconnecting" ? "Connection lost — reconnecting…" : app.status === "connecting" ? "Connecting…" : "Offline"}
          </div>
        )}
        {app.active ? <ConversationView key={app.active} app={app} calls={calls} confs={confs} conv={app.conversation(app.active)} /> : <Welcome app={app} />}
      </main>
      {call && call.state === "incoming" && <IncomingCall app={app} calls={calls} call={call} />}
      {call && call.state !== "incoming" && <CallView app={app} calls={calls} call={call} />}
      {confs.current && <ConferenceView app={app} confs={confs} conf={confs.current} />}
      {dialog === "bubble" && <NewBubble app={app} onClose={() => setDialog("")} />}
      {dialog === "settings" && <Settings app={app} calls={calls} onClose={() => setDialog("")} />}
      <div class="toasts" role="status" aria-live="polite">
        {app.toasts.map((t) => (
          <div class="toast" key={t.id}>{t.text}</div>
        ))}
      </div>
    </div>
  );
}

function Welcome({ app }: { app: App }) {
  return (
    <section class="welcome">
      <img src="/favicon.svg" alt="" width={72} height={72} />
      <h2>Welcome, {app.user?.display_name || app.nick}</h2>
      <p class="muted">Pick a contact or a bubble to start talking. Press <kbd>/</kbd> to search, <kbd>Alt</kbd>+<kbd>↑</kbd>/<kbd>↓</kbd> to switch conversations.</p>
    </section>
  );
}

function StatusPicker({ app }: { app: App }) {
  const [text, setText] = useState(app.myStatus);
  return (
    <div class="status-picker">
      <label class="sr-only" for="my-show">My availability</label>
      <select id="my-show" aria-label="My availability" value={app.myShow} onChange={(e) => app.setMyPresence(e.currentTarget.value as Show, text)}>
        {(Object.keys(SHOW_LABEL) as Show[]).map((s) => (
          <option value={s} key={s}>{SHOW_LABEL[s]}</option>
        ))}
      </select>
      <input
        aria-label="Status message"
        placeholder="What's your status?"
        value={text}
        maxLength={140}
        onInput={(e) => setText(e.currentTarget.value)}
        onKeyDown={(e) => e.key === "Enter" && app.setMyPresence(app.myShow, text)}
        onBlur={() => text !== app.myStatus && app.setMyPresence(app.myShow, text)}
      />
    </div>
  );
}

function Sidebar({ app, confs, onNewBubble, onSettings }: { app: App; confs: Conferences; onNewBubble: () => void; onSettings: () => void }) {
  const [q, setQ] = useState("");
  const [results, setResults] = useState<User[]>([]);
  const search = useRef<HTMLInputElement>(null);
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key === "/" && !(e.target instanceof HTMLInputElement || e.target instanceof HTMLTextAreaElement)) {
        e.preventDefault();
        search.current?.focus();
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);
  useEffect(() => {
    if (!q.trim()) {
      setResults([]);
      return;
    }
    const t = setTimeout(() => {
      app.api.directory(q.trim()).then(setResults, () => setResults([]));
    }, 200);
    return () => clearTimeout(t);
  }, [q]);
  const contacts = [...app.contacts.values()];
  const invitations = contacts.filter((c) => c.incoming);
  const roster = contacts
    .filter((c) => !c.incoming || c.subscription === "both")
    .sort((a, b) => Number(bestPresence(b).online) - Number(bestPresence(a).online) || a.name.localeCompare(b.name));
  const bubbles = [...app.conversations.values()].filter((c) => c.kind === "groupchat");
  const me = app.user;
  // Alt+↑ / Alt+↓ move to the previous / next conversation in the sidebar's order.
  const order: [string, Conversation["kind"]][] = [...bubbles.map((b) => [b.jid, "groupchat"] as [string, Conversation["kind"]]), ...roster.map((c) => [c.jid, "chat"] as [string, Conversation["kind"]])];
  const orderRef = useRef(order);
  orderRef.current = order;
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (!e.altKey || (e.key !== "ArrowUp" && e.key !== "ArrowDown")) return;
      const list = orderRef.current;
      if (list.length === 0) return;
      e.preventDefault();
      const i = list.findIndex(([j]) => j === app.active);
      const next = list[(i + (e.key === "ArrowDown" ? 1 : list.length - 1) + (i < 0 && e.key === "ArrowUp" ? 1 : 0)) % list.length];
      if (next) app.open(next[0], next[1]);
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);
  return (
    <aside class="sidebar" aria-label="Contacts and bubbles">
      <header class="me">
        <Avatar name={me?.display_name || app.me} src={app.myAvatar} presence={{ online: app.status === "online", show: app.inCall || app.inConference ? "dnd" : app.myShow, status: "", phone: app.inCall, conference: app.inConference }} />
        <div class="who">
          <strong>{me?.display_name || app.me}</strong>
          <span class="muted small">{app.inCall ? "On the phone" : app.inConference ? "In a conference" : app.myStatus || SHOW_LABEL[app.myShow]}</span>
        </div>
        <button class="icon" aria-label="Settings" title="Settings" onClick={onSettings}>{Icon.gear}</button>
      </header>
      <StatusPicker app={app} />
      <div class="search">
        <input ref={search} type="search" aria-label="Search the directory" placeholder="Search people  ( / )" value={q} onInput={(e) => setQ(e.currentTarget.value)} />
      </div>
      <nav class="lists">
        {q.trim() && (
          <section aria-label="Directory results">
            <h2>Directory</h2>
            {results.length === 0 && <p class="muted small pad">No one found.</p>}
            <ul>
              {results.map((u) => {
                const c = app.contacts.get(u.login);
                const known = c && (c.subscription === "both" || c.ask);
                return (
                  <li key={u.id} class="row">
                    <Avatar name={u.display_name || u.login} size={32} />
                    <div class="who">
                      <strong>{u.display_name || u.login}</strong>
                      <span class="muted small">{u.login}</span>
                    </div>
                    {u.login === app.me ? (
                      <span class="muted small">You</span>
                    ) : known ? (
                      <button class="small" onClick={() => { app.open(u.login); setQ(""); }}>Message</button>
                    ) : (
                      <button class="small primary" aria-label={`Add ${u.display_name || u.login}`} onClick={() => app.inviteContact(u.login)}>Add</button>
                    )}
                  </li>
                );
              })}
            </ul>
          </section>
        )}
        {invitations.length > 0 && (
          <section aria-label="Invitations">
            <h2>Invitations</h2>
            <ul>
              {invitations.map((c) => (
                <li key={c.jid} class="row invite">
                  <Avatar name={c.name} src={c.avatar} size={32} />
                  <div class="who">
                    <strong>{c.name}</strong>
                    <span class="muted small">wants to connect</span>
                  </div>
                  <button class="small primary" aria-label={`Accept ${c.name}`} onClick={() => app.acceptContact(c.jid)}>Accept</button>
                  <button class="small" aria-label={`Decline ${c.name}`} onClick={() => app.declineContact(c.jid)}>Decline</button>
                </li>
              ))}
            </ul>
          </section>
        )}
        <section aria-label="Bubbles">
          <h2>
            Bubbles
            <button class="icon small" aria-label="New bubble" title="New bubble" onClick={onNewBubble}>{Icon.plus}</button>
          </h2>
          {bubbles.length === 0 && <p class="muted small pad">No bubbles yet.</p>}
          <ul>
            {bubbles.map((b) => {
              const inConf = confs.count(b.jid);
              return (
              <li key={b.jid}>
                <button class={`row link${app.active === b.jid ? " active" : ""}`} data-jid={b.jid} aria-current={app.active === b.jid ? "page" : undefined} onClick={() => app.open(b.jid, "groupchat")}>
                  <Avatar name={b.name} size={36} group live={inConf > 0} />
                  <div class="who">
                    <strong>{b.name}</strong>
                    <span class={`muted small${inConf ? " conf-live" : ""}`}>{inConf ? `Conference · ${inConf} in it` : `${Object.keys(b.occupants ?? {}).length} here`}</span>
                  </div>
                  {b.unread > 0 && <span class="badge" aria-label={`${b.unread} unread`}>{b.unread}</span>}
                </button>
              </li>
              );
            })}
          </ul>
        </section>
        <section aria-label="Contacts">
          <h2>Contacts</h2>
          {roster.length === 0 && <p class="muted small pad">Search the directory to add people.</p>}
          <ul>
            {roster.map((c) => (
              <ContactRow key={c.jid} app={app} c={c} />
            ))}
          </ul>
        </section>
      </nav>
    </aside>
  );
}

function ContactRow({ app, c }: { app: App; c: Contact }) {
  const p = bestPresence(c);
  const conv = app.conversations.get(c.jid);
  const pending = c.subscription !== "both";
  return (
    <li>
      <button class={`row link${app.active === c.jid ? " active" : ""}`} data-jid={c.jid} aria-current={app.active === c.jid ? "page" : undefined} onClick={() => app.open(c.jid)}>
        <Avatar name={c.name} src={c.avatar} presence={p} size={36} />
        <div class="who">
          <strong>{c.name}</strong>
          <span class="muted small presence-text">{pending ? (c.ask ? "Invitation sent" : "Not connected") : presenceText(p)}</span>
        </div>
        {conv && conv.unread > 0 && <span class="badge" aria-label={`${conv.unread} unread`}>{conv.unread}</span>}
      </button>
    </li>
  );
}

const EMOJI = ["😀", "😂", "😊", "😍", "😎", "🤔", "😢", "😮", "👍", "👎", "👏", "🙏", "🎉", "🔥", "❤️", "✅", "👀", "🚀", "☕", "🍕"];

function time(ts: number) {
  return new Date(ts).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function ConversationView({ app, calls, confs, conv }: { app: App; calls: Calls; confs: Conferences; conv: Conversation }) {
  const [draft, setDraft] = useState("");
  const [editing, setEditing] = useState<Msg | null>(null);
  const [emoji, setEmoji] = useState(false);
  const [inviting, setInviting] = useState(false);
  const list = useRef<HTMLDivElement>(null);
  const input = useRef<HTMLTextAreaElement>(null);
  const stick = useRef(true);
  const contact = app.contacts.get(conv.jid);
  const p = bestPresence(contact);
  const group = conv.kind === "groupchat";
  const count = conv.messages.length;
  useLayoutEffect(() => {
    const el = list.current;
    if (el && stick.current) el.scrollTop = el.scrollHeight;
  });
  useEffect(() => {
    input.current?.focus();
  }, [conv.jid]);
  const onScroll = () => {
    const el = list.current;
    if (!el) return;
    stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
    if (el.scrollTop < 60 && conv.historyLoaded && !conv.historyComplete) {
      const before = el.scrollHeight;
      void app.loadHistory(conv.jid).then(() => {
        requestAnimationFrame(() => {
          if (list.current) list.current.scrollTop += list.current.scrollHeight - before;
        });
      });
    }
  };
  const send = () => {
    const body = draft.trim();
    if (!body) return;
    if (editing) app.editMessage(conv.jid, editing.id, body);
    else app.sendMessage(conv.jid, body);
    setDraft("");
    setEditing(null);
    stick.current = true;
  };
  const onKey = (e: JSX.TargetedKeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      send();
    } else if (e.key === "Escape" && editing) {
      setEditing(null);
      setDraft("");
    } else if (e.key === "ArrowUp" && !draft && !e.altKey) {
      const last = [...conv.messages].reverse().find((m) => m.mine && !m.call && !m.retracted);
      if (last) {
        e.preventDefault();
        setEditing(last);
        setDraft(last.body);
      }
    }
  };
  const nameOf = (m: Msg) => (group ? app.nameOf(conv.occupants?.[m.from] ?? `${m.from}@${app.domain}`) : app.nameOf(m.from));
  const typing = conv.typing.map((t) => (group ? app.nameOf(conv.occupants?.[t] ?? t) : app.nameOf(t)));
  return (
    <section class="conversation" aria-label={`Conversation with ${conv.name}`}>
      <header class="conv-head">
        <button class="icon back" aria-label="Back to contacts" onClick={() => app.close()}>{Icon.back}</button>
        <Avatar name={group ? conv.name : contact?.name ?? conv.jid} src={contact?.avatar} presence={group ? undefined : p} group={group} />
        <div class="who">
          <h2>{group ? conv.name : contact?.name ?? conv.jid}</h2>
          <span class="muted small conv-presence">
            {group ? `${Object.keys(conv.occupants ?? {}).length} here · ${Object.values(conv.occupants ?? {}).map((j) => app.nameOf(j)).join(", ")}` : presenceText(p)}
          </span>
        </div>
        <div class="actions">
          {group ? (
            <>
              <JoinConferenceButton confs={confs} room={conv.jid} disabled={!!calls.current || !conv.joined} />
              <button class="small" onClick={() => setInviting(true)}>Invite</button>
              <button class="small danger" onClick={() => app.leaveBubble(conv.jid)}>Leave</button>
            </>
          ) : (
            <>
              <button class="icon round" aria-label="Audio call" title="Audio call" disabled={!!calls.current || !!confs.current || !p.online} onClick={() => void calls.start(conv.jid, false)}>{Icon.phone}</button>
              <button class="icon round" aria-label="Video call" title="Video call" disabled={!!calls.current || !!confs.current || !p.online} onClick={() => void calls.start(conv.jid, true)}>{Icon.video}</button>
              {contact && (
                <button
                  class="small danger"
                  aria-label={`Remove ${contact.name} from contacts`}
                  onClick={() => {
                    if (confirm(`Remove ${contact.name} from your contacts?`)) {
                      app.removeContact(conv.jid).catch((e) => app.toast(`Could not remove: ${(e as Error).message}`));
                      app.close();
                    }
                  }}
                >
                  Remove
                </button>
              )}
            </>
          )}
        </div>
      </header>
      {group && <ConferenceBanner app={app} confs={confs} room={conv.jid} disabled={!!calls.current} />}
      <div class="messages" ref={list} onScroll={onScroll} role="log" aria-label="Messages" tabIndex={0}>
        {conv.historyComplete && count > 0 && <p class="history-start muted small">Beginning of the conversation</p>}
        {count === 0 && <p class="empty muted">{conv.historyLoaded ? "No messages yet. Say hello 👋" : "Loading…"}</p>}
        {conv.messages.map((m, i) => {
          const prev = conv.messages[i - 1];
          const day = !prev || new Date(prev.ts).toDateString() !== new Date(m.ts).toDateString();
          return (
            <div key={m.id}>
              {day && <div class="day" role="separator">{new Date(m.ts).toLocaleDateString([], { weekday: "long", month: "short", day: "numeric" })}</div>}
              {m.call ? (
                <CallEntry m={m} name={nameOf(m)} />
              ) : (
                <MessageRow
                  m={m}
                  name={nameOf(m)}
                  showName={group && !m.mine && (!prev || prev.from !== m.from || !!prev.call)}
                  onEdit={() => {
                    setEditing(m);
                    setDraft(m.body);
                    input.current?.focus();
                  }}
                  onDelete={() => app.deleteMessage(conv.jid, m.id)}
                />
              )}
            </div>
          );
        })}
      </div>
      <div class="typing" aria-live="polite">{typing.length > 0 && `${typing.join(", ")} ${typing.length > 1 ? "are" : "is"} typing…`}</div>
      <footer class="composer">
        {editing && (
          <div class="editing">
            Editing message <button class="small" onClick={() => { setEditing(null); setDraft(""); }}>Cancel</button>
          </div>
        )}
        <div class="compose-row">
          <div class="emoji-wrap">
            <button class="icon" aria-label="Emoji" aria-expanded={emoji} onClick={() => setEmoji(!emoji)}>{Icon.smile}</button>
            {emoji && (
              <div class="emoji-grid" role="menu" aria-label="Emoji">
                {EMOJI.map((e) => (
                  <button role="menuitem" key={e} aria-label={e} onClick={() => { setDraft(draft + e); setEmoji(false); input.current?.focus(); }}>{e}</button>
                ))}
              </div>
            )}
          </div>
          <textarea
            ref={input}
            rows={1}
            aria-label="Message"
            placeholder={`Message ${group ? conv.name : contact?.name ?? conv.jid}`}
            value={draft}
            maxLength={10000}
            onInput={(e) => {
              setDraft(e.currentTarget.value);
              if (e.currentTarget.value) app.typing(conv.jid);
            }}
            onKeyDown={onKey}
          />
          <button class="icon send primary" aria-label="Send" disabled={!draft.trim()} onClick={send}>{Icon.send}</button>
        </div>
      </footer>
      {inviting && <InviteDialog app={app} conv={conv} onClose={() => setInviting(false)} />}
    </section>
  );
}

function Body({ text }: { text: string }) {
  return (
    <>
      {linkify(text).map((part, i) =>
        part.href ? (
          <a key={i} href={part.href} target="_blank" rel="noopener noreferrer">{part.text}</a>
        ) : (
          <span key={i}>{part.text}</span>
        ),
      )}
    </>
  );
}

function MessageRow({ m, name, showName, onEdit, onDelete }: { m: Msg; name: string; showName: boolean; onEdit: () => void; onDelete: () => void }) {
  const stateLabel = { sending: "Sending", sent: "Sent", delivered: "Delivered", read: "Read" }[m.state ?? "sent"];
  return (
    <div class={`msg${m.mine ? " mine" : ""}${m.retracted ? " retracted" : ""}`} data-id={m.id}>
      <div class="bubble">
        {showName && <div class="sender">{name}</div>}
        <div class="text">{m.retracted ? <em>Message deleted</em> : <Body text={m.body} />}</div>
        <div class="meta">
          {m.edited && !m.retracted && <span class="edited">edited</span>}
          <time dateTime={new Date(m.ts).toISOString()}>{time(m.ts)}</time>
          {m.mine && !m.retracted && (
            <span class={`receipt ${m.state ?? "sent"}`} aria-label={stateLabel} title={stateLabel}>
              {m.state === "sending" ? "○" : m.state === "delivered" || m.state === "read" ? "✓✓" : "✓"}
            </span>
          )}
        </div>
      </div>
      {m.mine && !m.retracted && (
        <div class="msg-actions">
          <button class="small" aria-label="Edit message" onClick={onEdit}>Edit</button>
          <button class="small" aria-label="Delete message" onClick={onDelete}>Delete</button>
        </div>
      )}
    </div>
  );
}

function CallEntry({ m, name }: { m: Msg; name: string }) {
  const c = m.call;
  if (!c) return null;
  const kind = c.video ? "video call" : "call";
  const label =
    c.outcome === "missed"
      ? m.mine
        ? `${name === "" ? "" : ""}Unanswered ${kind}`
        : `Missed ${kind} from ${name}`
      : c.outcome === "declined"
        ? `Declined ${kind}`
        : c.outcome === "ended"
          ? `${c.video ? "Video call" : "Call"} · ${clock(c.duration ?? 0)}`
          : c.outcome === "answered"
            ? `${c.video ? "Video call" : "Call"} in progress`
            : `${m.mine ? "Calling…" : `${name} is calling…`}`;
  return (
    <div class={`call-entry ${c.outcome}`} role="note">
      <span class="call-icon">{c.video ? Icon.video : Icon.phone}</span>
      {label}
      <time>{time(m.ts)}</time>
    </div>
  );
}

function Modal({ title, onClose, children }: { title: string; onClose: () => void; children: preact.ComponentChildren }) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const prev = document.activeElement as HTMLElement | null;
    ref.current?.querySelector<HTMLElement>("input, button, select, textarea")?.focus();
    const onKey = (e: KeyboardEvent) => e.key === "Escape" && onClose();
    window.addEventListener("keydown", onKey);
    return () => {
      window.removeEventListener("keydown", onKey);
      prev?.focus();
    };
  }, []);
  return (
    <div class="backdrop" onClick={(e) => e.target === e.currentTarget && onClose()}>
      <div class="modal" role="dialog" aria-modal="true" aria-label={title} ref={ref}>
        <h2>{title}</h2>
        {children}
      </div>
    </div>
  );
}

function MemberPicker({ app, chosen, setChosen, exclude = [] }: { app: App; chosen: string[]; setChosen: (v: string[]) => void; exclude?: string[] }) {
  const people = [...app.contacts.values()].filter((c) => c.subscription === "both" && !exclude.includes(c.jid));
  if (people.length === 0) return <p class="muted small">Add contacts first.</p>;
  return (
    <fieldset class="members">
      <legend>Members</legend>
      {people.map((c) => (
        <label key={c.jid} class="check">
          <input type="checkbox" checked={chosen.includes(c.jid)} onChange={(e) => setChosen(e.currentTarget.checked ? [...chosen, c.jid] : chosen.filter((j) => j !== c.jid))} />
          <Avatar name={c.name} src={c.avatar} size={24} />
          {c.name}
        </label>
      ))}
    </fieldset>
  );
}

function NewBubble({ app, onClose }: { app: App; onClose: () => void }) {
  const [name, setName] = useState("");
  const [chosen, setChosen] = useState<string[]>([]);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    if (!name.trim()) return;
    setBusy(true);
    try {
      await app.createBubble(name.trim(), chosen);
      onClose();
    } catch (err) {
      app.toast(`Could not create the bubble: ${(err as Error).message}`);
      setBusy(false);
    }
  };
  return (
    <Modal title="New bubble" onClose={onClose}>
      <form onSubmit={submit}>
        <label>
          Name
          <input aria-label="Bubble name" value={name} maxLength={60} onInput={(e) => setName(e.currentTarget.value)} required />
        </label>
        <MemberPicker app={app} chosen={chosen} setChosen={setChosen} />
        <div class="buttons">
          <button type="button" onClick={onClose}>Cancel</button>
          <button class="primary" type="submit" disabled={busy || !name.trim()}>Create</button>
        </div>
      </form>
    </Modal>
  );
}

function InviteDialog({ app, conv, onClose }: { app: App; conv: Conversation; onClose: () => void }) {
  const [chosen, setChosen] = useState<string[]>([]);
  const present = Object.values(conv.occupants ?? {});
  return (
    <Modal title={`Invite to ${conv.name}`} onClose={onClose}>
      <MemberPicker app={app} chosen={chosen} setChosen={setChosen} exclude={[...present, ...(conv.members ?? [])]} />
      <div class="buttons">
        <button type="button" onClick={onClose}>Cancel</button>
        <button
          class="primary"
          disabled={chosen.length === 0}
          onClick={() => {
            chosen.forEach((j) => app.inviteToBubble(conv.jid, j));
            onClose();
          }}
        >
          Invite
        </button>
      </div>
    </Modal>
  );
}

function Settings({ app, calls, onClose }: { app: App; calls: Calls; onClose: () => void }) {
  useEffect(() => void calls.refreshDevices(), []);
  const mics = calls.devices.filter((d) => d.kind === "audioinput");
  const cams = calls.devices.filter((d) => d.kind === "videoinput");
  return (
    <Modal title="Settings" onClose={onClose}>
      <div class="settings">
        <label class="avatar-pick">
          <Avatar name={app.user?.display_name || app.me} src={app.myAvatar} size={56} />
          <span>Avatar</span>
          <input type="file" accept="image/*" aria-label="Avatar image" onChange={(e) => {
            const f = e.currentTarget.files?.[0];
            if (f) app.setAvatar(f).catch((err) => app.toast(`Avatar not saved: ${(err as Error).message}`));
          }} />
        </label>
        <DevicePickers calls={calls} mics={mics} cams={cams} />
        <label class="check">
          <input type="checkbox" checked={calls.relayOnly} onChange={(e) => (calls.relayOnly = e.currentTarget.checked)} />
          Always route calls through the Iris relay (hides your IP address)
        </label>
        <label class="check">
          <input
            type="checkbox"
            checked={typeof Notification !== "undefined" && Notification.permission === "granted"}
            disabled={typeof Notification === "undefined" || Notification.permission === "denied"}
            onChange={() => void Notification.requestPermission().then(() => app.emit())}
          />
          Desktop notifications for messages and calls
        </label>
        <div class="buttons">
          <button class="danger" onClick={() => void app.logout()}>Sign out</button>
          <button class="primary" onClick={onClose}>Done</button>
        </div>
      </div>
    </Modal>
  );
}

function DevicePickers({ calls, mics, cams }: { calls: Calls; mics: MediaDeviceInfo[]; cams: MediaDeviceInfo[] }) {
  return (
    <>
      <label>
        Microphone
        <select value={localStorage.getItem("iris.audioinput") ?? ""} onChange={(e) => void calls.useDevice("audioinput", e.currentTarget.value)}>
          <option value="">Default</option>
          {mics.map((d, i) => (
            <option key={d.deviceId} value={d.deviceId}>{d.label || `Microphone ${i + 1}`}</option>
          ))}
        </select>
      </label>
      <label>
        Camera
        <select value={localStorage.getItem("iris.videoinput") ?? ""} onChange={(e) => void calls.useDevice("videoinput", e.currentTarget.value)}>
          <option value="">Default</option>
          {cams.map((d, i) => (
            <option key={d.deviceId} value={d.deviceId}>{d.label || `Camera ${i + 1}`}</option>
          ))}
        </select>
      </label>
    </>
  );
}

function IncomingCall({ app, calls, call }: { app: App; calls: Calls; call: Call }) {
  const c = app.contacts.get(call.peer);
  return (
    <div class="backdrop">
      <div class="modal incoming" role="alertdialog" aria-modal="true" aria-label={`Incoming call from ${app.nameOf(call.peer)}`}>
        <div class="pulse">
          <Avatar name={app.nameOf(call.peer)} src={c?.avatar} size={88} />
        </div>
        <h2>{app.nameOf(call.peer)}</h2>
        <p class="muted">Incoming {call.video ? "video" : "audio"} call…</p>
        <div class="call-buttons">
          <button class="round danger big" aria-label="Decline" onClick={() => calls.decline()}>{Icon.hang}</button>
          {call.video && <button class="round ok big" aria-label="Accept with video" onClick={() => void calls.accept(true)} autoFocus>{Icon.video}</button>}
          <button class="round ok big" aria-label={call.video ? "Accept with audio only" : "Accept"} onClick={() => void calls.accept(false)} autoFocus={!call.video}>{Icon.phone}</button>
        </div>
      </div>
    </div>
  );
}

export function Video({ stream, muted, label, class: cls }: { stream: MediaStream | null; muted?: boolean; label: string; class: string }) {
  const ref = useRef<HTMLVideoElement>(null);
  const tracks = stream?.getTracks().length ?? 0;
  useEffect(() => {
    const v = ref.current;
    if (v && v.srcObject !== stream) v.srcObject = stream;
    void v?.play().catch(() => {});
  }, [stream, tracks]);
  return <video ref={ref} class={cls} autoPlay playsInline muted={muted} aria-label={label} />;
}

function CallView({ app, calls, call }: { app: App; calls: Calls; call: Call }) {
  const [, tick] = useReducer((n: number) => n + 1, 0);
  const [devices, setDevices] = useState(false);
  useEffect(() => {
    const t = setInterval(() => tick(0), 1000);
    return () => clearInterval(t);
  }, []);
  const name = app.nameOf(call.peer);
  const c = app.contacts.get(call.peer);
  const remoteVideo = call.remote.getVideoTracks().some((t) => !t.muted);
  const hasMic = (call.local?.getAudioTracks().length ?? 0) > 0;
  const status =
    call.state === "outgoing" ? "Ringing…" : call.state === "connecting" ? "Connecting…" : call.state === "active" ? clock((Date.now() - call.startedAt) / 1000) : call.reason;
  const mics = useMemo(() => calls.devices.filter((d) => d.kind === "audioinput"), [calls.devices]);
  const cams = useMemo(() => calls.devices.filter((d) => d.kind === "videoinput"), [calls.devices]);
  return (
    <section class={`call ${call.state}`} aria-label={`Call with ${name}`}>
      <div class={`stage${remoteVideo ? " has-video" : ""}${call.remoteSharing ? " sharing" : ""}`}>
        <Video stream={call.remote} label={`${name}'s video`} class="remote" />
        {!remoteVideo && (
          <div class="placeholder">
            <Avatar name={name} src={c?.avatar} size={120} />
          </div>
        )}
        <div class="call-info">
          <strong>{name}</strong>
          <span class="call-status" aria-live="polite">{status}</span>
          {call.remoteSharing && <span class="pill">Sharing their screen</span>}
          {call.remoteMuted && <span class="pill">Muted</span>}
          {call.relayOnly && <span class="pill">Via relay</span>}
        </div>
        {call.local && (call.sharing || !call.cameraOff) && <Video stream={call.local} muted label="My video" class="local" />}
      </div>
      {devices && (
        <div class="device-panel">
          <DevicePickers calls={calls} mics={mics} cams={cams} />
        </div>
      )}
      <div class="controls" role="toolbar" aria-label="Call controls">
        <button class={`round${call.muted ? " off" : ""}`} aria-pressed={call.muted} aria-label={call.muted ? "Unmute" : "Mute"} title={hasMic ? (call.muted ? "Unmute" : "Mute") : "No microphone (pick one under Devices)"} disabled={!hasMic} onClick={() => calls.toggleMute()}>{call.muted ? Icon.micOff : Icon.mic}</button>
        <button class={`round${call.cameraOff ? " off" : ""}`} aria-pressed={!call.cameraOff} aria-label={call.cameraOff ? "Turn camera on" : "Turn camera off"} title="Camera" onClick={() => void calls.toggleCamera()}>{Icon.video}</button>
        <button class={`round${call.sharing ? " on" : ""}`} aria-pressed={call.sharing} aria-label={call.sharing ? "Stop sharing" : "Share screen"} title="Share screen" disabled={!call.pc} onClick={() => void calls.toggleShare()}>{Icon.screen}</button>
        <button class="round" aria-expanded={devices} aria-label="Devices" title="Devices" onClick={() => { setDevices(!devices); void calls.refreshDevices(); }}>{Icon.gear}</button>
        <button class="round danger" aria-label="Hang up" title="Hang up" onClick={() => calls.hangup()}>{Icon.hang}</button>
      </div>
    </section>
  );
}
