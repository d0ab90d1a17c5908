"""What the interop scripts share: the server's address from the environment, and check()."""
import os
import sys

HOST = os.environ["XMPP_HOST"]
PORT = int(os.environ["XMPP_PORT"])
CA = os.environ["XMPP_CA"]
DOMAIN = os.environ["XMPP_DOMAIN"]
PASSWORD = os.environ["XMPP_PASSWORD"]


def check(cond, what):
    if not cond:
        print(f"FAIL: {what}", flush=True)
        sys.exit(1)
    print(f"ok: {what}", flush=True)
