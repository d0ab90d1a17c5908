//! SDP ⇄ Jingle translation for 1:1 calls: XEP-0166 (Jingle), XEP-0167 (RTP: payload types,
//! rtcp-fb, header extensions, XEP-0339 sources), XEP-0176 (ICE-UDP transport and candidates),
//! XEP-0320 (DTLS fingerprints), XEP-0338 (BUNDLE groups). Pure functions over strings and XEl;
//! no WebRTC objects. TCP ICE candidates are dropped (ICE-UDP carries UDP only; relayed candidates
//! are UDP even when the relay is reached over TCP/TLS).
import { XEl, x, kid, kids, text } from "./xml";

export const JNS = {
  jingle: "urn:xmpp:jingle:1",
  rtp: "urn:xmpp:jingle:apps:rtp:1",
  rtcpFb: "urn:xmpp:jingle:apps:rtp:rtcp-fb:0",
  hdrext: "urn:xmpp:jingle:apps:rtp:rtp-hdrext:0",
  ssma: "urn:xmpp:jingle:apps:rtp:ssma:0",
  ice: "urn:xmpp:jingle:transports:ice-udp:1",
  dtls: "urn:xmpp:jingle:apps:dtls:0",
  group: "urn:xmpp:jingle:apps:grouping:0",
  info: "urn:xmpp:jingle:apps:rtp:info:1",
  errors: "urn:xmpp:jingle:errors:1",
  message: "urn:xmpp:jingle-message:0",
};

export type Role = "initiator" | "responder";

interface Media {
  kind: string;
  mid: string;
  pts: string[];
  lines: string[];
}

/** Splits an SDP into its session lines and its media sections. */
export function splitSdp(sdp: string): { session: string[]; media: Media[] } {
  const session: string[] = [];
  const media: Media[] = [];
  for (const line of sdp.split(/\r?\n/)) {
    if (!line) continue;
    if (line.startsWith("m=")) {
      const [kind, , , ...pts] = line.slice(2).split(" ");
      media.push({ kind, mid: "", pts, lines: [] });
    } else if (media.length) {
      const m = media[media.length - 1];
      if (line.startsWith("a=mid:")) m.mid = line.slice(6);
      m.lines.push(line);
    } else {
      session.push(line);
    }
  }
  return { session, media };
}

const attrValue = (lines: string[], name: string) => {
  const l = lines.find((l) => l.startsWith(`a=${name}:`));
  return l === undefined ? undefined : l.slice(name.length + 3);
};

/** Parses `a=candidate:…` (without the `a=`) into XEP-0176 attributes; null for TCP or junk. */
export function candidateToJingle(line: string, id?: string): XEl | null {
  const body = line.replace(/^a=/, "").replace(/^candidate:/, "");
  const f = body.split(" ");
  if (f.length < 8 || f[6] !== "typ") return null;
  const [foundation, component, protocol, priority, ip, port, , type] = f;
  if (protocol.toLowerCase() !== "udp") return null;
  const attrs: Record<string, string> = {
    component,
    foundation,
    generation: "0",
    id: id ?? Math.random().toString(36).slice(2, 12),
    ip,
    network: "0",
    port,
    priority,
    protocol: "udp",
    type,
  };
  for (let i = 8; i + 1 < f.length; i += 2) {
    if (f[i] === "raddr") attrs["rel-addr"] = f[i + 1];
    else if (f[i] === "rport") attrs["rel-port"] = f[i + 1];
    else if (f[i] === "generation") attrs.generation = f[i + 1];
  }
  return x("candidate", attrs);
}

export function candidateToSdp(c: XEl): string | null {
  const a = c.attrs;
  if (!a.foundation || !a.component || !a.ip || !a.port || !a.type || !/^\d+$/.test(a.port)) return null;
  let s = `candidate:${a.foundation} ${a.component} ${a.protocol ?? "udp"} ${a.priority ?? "0"} ${a.ip} ${a.port} typ ${a.type}`;
  if (a["rel-addr"] && a["rel-port"]) s += ` raddr ${a["rel-addr"]} rport ${a["rel-port"]}`;
  s += ` generation ${a.generation ?? "0"}`;
  return s;
}

function direction(lines: string[]): string {
  for (const d of ["sendrecv", "sendonly", "recvonly", "inactive"]) if (lines.includes(`a=${d}`)) return d;
  return "sendrecv";
}

function senders(dir: string, author: Role): string {
  const other: Role = author === "initiator" ? "responder" : "initiator";
  return { sendrecv: "both", sendonly: author, recvonly: other, inactive: "none" }[dir] ?? "both";
}

function directionOf(sendersAttr: string | undefined, author: Role): string {
  const s = sendersAttr ?? "both";
  if (s === "both") return "sendrecv";
  if (s === "none") return "inactive";
  return s === author ? "sendonly" : "recvonly";
}

/** The ICE-UDP transport (credentials, fingerprint, candidates) of one media section. */
function transportOf(lines: string[], sessionLines: string[], withCandidates: boolean): XEl {
  const fp = attrValue(lines, "fingerprint") ?? attrValue(sessionLines, "fingerprint");
  const [hash, value] = fp ? fp.split(" ") : [];
  const setup = attrValue(lines, "setup") ?? attrValue(sessionLines, "setup");
  return x(
    "transport",
    {
      xmlns: JNS.ice,
      ufrag: attrValue(lines, "ice-ufrag") ?? attrValue(sessionLines, "ice-ufrag"),
      pwd: attrValue(lines, "ice-pwd") ?? attrValue(sessionLines, "ice-pwd"),
    },
    fp ? x("fingerprint", { xmlns: JNS.dtls, hash, setup }, value) : null,
    withCandidates ? lines.filter((l) => l.startsWith("a=candidate:")).map((l) => candidateToJingle(l)) : [],
  );
}

/** Jingle `<content>` elements and BUNDLE group for an SDP offer or answer written by `author`. */
export function sdpToJingle(sdp: string, author: Role): XEl[] {
  const { session, media } = splitSdp(sdp);
  const contents = media
    .filter((m) => m.kind === "audio" || m.kind === "video")
    .map((m) => {
      const fmtp = new Map<string, string>();
      const fbs = new Map<string, string[]>();
      const rtpmap = new Map<string, string>();
      for (const l of m.lines) {
        let r: RegExpMatchArray | null;
        if ((r = l.match(/^a=rtpmap:(\d+) (.*)$/))) rtpmap.set(r[1], r[2]);
        else if ((r = l.match(/^a=fmtp:(\d+) (.*)$/))) fmtp.set(r[1], r[2]);
        else if ((r = l.match(/^a=rtcp-fb:(\d+|\*) (.*)$/))) fbs.set(r[1], [...(fbs.get(r[1]) ?? []), r[2]]);
      }
      const payloads = m.pts
        .filter((pt) => rtpmap.has(pt))
        .map((pt) => {
          const [name, clockrate, channels] = (rtpmap.get(pt) ?? "").split("/");
          const params = (fmtp.get(pt) ?? "")
            .split(";")
            .map((p) => p.trim())
            .filter(Boolean)
            .map((p) => {
              const i = p.indexOf("=");
              return i < 0 ? x("parameter", { name: "", value: p }) : x("parameter", { name: p.slice(0, i), value: p.slice(i + 1) });
            });
          const fb = (fbs.get(pt) ?? []).map((f) => {
            const [type, subtype] = f.split(" ");
            return x("rtcp-fb", { xmlns: JNS.rtcpFb, type, subtype });
          });
          return x("payload-type", { id: pt, name, clockrate, channels: channels && channels !== "1" ? channels : undefined }, params, fb);
        });
      const hdrexts = m.lines
        .map((l) => l.match(/^a=extmap:(\d+)(?:\/(\w+))? (\S+)/))
        .filter((r): r is RegExpMatchArray => !!r)
        .map((r) => x("rtp-hdrext", { xmlns: JNS.hdrext, id: r[1], uri: r[3], senders: r[2] && r[2] !== "sendrecv" ? r[2] : undefined }));
      const ssrcs = new Map<string, XEl[]>();
      for (const l of m.lines) {
        const r = l.match(/^a=ssrc:(\d+) ([^:]+)(?::(.*))?$/);
        if (r) ssrcs.set(r[1], [...(ssrcs.get(r[1]) ?? []), x("parameter", { name: r[2], value: r[3] ?? "" })]);
      }
      const msid = attrValue(m.lines, "msid");
      const sources = [...ssrcs].map(([ssrc, params]) => {
        if (msid && !params.some((p) => p.attrs.name === "msid")) params.push(x("parameter", { name: "msid", value: msid }));
        return x("source", { xmlns: JNS.ssma, ssrc }, params);
      });
      const groups = m.lines
        .map((l) => l.match(/^a=ssrc-group:(\S+) (.*)$/))
        .filter((r): r is RegExpMatchArray => !!r)
        .map((r) => x("ssrc-group", { xmlns: JNS.ssma, semantics: r[1] }, r[2].split(" ").map((s) => x("source", { ssrc: s }))));
      const description = x(
        "description",
        { xmlns: JNS.rtp, media: m.kind },
        payloads,
        hdrexts,
        m.lines.includes("a=extmap-allow-mixed") || session.includes("a=extmap-allow-mixed") ? x("extmap-allow-mixed", { xmlns: JNS.hdrext }) : null,
        sources,
        groups,
        m.lines.includes("a=rtcp-mux") ? x("rtcp-mux", {}) : null,
      );
      return x(
        "content",
        { creator: "initiator", name: m.mid, senders: senders(direction(m.lines), author) },
        description,
        transportOf(m.lines, session, true),
      );
    });
  const bundle = attrValue(session, "group");
  const out = [...contents];
  if (bundle && bundle.startsWith("BUNDLE ")) {
    out.push(x("group", { xmlns: JNS.group, semantics: "BUNDLE" }, bundle.slice(7).split(" ").filter(Boolean).map((n) => x("content", { name: n }))));
  }
  return out;
}

/** An SDP (offer or answer) for the `<jingle>` element written by `author`. */
export function jingleToSdp(jingle: XEl, author: Role, version = 2): string {
  const lines = ["v=0", `o=- ${sessionNumber(jingle.attrs.sid ?? "")} ${version} IN IP4 0.0.0.0`, "s=-", "t=0 0"];
  const group = kid(jingle, "group", JNS.group);
  if (group) lines.push(`a=group:${group.attrs.semantics ?? "BUNDLE"} ${kids(group, "content").map((c) => c.attrs.name).join(" ")}`);
  lines.push("a=msid-semantic: WMS *");
  for (const content of kids(jingle, "content")) {
    const desc = kid(content, "description");
    const transport = kid(content, "transport");
    if (!desc || !transport) continue;
    const pts = kids(desc, "payload-type");
    const media = desc.attrs.media ?? "audio";
    lines.push(`m=${media} 9 UDP/TLS/RTP/SAVPF ${pts.map((p) => p.attrs.id).join(" ")}`);
    lines.push("c=IN IP4 0.0.0.0", "a=rtcp:9 IN IP4 0.0.0.0");
    lines.push(...transportLines(transport));
    lines.push(`a=mid:${content.attrs.name}`);
    if (kid(desc, "extmap-allow-mixed")) lines.push("a=extmap-allow-mixed");
    for (const h of kids(desc, "rtp-hdrext")) lines.push(`a=extmap:${h.attrs.id}${h.attrs.senders ? "/" + h.attrs.senders : ""} ${h.attrs.uri}`);
    lines.push(`a=${directionOf(content.attrs.senders, author)}`);
    const sources = kids(desc, "source");
    const msid = sources.flatMap((s) => kids(s, "parameter").filter((p) => p.attrs.name === "msid").map((p) => p.attrs.value))[0];
    if (msid) lines.push(`a=msid:${msid}`);
    if (kid(desc, "rtcp-mux") || group) lines.push("a=rtcp-mux");
    for (const p of pts) {
      const id = p.attrs.id;
      lines.push(`a=rtpmap:${id} ${p.attrs.name}/${p.attrs.clockrate ?? "90000"}${p.attrs.channels ? "/" + p.attrs.channels : ""}`);
      const params = kids(p, "parameter").map((q) => (q.attrs.name ? `${q.attrs.name}=${q.attrs.value ?? ""}` : q.attrs.value ?? ""));
      if (params.length) lines.push(`a=fmtp:${id} ${params.join(";")}`);
      for (const fb of kids(p, "rtcp-fb")) lines.push(`a=rtcp-fb:${id} ${fb.attrs.type}${fb.attrs.subtype ? " " + fb.attrs.subtype : ""}`);
    }
    for (const g of kids(desc, "ssrc-group")) lines.push(`a=ssrc-group:${g.attrs.semantics} ${kids(g, "source").map((s) => s.attrs.ssrc).join(" ")}`);
    for (const s of sources) {
      for (const p of kids(s, "parameter")) lines.push(`a=ssrc:${s.attrs.ssrc} ${p.attrs.name}${p.attrs.value ? ":" + p.attrs.value : ""}`);
    }
    for (const c of kids(transport, "candidate")) {
      const l = candidateToSdp(c);
      if (l) lines.push(`a=${l}`);
    }
  }
  return lines.join("\r\n") + "\r\n";
}

function transportLines(t: XEl): string[] {
  const out: string[] = [];
  if (t.attrs.ufrag) out.push(`a=ice-ufrag:${t.attrs.ufrag}`);
  if (t.attrs.pwd) out.push(`a=ice-pwd:${t.attrs.pwd}`);
  out.push("a=ice-options:trickle");
  const fp = kid(t, "fingerprint");
  if (fp) {
    out.push(`a=fingerprint:${fp.attrs.hash} ${text(fp).trim()}`);
    out.push(`a=setup:${fp.attrs.setup ?? "actpass"}`);
  }
  return out;
}

/** A stable numeric SDP session id from the Jingle sid. */
function sessionNumber(sid: string): string {
  let h = 7;
  for (const ch of sid) h = (h * 31 + ch.charCodeAt(0)) % 2147483647;
  return String(h);
}

/** ICE credentials of the first content of a transport-info or session description. */
export function iceCredentials(jingle: XEl): { ufrag: string; pwd: string } | null {
  for (const c of kids(jingle, "content")) {
    const t = kid(c, "transport");
    if (t?.attrs.ufrag && t.attrs.pwd) return { ufrag: t.attrs.ufrag, pwd: t.attrs.pwd };
  }
  return null;
}

/** Replaces the ICE credentials (and drops the candidates) of every media section of an SDP. */
export function withIceCredentials(sdp: string, ufrag: string, pwd: string): string {
  return sdp
    .split(/\r?\n/)
    .filter((l) => l && !l.startsWith("a=candidate:") && l !== "a=end-of-candidates")
    .map((l) => (l.startsWith("a=ice-ufrag:") ? `a=ice-ufrag:${ufrag}` : l.startsWith("a=ice-pwd:") ? `a=ice-pwd:${pwd}` : l))
    .join("\r\n") + "\r\n";
}

/** The transport-info contents for one trickled local candidate (by media section name). */
export function candidateInfo(mid: string, candidate: string, ufrag: string, pwd: string): XEl | null {
  const c = candidateToJingle(candidate);
  if (!c) return null;
  return x("content", { creator: "initiator", name: mid }, x("transport", { xmlns: JNS.ice, ufrag, pwd }, c));
}

/** Transport-only contents (new credentials, fingerprint, no candidates) for an ICE restart. */
export function restartContents(sdp: string): XEl[] {
  const { session, media } = splitSdp(sdp);
  return media.map((m) => x("content", { creator: "initiator", name: m.mid }, transportOf(m.lines, session, false)));
}
