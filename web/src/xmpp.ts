//! XMPP over WebSocket (RFC 7395) for the browser: SASL OAUTHBEARER with the REST access token,
//! resource binding, XEP-0198 acks and stream resumption, automatic reconnect with backoff, IQ
//! request/response. It does not know about rosters, chats or calls (see app.ts).
import { XEl, x, parse, serialize, kid, text } from "./xml";

export const NS = {
  framing: "urn:ietf:params:xml:ns:xmpp-framing",
  sasl: "urn:ietf:params:xml:ns:xmpp-sasl",
  bind: "urn:ietf:params:xml:ns:xmpp-bind",
  sm: "urn:xmpp:sm:3",
  client: "jabber:client",
  stanzas: "urn:ietf:params:xml:ns:xmpp-stanzas",
};

export type Status = "offline" | "connecting" | "online" | "reconnecting";

export interface XmppOptions {
  url: string;
  domain: string;
  login: string;
  /** A fresh REST access token (refreshing it when needed). */
  token: () => Promise<string>;
  resource?: string;
}

export class StanzaError extends Error {
  constructor(public condition: string, public stanza: XEl) {
    super(`XMPP error: ${condition}`);
  }
}

export const bare = (jid: string) => jid.split("/")[0];
export const resourceOf = (jid: string) => {
  const i = jid.indexOf("/");
  return i < 0 ? "" : jid.slice(i + 1);
};

type Listener<T> = (v: T) => void;

export class Xmpp {
  status: Status = "offline";
  jid = "";
  /** How many times XEP-0198 resumption kept the session across a reconnect. */
  resumptions = 0;
  private ws: WebSocket | null = null;
  private wanted = false;
  private attempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private ackTimer: ReturnType<typeof setInterval> | undefined;
  private nextId = 0;
  private pending = new Map<string, { resolve: (e: XEl) => void; reject: (e: Error) => void; timer: ReturnType<typeof setTimeout> }>();
  // XEP-0198
  private smId = "";
  private inbound = 0;
  private outbound = 0;
  private unacked: XEl[] = [];
  private smActive = false;
  private stanzaListeners: Listener<XEl>[] = [];
  private statusListeners: Listener<Status>[] = [];
  private onlineListeners: Listener<{ resumed: boolean }>[] = [];

  constructor(private opts: XmppOptions) {
    if (typeof window !== "undefined") {
      window.addEventListener("online", () => this.retryNow());
      // The browser lost the network: the socket is dead even if no close event comes.
      window.addEventListener("offline", () => this.drop());
    }
  }

  onStanza(f: Listener<XEl>) { this.stanzaListeners.push(f); }
  onStatus(f: Listener<Status>) { this.statusListeners.push(f); }
  /** After every (re)connection; `resumed` means the XEP-0198 session survived. */
  onOnline(f: Listener<{ resumed: boolean }>) { this.onlineListeners.push(f); }

  id(): string {
    return `i${Date.now().toString(36)}${(this.nextId++).toString(36)}`;
  }

  connect() {
    this.wanted = true;
    this.open();
  }

  disconnect() {
    this.wanted = false;
    clearTimeout(this.retryTimer);
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.raw(x("presence", { type: "unavailable" }));
      this.raw(x("close", { xmlns: NS.framing }));
    }
    this.ws?.close();
    this.ws = null;
    this.smId = "";
    this.setStatus("offline");
  }

  /** Sends a stanza; while reconnecting it is queued and sent after resumption. */
  send(stanza: XEl) {
    if (this.smActive) {
      this.unacked.push(stanza);
      this.outbound++;
    }
    if (this.status === "online") {
      this.raw(stanza);
    } else if (!this.smActive) {
      this.unacked.push(stanza);
    }
  }

  /** Sends an IQ and resolves with the result (rejects with StanzaError or on timeout). */
  iq(stanza: XEl, timeoutMs = 20000): Promise<XEl> {
    const id = stanza.attrs.id || this.id();
    stanza.attrs.id = id;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error("XMPP request timed out"));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.send(stanza);
    });
  }

  private setStatus(s: Status) {
    if (this.status === s) return;
    this.status = s;
    this.statusListeners.forEach((f) => f(s));
  }

  private raw(e: XEl) {
    // RFC 7395 §3.3.3: every stanza carries its namespace.
    if (!e.attrs.xmlns && (e.name === "message" || e.name === "presence" || e.name === "iq")) e.attrs.xmlns = NS.client;
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(serialize(e));
  }

  /** Abandons the current socket (dead or about to be) and reconnects, resuming the session. */
  drop() {
    const ws = this.ws;
    if (!ws || !this.wanted) return;
    this.ws = null;
    ws.onclose = ws.onmessage = ws.onopen = null;
    ws.close();
    this.smActiveLost();
    this.scheduleRetry();
  }

  private retryNow() {
    if (this.wanted && this.status === "reconnecting") {
      clearTimeout(this.retryTimer);
      this.open();
    }
  }

  private open() {
    clearTimeout(this.retryTimer);
    this.ws?.close();
    this.setStatus(this.status === "offline" || this.status === "connecting" ? "connecting" : "reconnecting");
    let ws: WebSocket;
    try {
      ws = new WebSocket(this.opts.url, "xmpp");
    } catch {
      this.scheduleRetry();
      return;
    }
    this.ws = ws;
    let phase: "sasl" | "bind" | "ready" = "sasl";
    const openStream = () => ws.send(serialize(x("open", { xmlns: NS.framing, to: this.opts.domain, version: "1.0" })));
    ws.onopen = openStream;
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.smActiveLost();
      if (this.wanted) this.scheduleRetry();
      else this.setStatus("offline");
    };
    ws.onmessage = async (ev) => {
      if (this.ws !== ws || typeof ev.data !== "string") return;
      const el = parse(ev.data);
      if (!el) return;
      if (el.name === "open") return;
      if (el.name === "close") {
        ws.close();
        return;
      }
      if (el.name === "features") {
        if (phase === "sasl") {
          let token = "";
          try {
            token = await this.opts.token();
          } catch (e) {
            // Refused credentials end the session; anything else (network) is retried.
            if ((e as { status?: number }).status === 401) this.wanted = false;
          }
          if (!token) {
            ws.close();
            if (!this.wanted) this.setStatus("offline");
            return;
          }
          const msg = `n,a=${this.opts.login},\x01auth=Bearer ${token}\x01\x01`;
          ws.send(serialize(x("auth", { xmlns: NS.sasl, mechanism: "OAUTHBEARER" }, btoa(unescape(encodeURIComponent(msg))))));
        } else if (phase === "bind") {
          if (this.smId && kid(el, "sm", NS.sm)) {
            ws.send(serialize(x("resume", { xmlns: NS.sm, previd: this.smId, h: this.inbound })));
          } else {
            this.bind(ws, !!kid(el, "sm", NS.sm));
          }
        }
        return;
      }
      if (el.name === "success" && phase === "sasl") {
        phase = "bind";
        openStream();
        return;
      }
      if (el.name === "failure" && phase === "sasl") {
        // The token was refused: stop; the app shows the login form.
        this.wanted = false;
        this.smId = "";
        ws.close();
        this.setStatus("offline");
        return;
      }
      if (el.name === "resumed") {
        phase = "ready";
        this.ackedUpTo(Number(el.attrs.h));
        this.smActive = true;
        this.resumptions++;
        this.online(true);
        for (const s of this.unacked) this.raw(s);
        this.requestAck();
        return;
      }
      if (el.name === "failed" && el.attrs.xmlns === NS.sm) {
        // Resumption refused: a fresh session; queued stanzas are resent after binding.
        const queued = this.unacked;
        this.smId = "";
        this.smActive = false;
        this.unacked = [];
        this.bind(ws, true, queued);
        return;
      }
      if (el.name === "enabled") {
        this.smId = el.attrs.resume === "true" || el.attrs.resume === "1" ? el.attrs.id ?? "" : "";
        return;
      }
      if (el.name === "r" && el.attrs.xmlns === NS.sm) {
        this.raw(x("a", { xmlns: NS.sm, h: this.inbound }));
        return;
      }
      if (el.name === "a" && el.attrs.xmlns === NS.sm) {
        clearTimeout(this.ackDeadline);
        this.ackDeadline = undefined;
        this.ackedUpTo(Number(el.attrs.h));
        return;
      }
      if (el.name === "message" || el.name === "presence" || el.name === "iq") {
        if (this.smActive) this.inbound++;
        this.stanza(el);
      }
    };
  }

  private async bind(ws: WebSocket, sm: boolean, resend: XEl[] = []) {
    const id = this.id();
    const result = new Promise<XEl>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("bind timed out")), 20000);
      this.pending.set(id, { resolve, reject, timer });
    });
    ws.send(serialize(x("iq", { xmlns: NS.client, type: "set", id }, x("bind", { xmlns: NS.bind }, x("resource", {}, this.opts.resource ?? `web-${Math.random().toString(36).slice(2, 8)}`)))));
    try {
      const r = await result;
      this.jid = text(kid(kid(r, "bind"), "jid"));
    } catch {
      ws.close();
      return;
    }
    const queued = [...resend, ...(this.smActive ? [] : this.unacked)];
    this.unacked = [];
    if (sm) {
      ws.send(serialize(x("enable", { xmlns: NS.sm, resume: "true" })));
      this.smActive = true;
      this.inbound = 0;
      this.outbound = 0;
    }
    this.online(false);
    for (const s of queued) this.send(s);
  }

  private online(resumed: boolean) {
    this.attempt = 0;
    this.setStatus("online");
    clearInterval(this.ackTimer);
    this.ackTimer = setInterval(() => this.requestAck(), 25000);
    this.onlineListeners.forEach((f) => f({ resumed }));
  }

  /** Asks for an ack (XEP-0198 `<r/>`); with no answer within `ms` the connection is dead
   * (e.g. after a network change) and is dropped and resumed. An earlier deadline stands. */
  private requestAck(ms = 10000) {
    if (!this.smActive || !this.ws) return;
    this.raw(x("r", { xmlns: NS.sm }));
    const at = Date.now() + ms;
    if (this.ackDeadline && this.ackDeadlineAt <= at) return;
    clearTimeout(this.ackDeadline);
    this.ackDeadlineAt = at;
    this.ackDeadline = setTimeout(() => this.drop(), ms);
  }
  private ackDeadline: ReturnType<typeof setTimeout> | undefined;
  private ackDeadlineAt = 0;

  /** Checks the connection now rather than at the next keepalive (3 s instead of 25 + 10 s).
   * An address change can leave the WebSocket dead with no close event and no browser network
   * event; a call that notices it (network event, media stalled) probes before it signals its
   * ICE restart over this connection, which a resumed session then sends again. */
  probe(ms = 3000) {
    if (this.status === "online") this.requestAck(ms);
  }

  private ackedUpTo(h: number) {
    if (!Number.isFinite(h)) return;
    const sentBefore = this.outbound - this.unacked.length;
    const drop = Math.max(0, Math.min(this.unacked.length, h - sentBefore));
    this.unacked.splice(0, drop);
  }

  private smActiveLost() {
    clearInterval(this.ackTimer);
    clearTimeout(this.ackDeadline);
    this.ackDeadline = undefined;
    // Without a resumable session the stream state is gone; unacked stanzas are resent later.
    if (!this.smId) this.smActive = false;
  }

  private scheduleRetry() {
    this.setStatus("reconnecting");
    const delay = Math.min(15000, 500 * 2 ** this.attempt) * (0.75 + Math.random() * 0.5);
    this.attempt++;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.open(), delay);
  }

  private stanza(el: XEl) {
    if (el.name === "iq" && (el.attrs.type === "result" || el.attrs.type === "error")) {
      const p = this.pending.get(el.attrs.id ?? "");
      if (p) {
        this.pending.delete(el.attrs.id ?? "");
        clearTimeout(p.timer);
        if (el.attrs.type === "result") p.resolve(el);
        else p.reject(new StanzaError(errorCondition(el), el));
        return;
      }
    }
    this.stanzaListeners.forEach((f) => f(el));
  }

  /** Replies to an IQ get/set. */
  result(iq: XEl, ...children: XEl[]) {
    this.send(x("iq", { type: "result", id: iq.attrs.id, to: iq.attrs.from }, ...children));
  }

  errorReply(iq: XEl, type: string, condition: string) {
    this.send(x("iq", { type: "error", id: iq.attrs.id, to: iq.attrs.from }, x("error", { type }, x(condition, { xmlns: NS.stanzas }))));
  }
}

export function errorCondition(stanza: XEl): string {
  const err = kid(stanza, "error");
  const c = err?.children.find((c) => typeof c !== "string" && c.name !== "text");
  return typeof c === "object" && c ? c.name : "undefined-condition";
}
