"""A TLS handshake between two pyOpenSSL connections in memory: real TLS, no socket.

The certificate addons act inside OpenSSL's handshake (a verify callback) and after it (the
peer's chain); this drives one handshake from both ends so their tests need no network::

    client, server = pair(server_chain=[leaf, intermediate], server_key=leaf.key)
    guard.tls_start_server(TlsData(conn, context, ssl_conn=client))   # adds its callback
    error = run(client, server)                                       # None: established
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from certgen import Issued
from OpenSSL import SSL

__all__ = ["pair", "run"]


def pair(
    server_chain: Sequence[Issued],
    *,
    trusted: Path | None = None,
    client_chain: Sequence[Issued] = (),
    request_client_cert: bool = False,
) -> tuple[SSL.Connection, SSL.Connection]:
    """(client, server): the server presents ``server_chain`` (leaf first); the client trusts
    the PEM file ``trusted`` (verification as mitmproxy sets it: peer, no callback) or verifies
    nothing, and presents ``client_chain`` when the server asks for one."""
    server_ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
    server_ctx.use_certificate(server_chain[0].cert)
    for extra in server_chain[1:]:
        server_ctx.add_extra_chain_cert(extra.cert)
    server_ctx.use_privatekey(server_chain[0].key)
    if request_client_cert:
        server_ctx.set_verify(SSL.VERIFY_PEER, lambda *_: True)
    client_ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    if trusted is not None:
        client_ctx.load_verify_locations(str(trusted))
        client_ctx.set_verify(SSL.VERIFY_PEER, None)
    else:
        client_ctx.set_verify(SSL.VERIFY_NONE, None)
    if client_chain:
        client_ctx.use_certificate(client_chain[0].cert)
        for extra in client_chain[1:]:
            client_ctx.add_extra_chain_cert(extra.cert)
        client_ctx.use_privatekey(client_chain[0].key)
    client = SSL.Connection(client_ctx, None)
    client.set_connect_state()
    server = SSL.Connection(server_ctx, None)
    server.set_accept_state()
    return client, server


def run(client: SSL.Connection, server: SSL.Connection, rounds: int = 20) -> str | None:
    """Drive the handshake to its end: None when both sides completed it, else the error."""
    done = {id(client): False, id(server): False}
    for _ in range(rounds):
        for side in (client, server):
            if done[id(side)]:
                continue
            try:
                side.do_handshake()
                done[id(side)] = True
            except SSL.WantReadError:
                pass
            except SSL.Error as exc:
                return f"{'client' if side is client else 'server'}: {exc!r}"
        for source, target in ((client, server), (server, client)):
            try:
                data = source.bio_read(65536)
            except SSL.WantReadError:
                continue
            target.bio_write(data)
        if all(done.values()):
            return None
    return "the handshake did not finish"
