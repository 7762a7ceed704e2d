"""CURVE (ZeroMQ's elliptic-curve encryption and authentication) for the publisher and the listener, and the
check of whether an endpoint stays on this machine."""
from __future__ import annotations

from pathlib import Path


def is_loopback(endpoint: str) -> bool:
    """Whether a ``tcp://HOST:PORT`` endpoint stays on this machine (``ipc://`` and ``inproc://`` do)."""
    if not endpoint.startswith("tcp://"):
        return True
    host = endpoint[len("tcp://"):].rsplit(":", 1)[0].strip("[]")
    return host in ("localhost", "::1") or host.startswith("127.")


def check_port(endpoint: str, what: str) -> None:
    """Raise ValueError when a ``tcp://`` endpoint's port is not one (libzmq takes port 99999 as 34463 without a word:
    a publisher and a listener would meet on a port nobody named, and any other client would not find them)."""
    if endpoint.startswith("tcp://"):
        port = endpoint.rsplit(":", 1)[-1]
        if port.isdigit() and not 0 <= int(port) <= 65535:
            raise ValueError(f"{what} {endpoint}: expected a TCP port from 1 to 65535 (or * to pick one), found {port}")


def curve_server(sock, secret_key: str, clients: str | None):
    """Make ``sock`` a CURVE server with the key pair in ``secret_key`` (a ``.key_secret`` file); with
    ``clients`` (a folder of ``.key`` public keys) only those clients are let in, else any CURVE client
    (encryption without client authentication). Returns the authenticator thread (or None)."""
    import zmq
    import zmq.auth

    for path in filter(None, (secret_key, clients)):
        if not Path(path).exists():
            raise ValueError(f"CURVE: expected {path} to exist (make keys with 'streamfiqa keys DIR')")
    try:
        public, secret = zmq.auth.load_certificate(secret_key)
    except (OSError, ValueError) as exc:
        raise ValueError(f"CURVE: {secret_key} is not a ZeroMQ secret key file: {exc}") from None
    if secret is None:
        raise ValueError(f"CURVE: {secret_key} holds a public key only; give the .key_secret file")
    auth = None
    from zmq.auth.thread import ThreadAuthenticator

    auth = ThreadAuthenticator(sock.context)  # ZAP is per context: the socket's own
    auth.start()
    auth.configure_curve(domain="*", location=clients if clients else zmq.auth.CURVE_ALLOW_ANY)
    sock.curve_secretkey, sock.curve_publickey, sock.curve_server = secret, public, True
    return auth


def curve_client(sock, server_key: str, secret_key: str | None = None) -> None:
    """Make ``sock`` a CURVE client of the server whose public key file is ``server_key``; its own key pair
    from ``secret_key`` (a new ephemeral one when None)."""
    import zmq
    import zmq.auth

    try:
        server_public, _ = zmq.auth.load_certificate(server_key)
    except (OSError, ValueError) as exc:
        raise ValueError(f"CURVE: {server_key} is not a ZeroMQ public key file: {exc}") from None
    if secret_key:
        public, secret = zmq.auth.load_certificate(secret_key)
        if secret is None:
            raise ValueError(f"CURVE: {secret_key} holds a public key only; give the .key_secret file")
    else:
        public, secret = zmq.curve_keypair()
    sock.curve_secretkey, sock.curve_publickey, sock.curve_serverkey = secret, public, server_public
