//! The client's state and XMPP semantics: roster and presence (RFC 6121), vCard avatars
//! (XEP-0054/0153), carbons, 1:1 and bubble messages with MAM history, receipts, markers, chat
//! states, corrections and retractions; bubbles over MUC (XEP-0045). Calls live in call.ts,
//! conferences in conference.ts. The UI
//! reads `state` and calls the methods; every change calls `emit()`.
import { Api, User } from "./api";
import { Xmpp, Status, bare, resourceOf, errorCondition } from "./xmpp";
import { XEl, x, kid, kids, text, path } from "./xml";
import { Conversation, Msg, newConversation, addMessage, correct, retract, mark, setTyping, lastIncoming, callEntry } from "./model";
import { JNS } from "./jingle";

export const NSX = {
  roster: "jabber:iq:roster",
  carbons: "urn:xmpp:carbons:2",
  forward: "urn:xmpp:forward:0",
  delay: "urn:xmpp:delay",
  mam: "urn:xmpp:mam:2",
  rsm: "http://jabber.org/protocol/rsm",
  data: "jabber:x:data",
  sid: "urn:xmpp:sid:0",
  receipts: "urn:xmpp:receipts",
  markers: "urn:xmpp:chat-markers:0",
  chatstates: "http://jabber.org/protocol/chatstates",
  correct: "urn:xmpp:message-correct:0",
  retract: "urn:xmpp:message-retract:1",
  fallback: "urn:xmpp:fallback:0",
  hints: "urn:xmpp:hints",
  vcard: "vcard-temp",
  vcardUpdate: "vcard-temp:x:update",
  muc: "http://jabber.org/protocol/muc",
  mucUser: "http://jabber.org/protocol/muc#user",
  mucOwner: "http://jabber.org/protocol/muc#owner",
  conference: "jabber:x:conference",
  discoInfo: "http://jabber.org/protocol/disco#info",
  discoItems: "http://jabber.org/protocol/disco#items",
  ping: "urn:xmpp:ping",
  iris: "urn:iris:presence:0",
};

export type Show = "available" | "away" | "dnd" | "xa";

export interface Contact {
  jid: string;
  name: string;
  subscription: string;
  ask: boolean;
  /** They asked to add us and we have not answered. */
  incoming: boolean;
  resources: Record<string, { show: Show; status: string; phone: boolean; conference: boolean }>;
  avatar?: string;
  avatarHash?: string;
}

export interface Toast {
  id: number;
  text: string;
}

export interface Presence {
  online: boolean;
  show: Show;
  status: string;
  phone: boolean;
  /** In a bubble conference (`<conference xmlns="urn:iris:presence:0"/>`). */
  conference?: boolean;
}

export function bestPresence(c: Contact | undefined): Presence {
  const rs = c ? Object.values(c.resources) : [];
  if (rs.length === 0) return { online: false, show: "xa", status: "", phone: false, conference: false };
  const order: Show[] = ["available", "away", "xa", "dnd"];
  const phone = rs.some((r) => r.phone);
  const conference = rs.some((r) => r.conference);
  rs.sort((a, b) => order.indexOf(a.show) - order.indexOf(b.show));
  const best = rs.find((r) => r.phone || r.conference) ?? rs[0];
  return { online: true, show: best.show, status: best.status, phone, conference };
}

export const SHOW_LABEL: Record<Show, string> = { available: "Available", away: "Away", dnd: "Do not disturb", xa: "Extended away" };

export class App {
  api = new Api();
  xmpp: Xmpp | null = null;
  user: User | null = this.api.user;
  status: Status = "offline";
  contacts = new Map<string, Contact>();
  conversations = new Map<string, Conversation>();
  active = "";
  myShow: Show = "available";
  myStatus = "";
  myAvatar = "";
  inCall = false;
  /** In a bubble conference (presence says so). */
  inConference = false;
  toasts: Toast[] = [];
  /** Performance marks for the e2e test (time to interactive). */
  readyAt = 0;
  private listeners = new Set<() => void>();
  private composing = new Map<string, ReturnType<typeof setTimeout>>();
  private toastId = 0;
  /** Handlers for stanzas the call manager owns. */
  callHandler: ((s: XEl) => boolean) | null = null;
  /** Handler for conference pushes (headline messages from a room); true when consumed. */
  conferenceHandler: ((s: XEl) => boolean) | null = null;
  /** Called when we (re)join a bubble's MUC room. */
  onBubbleJoined: ((room: string) => void) | null = null;
  onIncomingMessage: ((c: Conversation, m: Msg) => void) | null = null;

  get domain() {
    return this.user ? this.user.login.split("@")[1] : "";
  }
  get me() {
    return this.user?.login ?? "";
  }
  get nick() {
    return this.me.split("@")[0];
  }
  get conference() {
    return `conference.${this.domain}`;
  }

  subscribe(f: () => void) {
    this.listeners.add(f);
    return () => this.listeners.delete(f);
  }
  emit() {
    this.listeners.forEach((f) => f());
    // The tab title shows the unread total.
    let unread = 0;
    for (const c of this.conversations.values()) unread += c.unread;
    const title = unread ? `(${unread}) Iris` : "Iris";
    if (typeof document !== "undefined" && document.title !== title) document.title = title;
  }

  toast(text: string) {
    const id = ++this.toastId;
    this.toasts = [...this.toasts, { id, text }];
    this.emit();
    setTimeout(() => {
      this.toasts = this.toasts.filter((t) => t.id !== id);
      this.emit();
    }, 4000);
  }

  async login(login: string, password: string) {
    this.user = await this.api.login(login, password);
    this.start();
  }

  async logout() {
    const xmpp = this.xmpp;
    this.xmpp = null;
    xmpp?.disconnect();
    await this.api.logout();
    this.user = null;
    this.contacts.clear();
    this.conversations.clear();
    this.active = "";
    this.emit();
  }

  /** Opens the XMPP session (after login or with a saved session). */
  start() {
    if (!this.user || this.xmpp) return;
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const xmpp = new Xmpp({
      url: `${proto}//${location.host}/xmpp-websocket`,
      domain: this.domain,
      login: this.me,
      token: () => this.api.token(),
    });
    this.xmpp = xmpp;
    xmpp.onStatus((s) => {
      this.status = s;
      // Offline without a logout: the server refused the token. Back to the login form.
      if (s === "offline" && this.xmpp === xmpp) {
        this.xmpp = null;
        this.api.forget();
        this.user = null;
        this.toast("Your session has ended. Please sign in again.");
      }
      this.emit();
    });
    xmpp.onOnline(({ resumed }) => {
      if (!resumed) void this.initSession();
    });
    xmpp.onStanza((s) => this.stanza(s));
    xmpp.connect();
    this.emit();
  }

  private async initSession() {
    const xmpp = this.xmpp;
    if (!xmpp) return;
    xmpp.send(x("iq", { type: "set", id: xmpp.id() }, x("enable", { xmlns: NSX.carbons })));
    try {
      const roster = await xmpp.iq(x("iq", { type: "get" }, x("query", { xmlns: NSX.roster })));
      for (const item of kids(kid(roster, "query"), "item")) this.rosterItem(item);
    } catch (e) {
      this.toast(`Could not load contacts: ${(e as Error).message}`);
    }
    this.sendPresence();
    this.emit();
    if (!this.readyAt) this.readyAt = performance.now();
    void this.loadOwnVcard();
    void this.loadBubbles();
    for (const c of this.contacts.values()) void this.loadAvatar(c.jid);
    if (this.active) void this.loadHistory(this.active, true);
  }

  // ---------- presence ----------

  presenceStanza(to?: string): XEl {
    const busy = this.inCall || this.inConference;
    const show = busy ? "dnd" : this.myShow;
    return x(
      "presence",
      { to },
      show !== "available" ? x("show", {}, show) : null,
      this.inCall ? x("status", {}, "On the phone") : this.inConference ? x("status", {}, "In a conference") : this.myStatus ? x("status", {}, this.myStatus) : null,
      x("priority", {}, "1"),
      this.inCall ? x("phone", { xmlns: NSX.iris }) : null,
      this.inConference ? x("conference", { xmlns: NSX.iris }) : null,
      x("x", { xmlns: NSX.vcardUpdate }, this.myAvatarHash ? x("photo", {}, this.myAvatarHash) : null),
    );
  }
  private myAvatarHash = "";

  sendPresence() {
    this.xmpp?.send(this.presenceStanza());
    for (const c of this.conversations.values()) {
      if (c.kind === "groupchat" && c.joined) this.xmpp?.send(this.presenceStanza(`${c.jid}/${c.nick ?? this.nick}`));
    }
  }

  setMyPresence(show: Show, status: string) {
    this.myShow = show;
    this.myStatus = status;
    this.sendPresence();
    this.emit();
  }

  setInConference(v: boolean) {
    if (this.inConference === v) return;
    this.inConference = v;
    this.sendPresence();
    this.emit();
  }

  setInCall(inCall: boolean) {
    if (this.inCall === inCall) return;
    this.inCall = inCall;
    this.sendPresence();
    this.emit();
  }

  private rosterItem(item: XEl) {
    const jid = bare(item.attrs.jid ?? "");
    if (!jid) return;
    if (item.attrs.subscription === "remove") {
      this.contacts.delete(jid);
      return;
    }
    const c = this.contacts.get(jid) ?? { jid, name: jid, subscription: "none", ask: false, incoming: false, resources: {} };
    c.name = item.attrs.name || c.name || jid;
    c.subscription = item.attrs.subscription ?? "none";
    c.ask = item.attrs.ask === "subscribe";
    if (c.subscription === "both") c.incoming = false;
    this.contacts.set(jid, c);
  }

  private presence(p: XEl) {
    const from = p.attrs.from ?? "";
    const jid = bare(from);
    const type = p.attrs.type ?? "";
    if (jid.endsWith(`@${this.conference}`) || bare(from).split("@")[1] === this.conference) {
      this.mucPresence(p);
      return;
    }
    if (type === "subscribe") {
      const c = this.contacts.get(jid) ?? { jid, name: jid, subscription: "none", ask: false, incoming: true, resources: {} };
      if (c.subscription !== "both") c.incoming = true;
      this.contacts.set(jid, c);
      this.toast(`${c.name} wants to add you as a contact`);
      return;
    }
    if (type === "subscribed" || type === "unsubscribed" || type === "unsubscribe") return;
    if (jid === this.me) return;
    const c = this.contacts.get(jid);
    if (!c) return;
    const res = resourceOf(from);
    if (type === "unavailable") {
      delete c.resources[res];
    } else if (type === "" || type === "available") {
      const show = (text(kid(p, "show")) || "available") as Show;
      c.resources[res] = {
        show: ["away", "dnd", "xa"].includes(show) ? show : "available",
        status: text(kid(p, "status")),
        phone: !!kid(p, "phone", NSX.iris),
        conference: !!kid(p, "conference", NSX.iris),
      };
      const photo = kid(kid(p, "x", NSX.vcardUpdate), "photo");
      if (photo && text(photo) !== (c.avatarHash ?? "")) void this.loadAvatar(jid);
    }
  }

  inviteContact(login: string) {
    const jid = login.trim().toLowerCase();
    if (!jid.includes("@") || jid === this.me) return;
    this.xmpp?.send(x("presence", { to: jid, type: "subscribe" }));
    this.toast(`Invitation sent to ${jid}`);
  }
  acceptContact(jid: string) {
    this.xmpp?.send(x("presence", { to: jid, type: "subscribed" }));
    const c = this.contacts.get(jid);
    if (c) c.incoming = false;
    this.emit();
  }
  declineContact(jid: string) {
    this.xmpp?.send(x("presence", { to: jid, type: "unsubscribed" }));
    const c = this.contacts.get(jid);
    if (c) c.incoming = false;
    if (c && c.subscription === "none" && !c.ask) this.contacts.delete(jid);
    this.emit();
  }
  async removeContact(jid: string) {
    await this.xmpp?.iq(x("iq", { type: "set" }, x("query", { xmlns: NSX.roster }, x("item", { jid, subscription: "remove" }))));
    this.contacts.delete(jid);
    this.emit();
  }

  // ---------- avatars (vCard) ----------

  private async loadAvatar(jid: string) {
    try {
      const r = await this.xmpp?.iq(x("iq", { type: "get", to: jid }, x("vCard", { xmlns: NSX.vcard })));
      const photo = path(r, "vCard", "PHOTO");
      const c = this.contacts.get(jid);
      if (!c) return;
      const bin = text(kid(photo, "BINVAL")).replace(/\s/g, "");
      c.avatar = bin ? `data:${text(kid(photo, "TYPE")) || "image/png"};base64,${bin}` : undefined;
      c.avatarHash = bin ? await sha1Hex(bin) : "";
      this.emit();
    } catch {
      /* no vCard */
    }
  }

  private async loadOwnVcard() {
    try {
      const r = await this.xmpp?.iq(x("iq", { type: "get" }, x("vCard", { xmlns: NSX.vcard })));
      const photo = path(r, "vCard", "PHOTO");
      const bin = text(kid(photo, "BINVAL")).replace(/\s/g, "");
      if (bin) {
        this.myAvatar = `data:${text(kid(photo, "TYPE")) || "image/png"};base64,${bin}`;
        this.myAvatarHash = await sha1Hex(bin);
        this.sendPresence();
        this.emit();
      }
    } catch {
      /* no vCard yet */
    }
  }

  /** Publishes a new avatar (scaled to 128 px PNG) in the vCard and announces its hash. */
  async setAvatar(file: File) {
    const bitmap = await createImageBitmap(file);
    const canvas = document.createElement("canvas");
    canvas.width = canvas.height = 128;
    const ctx = canvas.getContext("2d");
    if (!ctx) return;
    const s = Math.min(bitmap.width, bitmap.height);
    ctx.drawImage(bitmap, (bitmap.width - s) / 2, (bitmap.height - s) / 2, s, s, 0, 0, 128, 128);
    const url = canvas.toDataURL("image/png");
    const bin = url.split(",")[1] ?? "";
    await this.xmpp?.iq(
      x("iq", { type: "set" }, x("vCard", { xmlns: NSX.vcard }, x("FN", {}, this.user?.display_name ?? this.me), x("PHOTO", {}, x("TYPE", {}, "image/png"), x("BINVAL", {}, bin)))),
    );
    this.myAvatar = url;
    this.myAvatarHash = await sha1Hex(bin);
    this.sendPresence();
    this.emit();
  }

  // ---------- conversations ----------

  conversation(jid: string, kind: Conversation["kind"] = "chat"): Conversation {
    let c = this.conversations.get(jid);
    if (!c) {
      c = newConversation(jid, kind, kind === "chat" ? this.contacts.get(jid)?.name ?? jid : jid.split("@")[0]);
      this.conversations.set(jid, c);
    }
    return c;
  }

  nameOf(jid: string): string {
    if (jid === this.me) return this.user?.display_name ?? jid;
    return this.contacts.get(jid)?.name ?? this.names.get(jid) ?? jid.split("@")[0];
  }

  /** Display names of people who are not contacts (bubble members), from the directory. */
  private names = new Map<string, string>();
  private async learnName(jid: string) {
    if (!jid.includes("@") || this.contacts.has(jid) || this.names.has(jid) || jid === this.me) return;
    this.names.set(jid, jid.split("@")[0]);
    try {
      const found = await this.api.directory(jid.split("@")[0]);
      const u = found.find((f) => f.login === jid);
      if (u?.display_name) {
        this.names.set(jid, u.display_name);
        this.emit();
      }
    } catch {
      /* keep the local part */
    }
  }

  open(jid: string, kind: Conversation["kind"] = "chat") {
    const c = this.conversation(jid, kind);
    this.active = jid;
    c.unread = 0;
    if (!c.historyLoaded) void this.loadHistory(jid, true);
    this.markDisplayed(c);
    if (location.hash !== `#/${kind}/${jid}`) history.replaceState(null, "", `#/${kind}/${jid}`);
    this.emit();
  }

  close() {
    this.active = "";
    history.replaceState(null, "", "#/");
    this.emit();
  }

  /** Sends the displayed marker for the newest incoming message of an open, visible chat. */
  markDisplayed(c: Conversation) {
    if (this.active !== c.jid || document.visibilityState === "hidden") return;
    c.unread = 0;
    const m = lastIncoming(c);
    if (!m || (m as Msg & { displayedSent?: boolean }).displayedSent) return;
    (m as Msg & { displayedSent?: boolean }).displayedSent = true;
    if (c.kind === "chat") {
      this.xmpp?.send(x("message", { to: c.jid, type: "chat", id: this.xmpp.id() }, x("displayed", { xmlns: NSX.markers, id: m.id }), x("store", { xmlns: NSX.hints })));
    }
  }

  sendMessage(jid: string, body: string) {
    const c = this.conversations.get(jid);
    const xmpp = this.xmpp;
    if (!c || !xmpp || !body.trim()) return;
    const id = crypto.randomUUID();
    const type = c.kind;
    xmpp.send(
      x(
        "message",
        { to: jid, type, id },
        x("body", {}, body),
        x("origin-id", { xmlns: NSX.sid, id }),
        type === "chat" ? x("request", { xmlns: NSX.receipts }) : null,
        x("markable", { xmlns: NSX.markers }),
        x("active", { xmlns: NSX.chatstates }),
      ),
    );
    this.clearComposing(jid, false);
    if (type === "chat") {
      addMessage(c, { id, from: this.me, mine: true, body, ts: Date.now(), state: "sending" }, { active: true });
    }
    this.emit();
  }

  editMessage(jid: string, id: string, body: string) {
    const c = this.conversations.get(jid);
    if (!c || !this.xmpp || !body.trim()) return;
    const newId = crypto.randomUUID();
    this.xmpp.send(x("message", { to: jid, type: c.kind, id: newId }, x("body", {}, body), x("replace", { xmlns: NSX.correct, id }), x("origin-id", { xmlns: NSX.sid, id: newId })));
    if (c.kind === "chat") correct(c, id, this.me, body);
    this.emit();
  }

  deleteMessage(jid: string, id: string) {
    const c = this.conversations.get(jid);
    if (!c || !this.xmpp) return;
    this.xmpp.send(
      x(
        "message",
        { to: jid, type: c.kind, id: crypto.randomUUID() },
        x("retract", { xmlns: NSX.retract, id }),
        x("fallback", { xmlns: NSX.fallback, for: NSX.retract }),
        x("body", {}, "This person attempted to retract a previous message, but it's unsupported by your client."),
        x("store", { xmlns: NSX.hints }),
      ),
    );
    if (c.kind === "chat") retract(c, id, this.me);
    this.emit();
  }

  /** Chat states: composing now, paused after 5 s without typing. */
  typing(jid: string) {
    const c = this.conversations.get(jid);
    if (!c || !this.xmpp) return;
    const t = this.composing.get(jid);
    if (t) clearTimeout(t);
    else this.xmpp.send(x("message", { to: jid, type: c.kind, id: this.xmpp.id() }, x("composing", { xmlns: NSX.chatstates }), x("no-store", { xmlns: NSX.hints })));
    this.composing.set(jid, setTimeout(() => this.clearComposing(jid, true), 5000));
  }

  private clearComposing(jid: string, paused: boolean) {
    const t = this.composing.get(jid);
    if (!t) return;
    clearTimeout(t);
    this.composing.delete(jid);
    const c = this.conversations.get(jid);
    if (paused && c && this.xmpp) this.xmpp.send(x("message", { to: jid, type: c.kind, id: this.xmpp.id() }, x("paused", { xmlns: NSX.chatstates }), x("no-store", { xmlns: NSX.hints })));
  }

  /** MAM (XEP-0313) page before the oldest loaded message. */
  async loadHistory(jid: string, first = false) {
    const c = this.conversations.get(jid);
    const xmpp = this.xmpp;
    if (!c || !xmpp || xmpp.status !== "online" || (c.historyComplete && !first)) return;
    c.historyLoaded = true;
    const oldest = first ? undefined : c.messages.find((m) => m.archiveId)?.archiveId;
    const queryid = xmpp.id();
    const collected: { el: XEl; ts: number; archiveId: string }[] = [];
    const grab = (s: XEl) => {
      const r = kid(s, "result", NSX.mam);
      if (s.name !== "message" || !r || r.attrs.queryid !== queryid) return false;
      const fwd = kid(r, "forwarded", NSX.forward);
      const inner = kid(fwd, "message");
      const stamp = kid(fwd, "delay")?.attrs.stamp;
      if (inner) collected.push({ el: inner, ts: stamp ? Date.parse(stamp) : Date.now(), archiveId: r.attrs.id ?? "" });
      return true;
    };
    this.mamCollectors.add(grab);
    try {
      const form = x(
        "x",
        { xmlns: NSX.data, type: "submit" },
        x("field", { var: "FORM_TYPE", type: "hidden" }, x("value", {}, NSX.mam)),
        c.kind === "chat" ? x("field", { var: "with" }, x("value", {}, jid)) : null,
      );
      const r = await xmpp.iq(
        x("iq", { type: "set", to: c.kind === "groupchat" ? jid : undefined }, x("query", { xmlns: NSX.mam, queryid }, form, x("set", { xmlns: NSX.rsm }, x("max", {}, "40"), x("before", {}, oldest ?? "")))),
      );
      const fin = kid(r, "fin", NSX.mam);
      c.historyComplete = fin?.attrs.complete === "true" || collected.length === 0;
    } catch {
      c.historyComplete = true;
    } finally {
      this.mamCollectors.delete(grab);
    }
    for (const m of collected) this.message(m.el, { archived: m.ts, archiveId: m.archiveId, conv: c });
    this.markDisplayed(c);
    this.emit();
  }
  private mamCollectors = new Set<(s: XEl) => boolean>();

  // ---------- bubbles (MUC) ----------

  private async loadBubbles() {
    try {
      const r = await this.xmpp?.iq(x("iq", { type: "get", to: this.conference }, x("query", { xmlns: NSX.discoItems })));
      for (const item of kids(kid(r, "query"), "item")) {
        const jid = item.attrs.jid;
        if (!jid) continue;
        const c = this.conversation(jid, "groupchat");
        c.name = item.attrs.name || c.name;
        this.joinBubble(jid);
      }
      this.emit();
    } catch {
      /* no MUC service */
    }
  }

  joinBubble(jid: string) {
    const c = this.conversation(jid, "groupchat");
    c.occupants ??= {};
    c.nick ??= this.nick;
    this.xmpp?.send(x("presence", { to: `${jid}/${c.nick}` }, x("x", { xmlns: NSX.muc }, x("history", { maxstanzas: "0" }))));
  }

  /** Creates a members-only bubble named `name` and invites `members`. */
  async createBubble(name: string, members: string[]): Promise<string> {
    const slug = name.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "").slice(0, 24) || "bubble";
    const jid = `${slug}-${Math.random().toString(36).slice(2, 8)}@${this.conference}`;
    const c = this.conversation(jid, "groupchat");
    c.name = name;
    const joined = new Promise<void>((resolve) => this.joinWaiters.set(jid, resolve));
    this.joinBubble(jid);
    await Promise.race([joined, new Promise((r) => setTimeout(r, 10000))]);
    await this.xmpp?.iq(
      x(
        "iq",
        { type: "set", to: jid },
        x(
          "query",
          { xmlns: NSX.mucOwner },
          x("x", { xmlns: NSX.data, type: "submit" }, x("field", { var: "FORM_TYPE", type: "hidden" }, x("value", {}, "http://jabber.org/protocol/muc#roomconfig")), x("field", { var: "muc#roomconfig_roomname" }, x("value", {}, name))),
        ),
      ),
    );
    for (const m of members) this.inviteToBubble(jid, m);
    c.historyLoaded = true;
    c.historyComplete = true;
    this.open(jid, "groupchat");
    return jid;
  }
  private joinWaiters = new Map<string, () => void>();

  inviteToBubble(room: string, jid: string) {
    this.xmpp?.send(x("message", { to: room, id: this.xmpp.id() }, x("x", { xmlns: NSX.mucUser }, x("invite", { to: jid }))));
    const c = this.conversations.get(room);
    if (c) {
      c.members = [...new Set([...(c.members ?? []), jid])];
      this.emit();
    }
  }

  leaveBubble(room: string) {
    this.xmpp?.send(x("presence", { to: `${room}/${this.conversations.get(room)?.nick ?? this.nick}`, type: "unavailable" }));
    this.conversations.delete(room);
    if (this.active === room) this.close();
    this.emit();
  }

  private mucPresence(p: XEl) {
    const from = p.attrs.from ?? "";
    const room = bare(from);
    const nick = resourceOf(from);
    const c = this.conversations.get(room);
    if (!c) return;
    const item = kid(kid(p, "x", NSX.mucUser), "item");
    const self = kids(kid(p, "x", NSX.mucUser), "status").some((s) => s.attrs.code === "110");
    c.occupants ??= {};
    if (p.attrs.type === "unavailable") {
      delete c.occupants[nick];
    } else if (p.attrs.type === "error") {
      // Our nick is taken by another of our sessions: join under a distinct one, once.
      if (errorCondition(p) === "conflict" && c.nick === this.nick) {
        c.nick = `${this.nick}-${Math.random().toString(36).slice(2, 6)}`;
        this.joinBubble(room);
      } else {
        this.toast(`Could not join ${c.name}`);
      }
    } else {
      c.occupants[nick] = bare(item?.attrs.jid ?? "") || nick;
      void this.learnName(c.occupants[nick]);
      if (self && !c.joined) {
        c.joined = true;
        this.joinWaiters.get(room)?.();
        this.joinWaiters.delete(room);
        if (this.active === room && !c.historyComplete) void this.loadHistory(room, true);
        void this.roomName(room);
        this.onBubbleJoined?.(room);
      }
    }
    this.emit();
  }

  private async roomName(room: string) {
    try {
      const r = await this.xmpp?.iq(x("iq", { type: "get", to: room }, x("query", { xmlns: NSX.discoInfo })));
      const name = kid(kid(r, "query"), "identity")?.attrs.name;
      const c = this.conversations.get(room);
      // A room without a configured name reports its local part: keep ours then.
      if (c && name && name !== room.split("@")[0]) {
        c.name = name;
        this.emit();
      }
    } catch {
      /* keep the local part */
    }
  }

  // ---------- incoming stanzas ----------

  private stanza(s: XEl) {
    if (s.name === "presence") {
      this.presence(s);
      this.emit();
      return;
    }
    if (s.name === "iq") {
      const q = s.children.find((c): c is XEl => typeof c !== "string");
      if (s.attrs.type === "set" && q?.name === "query" && q.attrs.xmlns === NSX.roster) {
        const from = s.attrs.from;
        if (from && bare(from) !== this.me) return;
        for (const item of kids(q, "item")) this.rosterItem(item);
        this.xmpp?.result(s);
        this.emit();
        return;
      }
      if (this.callHandler?.(s)) return;
      if (s.attrs.type === "get" && q?.attrs.xmlns === NSX.ping) {
        this.xmpp?.result(s);
        return;
      }
      if (s.attrs.type === "get" && q?.attrs.xmlns === NSX.discoInfo) {
        this.xmpp?.result(
          s,
          x(
            "query",
            { xmlns: NSX.discoInfo },
            x("identity", { category: "client", type: "web", name: "Iris" }),
            [NSX.discoInfo, NSX.receipts, NSX.markers, NSX.chatstates, NSX.correct, NSX.retract, JNS.jingle, JNS.rtp, "urn:xmpp:jingle:apps:rtp:audio", "urn:xmpp:jingle:apps:rtp:video", JNS.ice, JNS.dtls, JNS.message].map((v) => x("feature", { var: v })),
          ),
        );
        return;
      }
      if (s.attrs.type === "get" || s.attrs.type === "set") this.xmpp?.errorReply(s, "cancel", "service-unavailable");
      return;
    }
    if (s.name !== "message") return;
    if (this.conferenceHandler?.(s)) return;
    for (const grab of this.mamCollectors) if (grab(s)) return;
    // Carbons (XEP-0280) from our own account only.
    const carbon = kid(s, "sent", NSX.carbons) ?? kid(s, "received", NSX.carbons);
    if (carbon) {
      if (bare(s.attrs.from ?? this.me) !== this.me) return;
      const inner = path(carbon, "forwarded", "message");
      if (inner) this.message(inner, { carbonSent: carbon.name === "sent" });
      this.emit();
      return;
    }
    this.message(s, {});
    this.emit();
  }

  /** One message (live, carbon or archived). */
  message(s: XEl, o: { archived?: number; archiveId?: string; carbonSent?: boolean; conv?: Conversation }) {
    const from = s.attrs.from ?? "";
    const to = s.attrs.to ?? "";
    const type = s.attrs.type ?? "normal";
    if (type === "error") return;
    // Mediated bubble invitation.
    const invite = kid(kid(s, "x", NSX.mucUser), "invite");
    if (invite && !o.archived) {
      const room = bare(from);
      const c = this.conversation(room, "groupchat");
      this.joinBubble(room);
      this.toast(`${this.nameOf(bare(invite.attrs.from ?? ""))} added you to a bubble`);
      c.historyLoaded = false;
      return;
    }
    // XEP-0353 call proposals and outcomes: for the call manager when live, entries in the chat.
    const jm = s.children.find((c): c is XEl => typeof c !== "string" && c.attrs.xmlns === JNS.message);
    if (jm) {
      const mine = o.carbonSent || bare(from) === this.me;
      const peer = mine ? bare(to) : bare(from);
      if (!o.archived && this.callHandler?.(s)) return;
      if (peer && peer !== this.me) this.callMessage(peer, jm, mine, o.archived ?? Date.now());
      return;
    }
    const groupchat = type === "groupchat";
    const room = groupchat ? this.conversations.get(bare(from)) : undefined;
    const nick = resourceOf(from);
    const mine = groupchat ? nick === (room?.nick ?? this.nick) || room?.occupants?.[nick] === this.me || nick === this.nick : o.carbonSent || bare(from) === this.me;
    const peer = groupchat ? bare(from) : mine ? bare(to) : bare(from);
    if (!peer || (!groupchat && peer === this.me)) return;
    if (groupchat && !this.conversations.has(peer)) return;
    const c = o.conv ?? this.conversation(peer, groupchat ? "groupchat" : "chat");
    const sender = groupchat ? resourceOf(from) : mine ? this.me : peer;
    const active = this.active === peer && document.visibilityState !== "hidden";
    const id = kid(s, "origin-id", NSX.sid)?.attrs.id ?? s.attrs.id ?? kid(s, "stanza-id", NSX.sid)?.attrs.id ?? crypto.randomUUID();
    const archiveId = o.archiveId ?? kids(s, "stanza-id", NSX.sid).find((e) => !e.attrs.by || bare(e.attrs.by) === (groupchat ? peer : this.me))?.attrs.id;
    const delay = kid(s, "delay", NSX.delay)?.attrs.stamp;
    const ts = o.archived ?? (delay ? Date.parse(delay) : Date.now());

    // Receipts and markers update our own messages.
    const received = kid(s, "received", NSX.receipts);
    if (received && !mine) mark(c, received.attrs.id ?? "", "delivered");
    const displayed = kid(s, "displayed", NSX.markers);
    if (displayed && !mine) mark(c, displayed.attrs.id ?? "", "read");
    if (displayed && mine && !o.archived) c.unread = 0;

    // Chat states.
    for (const st of ["composing", "paused", "active", "inactive", "gone"]) {
      if (kid(s, st, NSX.chatstates) && !mine && !o.archived) setTyping(c, sender, st === "composing");
    }
    const retraction = kid(s, "retract", NSX.retract);
    if (retraction) {
      retract(c, retraction.attrs.id ?? "", sender);
      return;
    }
    const body = kid(s, "body");
    if (!body) return;
    const replace = kid(s, "replace", NSX.correct);
    if (replace) {
      correct(c, replace.attrs.id ?? "", sender, text(body));
      return;
    }
    const msg: Msg = { id, archiveId, from: sender, mine, body: text(body), ts, state: mine ? "sent" : undefined };
    if (groupchat && !mine) void this.learnName(room?.occupants?.[nick] ?? `${nick}@${this.domain}`);
    const added = addMessage(c, msg, { active: active || !!o.archived });
    if (added && !mine && !o.archived) {
      if (kid(s, "request", NSX.receipts) && !groupchat) {
        this.xmpp?.send(x("message", { to: from, id: this.xmpp.id() }, x("received", { xmlns: NSX.receipts, id })));
      }
      this.markDisplayed(c);
      this.onIncomingMessage?.(c, msg);
      this.notify(groupchat ? `${this.nameOf(c.occupants?.[sender] ?? sender)} in ${c.name}` : this.nameOf(peer), msg.body.slice(0, 140), c.jid);
    }
  }

  private callMessage(peer: string, jm: XEl, mine: boolean, ts: number) {
    const c = this.conversation(peer, "chat");
    const sid = jm.attrs.id ?? "";
    const active = this.active === peer;
    switch (jm.name) {
      case "propose":
        callEntry(c, sid, mine ? this.me : peer, mine, ts, { video: kids(jm, "description").some((d) => d.attrs.media === "video"), outcome: "ringing" }, active);
        break;
      case "retract":
        callEntry(c, sid, peer, !mine, ts, { outcome: "missed" }, active);
        break;
      case "reject":
        callEntry(c, sid, peer, mine, ts, { outcome: "declined" }, active);
        break;
      case "proceed":
      case "accept":
        callEntry(c, sid, peer, !mine, ts, { outcome: "answered" }, active);
        break;
      case "finish":
        callEntry(c, sid, peer, !mine, ts, { outcome: "ended" }, active);
        break;
    }
  }

  /** A browser notification while the page is hidden (permission asked at login). */
  notify(title: string, body: string, tag: string) {
    if (typeof Notification === "undefined" || Notification.permission !== "granted") return;
    if (document.visibilityState === "visible" && document.hasFocus() && tag !== "call") return;
    try {
      const n = new Notification(title, { body, tag, icon: "/favicon.svg" });
      n.onclick = () => window.focus();
    } catch {
      /* notifications unavailable */
    }
  }

  /** Re-reads the URL fragment (#/chat/jid or #/groupchat/jid). */
  route() {
    const m = location.hash.match(/^#\/(chat|groupchat)\/(.+)$/);
    if (m && this.user) this.open(decodeURIComponent(m[2]), m[1] as Conversation["kind"]);
  }
}

async function sha1Hex(b64: string): Promise<string> {
  try {
    const bytes = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
    const d = await crypto.subtle.digest("SHA-1", bytes);
    return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0")).join("");
  } catch {
    return "";
  }
}
