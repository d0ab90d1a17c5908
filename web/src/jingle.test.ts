import { describe, expect, it } from "vitest";
import { sdpToJingle, jingleToSdp, candidateToJingle, candidateToSdp, withIceCredentials, restartContents, iceCredentials } from "./jingle";
import { x, serialize, parse } from "./xml";

// An offer as Chromium writes it (trimmed): BUNDLE, audio and video with RTX, one candidate.
const OFFER = [
  "v=0",
  "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
  "s=-",
  "t=0 0",
  "a=group:BUNDLE 0 1",
  "a=extmap-allow-mixed",
  "a=msid-semantic: WMS s1",
  "m=audio 9 UDP/TLS/RTP/SAVPF 111 0",
  "c=IN IP4 0.0.0.0",
  "a=rtcp:9 IN IP4 0.0.0.0",
  "a=candidate:842163049 1 udp 1677729535 192.0.2.7 46154 typ srflx raddr 10.0.0.2 rport 46154 generation 0 network-cost 999",
  "a=candidate:1 1 tcp 1518280447 10.0.0.2 9 typ host tcptype active generation 0",
  "a=ice-ufrag:Uf1x",
  "a=ice-pwd:pwdpwdpwdpwdpwdpwdpwdpwd",
  "a=ice-options:trickle",
  "a=fingerprint:sha-256 AB:CD:EF",
  "a=setup:actpass",
  "a=mid:0",
  "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
  "a=sendrecv",
  "a=msid:s1 a1",
  "a=rtcp-mux",
  "a=rtpmap:111 opus/48000/2",
  "a=rtcp-fb:111 transport-cc",
  "a=fmtp:111 minptime=10;useinbandfec=1",
  "a=rtpmap:0 PCMU/8000",
  "a=ssrc:1001 cname:c1",
  "a=ssrc:1001 msid:s1 a1",
  "m=video 9 UDP/TLS/RTP/SAVPF 96 97",
  "c=IN IP4 0.0.0.0",
  "a=rtcp:9 IN IP4 0.0.0.0",
  "a=ice-ufrag:Uf1x",
  "a=ice-pwd:pwdpwdpwdpwdpwdpwdpwdpwd",
  "a=ice-options:trickle",
  "a=fingerprint:sha-256 AB:CD:EF",
  "a=setup:actpass",
  "a=mid:1",
  "a=extmap:3 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
  "a=sendonly",
  "a=msid:s1 v1",
  "a=rtcp-mux",
  "a=rtcp-rsize",
  "a=rtpmap:96 VP8/90000",
  "a=rtcp-fb:96 nack",
  "a=rtcp-fb:96 nack pli",
  "a=rtpmap:97 rtx/90000",
  "a=fmtp:97 apt=96",
  "a=ssrc-group:FID 2001 2002",
  "a=ssrc:2001 cname:c1",
  "a=ssrc:2002 cname:c1",
  "",
].join("\r\n");

function jingle(contents: ReturnType<typeof sdpToJingle>) {
  return x("jingle", { xmlns: "urn:xmpp:jingle:1", action: "session-initiate", sid: "abc" }, contents);
}

describe("SDP to Jingle", () => {
  const contents = sdpToJingle(OFFER, "initiator");

  it("maps media sections to contents with senders from the direction", () => {
    const names = contents.filter((c) => c.name === "content").map((c) => [c.attrs.name, c.attrs.senders]);
    expect(names).toEqual([["0", "both"], ["1", "initiator"]]);
    const group = contents.find((c) => c.name === "group");
    expect(group?.attrs.semantics).toBe("BUNDLE");
  });

  it("carries payload types, parameters, feedback, header extensions and sources", () => {
    const xml = serialize(jingle(contents));
    expect(xml).toContain('<payload-type id="111" name="opus" clockrate="48000" channels="2">');
    expect(xml).toContain('<parameter name="useinbandfec" value="1"/>');
    expect(xml).toContain('<rtcp-fb xmlns="urn:xmpp:jingle:apps:rtp:rtcp-fb:0" type="nack" subtype="pli"/>');
    expect(xml).toContain('uri="urn:ietf:params:rtp-hdrext:ssrc-audio-level"');
    expect(xml).toContain('<ssrc-group xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" semantics="FID"><source ssrc="2001"/>');
    expect(xml).toContain('<fingerprint xmlns="urn:xmpp:jingle:apps:dtls:0" hash="sha-256" setup="actpass">AB:CD:EF</fingerprint>');
  });

  it("keeps UDP candidates and drops TCP ones", () => {
    const xml = serialize(jingle(contents));
    expect(xml).toContain('ip="192.0.2.7"');
    expect(xml).toContain('rel-addr="10.0.0.2"');
    expect(xml).not.toContain("tcptype");
    expect(xml.match(/<candidate /g)?.length).toBe(1);
  });
});

describe("Jingle to SDP", () => {
  it("round-trips through XML into an equivalent SDP", () => {
    const el = parse(serialize(jingle(sdpToJingle(OFFER, "initiator"))));
    expect(el).not.toBeNull();
    const sdp = jingleToSdp(el!, "initiator");
    for (const line of [
      "a=group:BUNDLE 0 1",
      "m=audio 9 UDP/TLS/RTP/SAVPF 111 0",
      "m=video 9 UDP/TLS/RTP/SAVPF 96 97",
      "a=ice-ufrag:Uf1x",
      "a=fingerprint:sha-256 AB:CD:EF",
      "a=setup:actpass",
      "a=rtpmap:111 opus/48000/2",
      "a=fmtp:111 minptime=10;useinbandfec=1",
      "a=rtcp-fb:96 nack pli",
      "a=fmtp:97 apt=96",
      "a=ssrc-group:FID 2001 2002",
      "a=ssrc:1001 msid:s1 a1",
      "a=msid:s1 a1",
      "a=extmap-allow-mixed",
      "a=extmap:3 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
      "a=rtcp-mux",
      "a=candidate:842163049 1 udp 1677729535 192.0.2.7 46154 typ srflx raddr 10.0.0.2 rport 46154 generation 0",
    ]) {
      expect(sdp.split("\r\n")).toContain(line);
    }
  });

  it("reads senders from the author's point of view", () => {
    const contents = sdpToJingle(OFFER, "initiator");
    const asOffer = jingleToSdp(jingle(contents), "initiator");
    expect(asOffer).toContain("a=sendonly");
    // The same contents written by the responder mean the other way round.
    const fromResponder = jingleToSdp(jingle(contents), "responder");
    expect(fromResponder).toContain("a=recvonly");
  });
});

describe("candidates and restarts", () => {
  it("converts a relay candidate both ways", () => {
    const c = candidateToJingle("candidate:9 1 udp 41885439 127.0.0.1 50000 typ relay raddr 127.0.0.1 rport 40000 generation 0 ufrag u");
    expect(c?.attrs.type).toBe("relay");
    expect(candidateToSdp(c!)).toBe("candidate:9 1 udp 41885439 127.0.0.1 50000 typ relay raddr 127.0.0.1 rport 40000 generation 0");
  });

  it("rejects malformed candidates", () => {
    expect(candidateToJingle("candidate:garbage")).toBeNull();
    expect(candidateToSdp(x("candidate", { ip: "1.2.3.4" }))).toBeNull();
    expect(candidateToSdp(x("candidate", { foundation: "1", component: "1", ip: "1.2.3.4", port: "x", type: "host" }))).toBeNull();
  });

  it("patches ICE credentials for a restart and drops old candidates", () => {
    const sdp = withIceCredentials(OFFER, "new1", "newpwdnewpwdnewpwdnewpwd");
    expect(sdp).toContain("a=ice-ufrag:new1");
    expect(sdp).not.toContain("a=ice-ufrag:Uf1x");
    expect(sdp).not.toContain("a=candidate:");
    const restart = restartContents(sdp);
    expect(restart).toHaveLength(2);
    expect(iceCredentials(x("jingle", {}, restart))).toEqual({ ufrag: "new1", pwd: "newpwdnewpwdnewpwdnewpwd" });
  });
});
