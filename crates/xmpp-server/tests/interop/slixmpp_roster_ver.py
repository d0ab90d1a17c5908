#!/usr/bin/env python3
"""Interop: roster versioning (RFC 6121 §2.6) as slixmpp does it, over TCP 5222 + STARTTLS.

alice sees the `rosterver` stream feature, bootstraps with ver='', gets an empty result for
her current version, receives a roster push carrying a new version when bob subscribes, and
gets the whole roster with that version for her old one. Prints OK and exits 0 on success.
Environment: XMPP_HOST, XMPP_PORT, XMPP_CA, XMPP_DOMAIN, XMPP_PASSWORD.
"""
import asyncio

from slixmpp import ClientXMPP

from iris_env import CA, DOMAIN, HOST, PASSWORD, PORT, check

ROSTER = "{jabber:iq:roster}query"


async def roster_get(c, ver):
    iq = c.Iq()
    iq["type"] = "get"
    iq.enable("roster")
    iq["roster"]["ver"] = ver
    return await iq.send(timeout=10)


async def main():
    alice = ClientXMPP(f"alice@{DOMAIN}/slix", PASSWORD)
    bob = ClientXMPP(f"bob@{DOMAIN}/slix", PASSWORD)
    # alice answers bob's request herself (never, here): one change, one version
    alice.auto_authorize = None
    for c in (alice, bob):
        c.ca_certs = CA
        c.connect(HOST, PORT)
        await c.wait_until("session_start", 15)
    check("rosterver" in alice.features, "rosterver stream feature")

    await alice.get_roster()  # slixmpp sends ver='' first
    v0 = alice.client_roster.version
    check(v0 != "", f"bootstrap gives version {v0}")
    resp = await roster_get(alice, v0)
    check(resp.xml.find(ROSTER) is None, "current version: empty result")

    bob_jid = f"bob@{DOMAIN}"
    bob.send_presence_subscription(pto=f"alice@{DOMAIN}")
    for _ in range(100):
        if alice.client_roster.version != v0:
            break
        await asyncio.sleep(0.1)
    v1 = alice.client_roster.version
    check(v1 != v0 and bob_jid in alice.client_roster, f"push with new version {v1}")

    resp = await roster_get(alice, v0)
    q = resp.xml.find(ROSTER)
    check(q is not None and q.get("ver") == v1, "old version: whole roster with the new version")
    check(any(i.get("jid") == bob_jid for i in q), "the roster holds bob")
    resp = await roster_get(alice, v1)
    check(resp.xml.find(ROSTER) is None, "new version is current")

    for c in (alice, bob):
        c.disconnect()
    print("OK", flush=True)


asyncio.run(asyncio.wait_for(main(), 60))
