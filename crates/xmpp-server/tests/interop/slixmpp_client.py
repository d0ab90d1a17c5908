#!/usr/bin/env python3
"""Interop: two slixmpp clients against Iris over TCP 5222 with STARTTLS.

alice logs in with SCRAM-SHA-256, bob with PLAIN; roster subscription (bob auto-accepts),
roster name and groups, presence, ping, carbons, chat, MAM paging (RSM max=2), MUC join and
groupchat, stream management (XEP-0198 enabled by the plugin). Prints OK and exits 0 on success.
Environment: XMPP_HOST, XMPP_PORT, XMPP_CA, XMPP_DOMAIN, XMPP_PASSWORD.
"""
import asyncio
import logging
import os

from slixmpp import JID, ClientXMPP

from iris_env import CA, DOMAIN, HOST, PASSWORD, PORT, check

if os.environ.get("XMPP_DEBUG"):
    logging.basicConfig(level=logging.DEBUG)


def client(user: str, mech: str) -> ClientXMPP:
    c = ClientXMPP(f"{user}@{DOMAIN}/slixmpp", PASSWORD, sasl_mech=mech)
    for plugin in ["xep_0030", "xep_0199", "xep_0280", "xep_0313", "xep_0045", "xep_0198", "xep_0359"]:
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
    res = await alice.get_roster()
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

    for c in (alice, bob):
        c.disconnect()
    print("OK", flush=True)


asyncio.run(asyncio.wait_for(main(), 60))
