import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Xmpp } from "./xmpp";
import { parse } from "./xml";

/** A scripted server behind a fake WebSocket: SASL, bind, XEP-0198 enable with resumption. */
class FakeSocket {
  static OPEN = 1;
  static all: FakeSocket[] = [];
  readyState = 0;
  sent: string[] = [];
  closed = false;
  /** Whether this server answers <r/> (a dead connection does not). */
  answersAcks = true;
  onopen: (() => void) | null = null;
  onclose: (() => void) | null = null;
  onmessage: ((ev: { data: string }) => void) | null = null;
  private streams = 0;

  constructor(public url: string) {
    FakeSocket.all.push(this);
    setTimeout(() => {
      this.readyState = 1;
      this.onopen?.();
    }, 0);
  }
  private reply(xml: string) {
    setTimeout(() => this.onmessage?.({ data: xml }), 0);
  }
  send(data: string) {
    this.sent.push(data);
    const el = parse(data);
    if (!el) return;
    if (el.name === "open") {
      this.streams++;
      this.reply(`<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" from="example.org" version="1.0"/>`);
      this.reply(this.streams === 1
        ? `<features xmlns="http://etherx.jabber.org/streams"><mechanisms xmlns="urn:ietf:params:xml:ns:xmpp-sasl"><mechanism>OAUTHBEARER</mechanism></mechanisms></features>`
        : `<features xmlns="http://etherx.jabber.org/streams"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"/><sm xmlns="urn:xmpp:sm:3"/></features>`);
    } else if (el.name === "auth") {
      this.reply(`<success xmlns="urn:ietf:params:xml:ns:xmpp-sasl"/>`);
    } else if (el.name === "iq" && data.includes("urn:ietf:params:xml:ns:xmpp-bind")) {
      this.reply(`<iq xmlns="jabber:client" type="result" id="${el.attrs.id}"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"><jid>ann@example.org/web</jid></bind></iq>`);
    } else if (el.name === "enable") {
      this.reply(`<enabled xmlns="urn:xmpp:sm:3" resume="true" id="sm-1"/>`);
    } else if (el.name === "resume") {
      this.reply(`<resumed xmlns="urn:xmpp:sm:3" previd="sm-1" h="0"/>`);
    } else if (el.name === "r" && this.answersAcks) {
      this.reply(`<a xmlns="urn:xmpp:sm:3" h="0"/>`);
    }
  }
  close() {
    this.closed = true;
  }
}

async function online(): Promise<Xmpp> {
  const xmpp = new Xmpp({ url: "wss://example.org/xmpp-websocket", domain: "example.org", login: "ann", token: async () => "t" });
  xmpp.connect();
  for (let i = 0; i < 50 && xmpp.status !== "online"; i++) await vi.advanceTimersByTimeAsync(1);
  expect(xmpp.status).toBe("online");
  return xmpp;
}

describe("Xmpp.probe (dead connection after a network change)", () => {
  beforeEach(() => {
    vi.useFakeTimers();
    FakeSocket.all = [];
    vi.stubGlobal("WebSocket", FakeSocket);
  });
  afterEach(() => {
    vi.unstubAllGlobals();
    vi.useRealTimers();
  });

  it("keeps a connection that answers the ack request", async () => {
    const xmpp = await online();
    xmpp.probe(3000);
    expect(FakeSocket.all[0].sent.at(-1)).toContain("<r ");
    await vi.advanceTimersByTimeAsync(5000);
    expect(FakeSocket.all).toHaveLength(1);
    expect(FakeSocket.all[0].closed).toBe(false);
    expect(xmpp.status).toBe("online");
  });

  it("reconnects and resumes when no ack comes within the deadline", async () => {
    const xmpp = await online();
    FakeSocket.all[0].answersAcks = false;
    xmpp.probe(3000);
    await vi.advanceTimersByTimeAsync(2900);
    expect(FakeSocket.all[0].closed).toBe(false);
    await vi.advanceTimersByTimeAsync(200);
    expect(FakeSocket.all[0].closed).toBe(true);
    // Back-off of about half a second, then a new socket that resumes the session.
    await vi.advanceTimersByTimeAsync(1000);
    expect(FakeSocket.all).toHaveLength(2);
    expect(FakeSocket.all[1].sent.some((s) => s.includes("<resume ") && s.includes('previd="sm-1"'))).toBe(true);
    expect(xmpp.status).toBe("online");
  });
});
