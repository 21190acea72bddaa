"""A real SMTP server (aiosmtpd) on loopback for perfwatch's email tests.

Prints `listening PORT` once bound, then one JSON line per mail it accepted: the envelope,
whether the session was encrypted and who logged in, every header, and the text and HTML
parts as Python's email package decodes them. Options make it behave like relays do:
STARTTLS required or implicit TLS with a given certificate, AUTH required, a recipient refused
with 550, the first N mails answered 451 (try again later).
"""

import argparse
import asyncio
import email
import email.policy
import json
import logging
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Recorder:
    def __init__(self, refuse, tempfail, implicit_tls):
        self.implicit_tls = implicit_tls
        self.refuse = set(refuse)
        self.tempfail = tempfail

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 <%s>: mailbox unavailable" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.tempfail > 0:
            self.tempfail -= 1
            return "451 4.3.0 try again later"
        server_tls = self.implicit_tls
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        parts = {}
        for part in message.walk():
            if part.get_content_maintype() == "text":
                parts[part.get_content_subtype()] = part.get_content()
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "tls": session.ssl is not None or server_tls,
            "login": session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None,
            "content_type": message.get_content_type(),
            "headers": {name: str(value) for name, value in message.items()},
            "text": parts.get("plain"),
            "html": parts.get("html"),
        }
        print(json.dumps(record), flush=True)
        return "250 2.0.0 queued"


def authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user and auth_data.password.decode() == password
        return AuthResult(success=ok, auth_data=auth_data if ok else None)

    return check


async def main():
    # Handshakes the tests make fail on purpose would print tracebacks.
    logging.getLogger("mail.log").setLevel(logging.CRITICAL)
    parser = argparse.ArgumentParser()
    parser.add_argument("--tls", choices=["none", "starttls", "tls"], default="none")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--auth", help="user:password; AUTH is then required")
    parser.add_argument("--refuse", action="append", default=[], help="a recipient answered 550")
    parser.add_argument("--tempfail", type=int, default=0, help="answer the first N mails 451")
    args = parser.parse_args()

    context = None
    if args.tls != "none":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)
    handler = Recorder(args.refuse, args.tempfail, args.tls == "tls")

    def factory():
        # aiosmtpd cannot tell an implicit-TLS connection is encrypted; it always is.
        options = {"hostname": "smtp.test", "auth_require_tls": args.tls != "tls"}
        if args.auth:
            user, password = args.auth.split(":", 1)
            options.update(authenticator=authenticator(user, password), auth_required=True)
        if args.tls == "starttls":
            options.update(tls_context=context, require_starttls=True)
        return SMTP(handler, **options)

    loop = asyncio.get_running_loop()
    server = await loop.create_server(factory, "127.0.0.1", 0, ssl=context if args.tls == "tls" else None)
    print("listening %d" % server.sockets[0].getsockname()[1], flush=True)
    # Until the test closes stdin (or dies).
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()


asyncio.run(main())
