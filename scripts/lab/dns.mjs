// The network lab's site resolver (scripts/lab/lab.sh): a minimal authoritative DNS server over
// UDP that answers A queries for one name with one IPv4 address, AAAA queries for it with no
// records, and every other name with NXDOMAIN. Enterprise sites have a resolver; Chromium's
// WebRTC stack resolves STUN/TURN names through DNS, not through /etc/hosts of the namespace.
// It does no recursion, no TCP, no EDNS (OPT records in queries are ignored).
//
// Usage: node dns.mjs LISTEN_IP NAME IPV4   (port 53; runs until killed)
import dgram from "node:dgram";

const [listen, name, ip] = process.argv.slice(2);
if (!listen || !name || !/^\d+\.\d+\.\d+\.\d+$/.test(ip ?? "")) {
  console.error("usage: node dns.mjs LISTEN_IP NAME IPV4");
  process.exit(64);
}
const want = name.toLowerCase().replace(/\.$/, "");
const addr = Buffer.from(ip.split(".").map(Number));

/// The question's name (lower case) and the offset after QTYPE/QCLASS, or null if malformed.
function question(q) {
  const labels = [];
  let i = 12;
  while (i < q.length && q[i] !== 0) {
    const n = q[i];
    if (n > 63 || i + 1 + n > q.length) return null; // no compression in questions
    labels.push(q.subarray(i + 1, i + 1 + n).toString("latin1"));
    i += 1 + n;
  }
  if (i + 5 > q.length) return null;
  return { qname: labels.join(".").toLowerCase(), qtype: q.readUInt16BE(i + 1), end: i + 5 };
}

const sock = dgram.createSocket("udp4");
sock.on("message", (q, peer) => {
  if (q.length < 12 || q[2] & 0x80 || q.readUInt16BE(4) !== 1) return; // not one query
  const qq = question(q);
  if (!qq) return;
  const known = qq.qname === want;
  const answer = known && qq.qtype === 1; // A, class IN assumed
  const header = Buffer.alloc(12);
  q.copy(header, 0, 0, 2); // id
  header.writeUInt16BE(0x8400 | (q[2] & 0x01) << 8 | (known ? 0 : 3), 2); // QR AA RD, NOERROR/NXDOMAIN
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(answer ? 1 : 0, 6);
  const parts = [header, q.subarray(12, qq.end)];
  if (answer) {
    const rr = Buffer.alloc(16);
    rr.writeUInt16BE(0xc00c, 0); // name: pointer to the question
    rr.writeUInt16BE(1, 2); // A
    rr.writeUInt16BE(1, 4); // IN
    rr.writeUInt32BE(60, 6); // TTL
    rr.writeUInt16BE(4, 10);
    addr.copy(rr, 12);
    parts.push(rr);
  }
  sock.send(Buffer.concat(parts), peer.port, peer.address);
});
sock.on("error", (e) => {
  console.error(`dns: ${e.message}`);
  process.exit(1);
});
sock.bind(53, listen, () => console.error(`dns: ${want} → ${ip} on ${listen}:53`));
