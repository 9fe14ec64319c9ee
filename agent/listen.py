"""Binding a listening socket ourselves, so a port that cannot be bound is one clear start error
(ListenError) and the bound port (listen may ask for port 0) is read from the socket, not from
aiohttp's internals. The sockets go to `aiohttp.web.SockSite`."""

from __future__ import annotations

import socket

from agent.errors import ListenError


def bind_listeners(setting: str, host: str, port: int, *, backlog: int = 128) -> list[socket.socket]:
    """One listening socket per address `host` resolves to (as asyncio's create_server does); an
    empty host means every interface. Raises ListenError naming `setting`, host:port and the reason."""
    host = host.strip("[]")
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ListenError(setting, host, port, f"cannot resolve the host ({exc.strerror})") from None
    sockets: list[socket.socket] = []
    seen: set[tuple[int, str]] = set()
    try:
        for family, kind, proto, _name, address in infos:
            ip = str(address[0])
            if (family, ip) in seen:
                continue
            seen.add((family, ip))
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            bound_port = sockets[0].getsockname()[1] if len(sockets) > 1 else port
            try:
                sock.bind((ip, bound_port, *address[2:]))
            except OSError as exc:
                raise ListenError(setting, host or ip, port, exc.strerror or str(exc)) from None
            sock.listen(backlog)
            sock.setblocking(False)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def bound_port(sockets: list[socket.socket]) -> int:
    return int(sockets[0].getsockname()[1])
