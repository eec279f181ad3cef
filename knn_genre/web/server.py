"""Serving the application with waitress, a production WSGI server in pure Python.

:func:`run` binds the address, prints the URL, and serves until SIGINT
(Ctrl-C), SIGTERM or SIGHUP; it then stops taking connections, lets the
worker threads finish, and returns the signal number. The whole run keeps
BLAS at one thread (see :mod:`knn_genre.web.predictor`: the analysis sets
it per call for the whole process, which concurrent requests must not
undo under each other).

Waitress buffers each request body (in memory up to 512 kB, then in an
anonymous temporary file) before the application sees it, refuses a body
whose declared length is over the limit before reading it (413), and drops
connections idle for ``channel_timeout`` seconds, so slow or stalled
clients hold no worker thread.
"""

from __future__ import annotations

import signal
import socket
from collections.abc import Callable

from ..pipeline.signals import STOP_SIGNALS

__all__ = ["run", "url_of"]


def _check_address(host: str, port: int) -> None:
    """An OSError naming the address if ``host`` is neither an address nor a name that resolves.

    waitress would raise a bare ``ValueError("Invalid host/port specified.")``.
    """
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise OSError(f"{host!r} is not an IP address or a host name that resolves ({reason})") from None


def url_of(host: str, port: int) -> str:
    """``http://host:port/``, with brackets around an IPv6 address."""
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def run(app, *, host: str = "127.0.0.1", port: int = 8000, threads: int = 4, max_body: int = 50_000_000,
        channel_timeout: int = 60, on_start: Callable[[str], None] = print) -> int:
    """Serve ``app`` until a stop signal; return its number.

    Parameters
    ----------
    app : WSGI application
        From :func:`knn_genre.web.create_app`.
    host, port : str, int
        Address to bind; port 0 picks a free port.
    threads : int
        Worker threads of the server.
    max_body : int
        Largest request body in bytes; a longer declared length gets 413 unread.
    channel_timeout : int
        Seconds of inactivity after which a connection is closed.
    on_start : callable(url)
        Called with the URL once the socket is bound.

    Raises
    ------
    OSError
        If the address cannot be bound (in use, not local, ...).
    """
    import waitress
    from threadpoolctl import threadpool_limits

    _check_address(host, port)
    server = waitress.create_server(
        app, host=host, port=port, threads=threads, max_request_body_size=max_body + 1,
        channel_timeout=channel_timeout, ident="knn-genre", asyncore_use_poll=True, clear_untrusted_proxy_headers=True,
    )
    received = []

    def stop(signum, frame):
        received.append(signum)
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not interrupt the shutdown
        raise KeyboardInterrupt  # waitress ends its loop on it and stops its threads

    saved = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    with threadpool_limits(limits=1, user_api="blas"):
        try:
            for sig in STOP_SIGNALS:
                if saved[sig] is not signal.SIG_IGN:
                    signal.signal(sig, stop)
            on_start(url_of(host, _bound_port(server)))
            server.run()
        finally:
            for sig, old in saved.items():
                signal.signal(sig, old if old is not None else signal.SIG_DFL)
            server.close()
    return received[0] if received else signal.SIGINT


def _bound_port(server) -> int:
    # One socket (an address), or several (a name such as localhost with IPv4 and IPv6): same port.
    if hasattr(server, "effective_port"):
        return server.effective_port
    return server.effective_listen[0][1]
