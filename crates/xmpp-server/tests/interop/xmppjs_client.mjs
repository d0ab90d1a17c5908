// Interop: @xmpp/client (xmpp.js) against Iris over WebSocket (RFC 7395).
// alice (SCRAM-SHA-1) and bob (PLAIN) log in, ping the server, get the roster, exchange a chat
// message and query MAM. Prints OK and exits 0 on success.
// Environment: XMPP_WS_URL, XMPP_DOMAIN, XMPP_PASSWORD.
import { client, xml } from "@xmpp/client";

const service = process.env.XMPP_WS_URL;
const domain = process.env.XMPP_DOMAIN;
const password = process.env.XMPP_PASSWORD;

function fail(what) {
  console.log(`FAIL: ${what}`);
  process.exit(1);
}
setTimeout(() => fail("timeout"), 45000).unref();

function login(username, mechanism) {
  const credentials = (authenticate, mechanisms) => {
    if (!mechanisms.includes(mechanism)) fail(`${mechanism} not offered: ${mechanisms}`);
    return authenticate({ username, password }, mechanism);
  };
  const c = client({ service, domain, credentials, resource: "xmppjs" });
  c.on("error", (e) => fail(`${username}: ${e}`));
  return c;
}

const alice = login("alice", "SCRAM-SHA-1");
const bob = login("bob", "PLAIN");
const received = new Promise((resolve) => {
  bob.on("stanza", (s) => {
    if (s.is("message") && s.getChildText("body") === "hello from xmpp.js") resolve(s);
  });
});
await alice.start();
await bob.start();
console.log("ok: login over WebSocket (SCRAM-SHA-1, PLAIN)");
await bob.send(xml("presence"));
await alice.send(xml("presence"));
await alice.iqCaller.request(xml("iq", { type: "get", to: domain }, xml("ping", "urn:xmpp:ping")));
console.log("ok: ping");
const roster = await alice.iqCaller.request(xml("iq", { type: "get" }, xml("query", "jabber:iq:roster")));
if (!roster.getChild("query", "jabber:iq:roster")) fail("roster");
console.log("ok: roster");
await alice.send(xml("message", { type: "chat", to: `bob@${domain}` }, xml("body", {}, "hello from xmpp.js")));
const msg = await received;
if (!msg.getChild("stanza-id", "urn:xmpp:sid:0")) fail("stanza-id");
console.log("ok: chat with stanza-id");
const fin = await alice.iqCaller.request(
  xml("iq", { type: "set" }, xml("query", { xmlns: "urn:xmpp:mam:2", queryid: "q1" },
    xml("set", "http://jabber.org/protocol/rsm", xml("max", {}, "10")))),
);
if (!fin.getChild("fin", "urn:xmpp:mam:2")) fail("mam fin");
console.log("ok: MAM");
await alice.stop();
await bob.stop();
console.log("OK");
process.exit(0);
