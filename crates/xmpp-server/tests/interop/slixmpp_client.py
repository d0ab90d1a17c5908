#!/usr/bin/env python3
"""Interop: two slixmpp clients against Iris over TCP 5222 with STARTTLS.

alice logs in with SCRAM-SHA-256, bob with PLAIN; roster subscription (bob auto-accepts),
roster name and groups, presence, ping, carbons, chat, MAM paging (RSM max=2), MUC join and
groupchat, stream management (XEP-0198 enabled by the plugin), PEP avatars (XEP-0163/XEP-0084): alice
publishes, bob is notified because his entity caps (XEP-0115, resolved by the server) list
`urn:xmpp:avatar:metadata+notify`, then fetches the data from alice's node. Prints OK and exits 0 on success.
Environment: XMPP_HOST, XMPP_PORT, XMPP_CA, XMPP_DOMAIN, XMPP_PASSWORD.
"""
import asyncio
import logging
import os

from slixmpp import JID, ClientXMPP

from iris_env import CA, DOMAIN, HOST, PASSWORD, PORT, check

if os.environ.get("XMPP_DEBUG"):
    # XMPP_DEBUG_FILE: log there (seen even when the run is cut off), else to stderr
    logging.basicConfig(level=logging.DEBUG, filename=os.environ.get("XMPP_DEBUG_FILE"))


def client(user: str, mech: str) -> ClientXMPP:
    c = ClientXMPP(f"{user}@{DOMAIN}/slixmpp", PASSWORD, sasl_mech=mech)
    for plugin in ["xep_0030", "xep_0199", "xep_0280", "xep_0313", "xep_0045", "xep_0198", "xep_0359",
                   "xep_0115", "xep_0163", "xep_0084"]:
        c.register_plugin(plugin)
    c.ca_certs = CA
    return c



async def main():
    alice = client("alice", "SCRAM-SHA-256")
    bob = client("bob", "PLAIN")
    bob_jid = f"bob@{DOMAIN}"
    got = asyncio.get_running_loop().create_future()

    def on_message(msg):
        if msg["body"] == "hello from slixmpp" and not got.done():
            got.set_result(msg)

    bob.add_event_handler("message", on_message)
    for c in (alice, bob):
        c.connect(HOST, PORT)
        await c.wait_until("session_start", 15)
        await c.get_roster()
        c.send_presence()
    check(True, "login SCRAM-SHA-256 (alice) and PLAIN (bob) over STARTTLS, roster get")

    alice.send_presence_subscription(pto=bob_jid)
    for _ in range(100):
        if alice.client_roster[bob_jid]["subscription"] == "both":
            break
        await asyncio.sleep(0.1)
    check(alice.client_roster[bob_jid]["subscription"] == "both", "subscription both after auto-accept")

    await alice.update_roster(bob_jid, name="Bobby", groups=["Work", "Friends"])
    # a plain roster get without `ver` (slixmpp's get_roster sends its cached version, and the
    # answer is empty once the push has updated it): the stored roster, whole
    get = alice.Iq(stype="get")
    get.enable("roster")
    res = await get.send(timeout=10)
    item = res["roster"]["items"][JID(bob_jid)]
    check(
        item["name"] == "Bobby" and sorted(item["groups"]) == ["Friends", "Work"],
        f"roster name and groups stored ({item['name']!r}, {item['groups']!r})",
    )

    await alice["xep_0199"].ping(jid=JID(DOMAIN), timeout=5)
    check(True, "ping")
    await alice["xep_0280"].enable()
    check(True, "carbons enabled")

    alice.send_message(mto=bob_jid, mbody="hello from slixmpp", mtype="chat")
    msg = await asyncio.wait_for(got, 10)
    check(msg["stanza_id"]["by"] == bob_jid, "chat delivered with a stanza-id")

    for i in range(5):
        alice.send_message(mto=bob_jid, mbody=f"page {i}", mtype="chat")
    await asyncio.sleep(1)
    bodies = []
    async for m in alice["xep_0313"].iterate(with_jid=JID(bob_jid), rsm={"max": 2}):
        bodies.append(m["mam_result"]["forwarded"]["stanza"]["body"])
    check(bodies[-5:] == [f"page {i}" for i in range(5)], f"MAM paging in order ({len(bodies)} results)")

    room = JID(f"slixroom@conference.{DOMAIN}")
    await alice["xep_0045"].join_muc_wait(room, "Alice", maxstanzas=0, timeout=10)
    check(True, "MUC join")
    echoed = asyncio.get_running_loop().create_future()
    alice.add_event_handler(
        "groupchat_message",
        lambda m: (not echoed.done() and m["body"] == "hi room") and echoed.set_result(m),
    )
    alice.send_message(mto=room, mbody="hi room", mtype="groupchat")
    await asyncio.wait_for(echoed, 10)
    check(True, "MUC groupchat")

    avatar = b"\x89PNG\r\n\x1a\nslixmpp avatar bytes"
    avatar_id = alice["xep_0084"].generate_id(avatar)
    notified = asyncio.get_running_loop().create_future()

    def on_avatar(msg):
        # not a loop over the items: slixmpp's own loop over them is running (shared iterator)
        item = msg["pubsub_event"]["items"]["item"]
        if item["id"] == avatar_id and not notified.done():
            notified.set_result(item)

    bob.add_event_handler("avatar_metadata_publish", on_avatar)
    await alice["xep_0084"].publish_avatar(avatar, timeout=10)
    await alice["xep_0084"].publish_avatar_metadata(
        {"id": avatar_id, "type": "image/png", "bytes": len(avatar)}, timeout=10
    )
    check(True, "PEP avatar data and metadata published (nodes auto-created)")
    item = await asyncio.wait_for(notified, 10)
    check(item["id"] == avatar_id, "avatar metadata notification sent by caps (+notify)")
    res = await bob["xep_0084"].retrieve_avatar(JID(f"alice@{DOMAIN}"), avatar_id, timeout=10)
    data = res["pubsub"]["items"]["item"]["avatar_data"]["value"]
    check(data == avatar, "avatar data fetched from the contact's PEP node")

    for c in (alice, bob):
        c.disconnect()
    print("OK", flush=True)


asyncio.run(asyncio.wait_for(main(), 60))
