//! The conversation model: messages keyed by id, corrections (XEP-0308), retractions (XEP-0424),
//! delivery receipts (XEP-0184) and read markers (XEP-0333), call entries (XEP-0353), unread
//! counts. Pure data and functions; no XMPP or DOM here.

export type MsgState = "sending" | "sent" | "delivered" | "read";

export interface Msg {
  /** The sender's id (origin-id or message id); corrections and markers refer to it. */
  id: string;
  /** Server-assigned archive id (XEP-0359), for MAM paging. */
  archiveId?: string;
  /** Bare JID (1:1) or nick (bubbles) of the sender. */
  from: string;
  mine: boolean;
  body: string;
  ts: number;
  edited?: boolean;
  retracted?: boolean;
  state?: MsgState;
  /** A call entry instead of a text message. */
  call?: { video: boolean; outcome: "ringing" | "answered" | "missed" | "declined" | "ended"; duration?: number };
}

export interface Conversation {
  jid: string;
  kind: "chat" | "groupchat";
  name: string;
  messages: Msg[];
  unread: number;
  typing: string[];
  historyLoaded: boolean;
  historyComplete: boolean;
  joined?: boolean;
  /** Our nick in a bubble. */
  nick?: string;
  /** Bubble occupants: nick → bare JID. */
  occupants?: Record<string, string>;
  members?: string[];
}

export function newConversation(jid: string, kind: Conversation["kind"], name: string): Conversation {
  return { jid, kind, name, messages: [], unread: 0, typing: [], historyLoaded: false, historyComplete: false };
}

/** Inserts or merges a message in timestamp order; returns false for a duplicate. */
export function addMessage(c: Conversation, m: Msg, opts: { active: boolean }): boolean {
  const existing = c.messages.find((o) => o.id === m.id || (m.archiveId && o.archiveId === m.archiveId));
  if (existing) {
    if (m.archiveId) existing.archiveId = m.archiveId;
    if (existing.state === "sending" && m.mine) existing.state = "sent";
    return false;
  }
  let i = c.messages.length;
  while (i > 0 && c.messages[i - 1].ts > m.ts) i--;
  c.messages.splice(i, 0, m);
  if (!m.mine && !opts.active && !m.call && i === c.messages.length - 1) c.unread++;
  if (!m.mine) c.typing = c.typing.filter((t) => t !== m.from);
  return true;
}

/** XEP-0308: only the original sender may correct. */
export function correct(c: Conversation, id: string, from: string, body: string): boolean {
  const m = c.messages.find((o) => o.id === id);
  if (!m || m.from !== from || m.retracted) return false;
  m.body = body;
  m.edited = true;
  return true;
}

/** XEP-0424: only the original sender may retract. */
export function retract(c: Conversation, id: string, from: string): boolean {
  const m = c.messages.find((o) => o.id === id);
  if (!m || m.from !== from) return false;
  m.retracted = true;
  m.body = "";
  return true;
}

const rank: Record<MsgState, number> = { sending: 0, sent: 1, delivered: 2, read: 3 };

/** A receipt or marker for `id` upgrades it; `displayed` also marks every earlier own message. */
export function mark(c: Conversation, id: string, state: MsgState): boolean {
  const i = c.messages.findIndex((o) => o.id === id);
  if (i < 0) return false;
  const upto = state === "read" ? i : i;
  let changed = false;
  for (let j = 0; j <= upto; j++) {
    const m = c.messages[j];
    if (!m.mine || m.call) continue;
    if (j !== i && state !== "read") continue;
    if (rank[m.state ?? "sent"] < rank[state]) {
      m.state = state;
      changed = true;
    }
  }
  return changed;
}

export function setTyping(c: Conversation, who: string, typing: boolean) {
  c.typing = c.typing.filter((t) => t !== who);
  if (typing) c.typing.push(who);
}

/** Latest message from the other side that can be marked displayed. */
export function lastIncoming(c: Conversation): Msg | undefined {
  for (let i = c.messages.length - 1; i >= 0; i--) {
    const m = c.messages[i];
    if (!m.mine && !m.call && !m.retracted) return m;
  }
  return undefined;
}

/** Updates (or creates) the call entry for a XEP-0353 session id. */
export function callEntry(c: Conversation, sid: string, from: string, mine: boolean, ts: number, patch: Partial<NonNullable<Msg["call"]>>, active = true) {
  const m = c.messages.find((o) => o.id === `call:${sid}`);
  if (m && m.call) {
    const final = m.call.outcome !== "ringing" && m.call.outcome !== "answered";
    if (!final || patch.outcome === "ended") Object.assign(m.call, patch);
    return m;
  }
  const entry: Msg = { id: `call:${sid}`, from, mine, body: "", ts, call: { video: false, outcome: "ringing", ...patch } };
  addMessage(c, entry, { active });
  if (!mine && patch.outcome === "missed" && !active) c.unread++;
  return entry;
}

const URL_RE = /\bhttps?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]]/g;

/** Splits text into plain and link parts (http/https only). */
export function linkify(text: string): { text: string; href?: string }[] {
  const out: { text: string; href?: string }[] = [];
  let last = 0;
  for (const m of text.matchAll(URL_RE)) {
    const i = m.index ?? 0;
    if (i > last) out.push({ text: text.slice(last, i) });
    out.push({ text: m[0], href: m[0] });
    last = i + m[0].length;
  }
  if (last < text.length) out.push({ text: text.slice(last) });
  return out;
}

/** A duration as m:ss or h:mm:ss. */
export function clock(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60));
  const ss = String(s % 60).padStart(2, "0");
  return h ? `${h}:${mm.padStart(2, "0")}:${ss}` : `${mm}:${ss}`;
}
