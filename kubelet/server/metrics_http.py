"""The plain-HTTP metrics server (aiohttp): ``/metrics``, ``/metrics/probes``, ``/metrics/resource``.

:func:`make_metrics_app` builds the aiohttp application from three providers, so the same handlers can be mounted
elsewhere (behind TLS on a kubelet-style API port, say); :class:`MetricsServer` serves it on ``metricsBindAddress``
(loopback by default: no authentication is needed for what only local users can reach).
"""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from kubelet.server.metrics import CONTENT_TYPE

log = logging.getLogger(__name__)

__all__ = ["MetricsServer", "make_metrics_app", "parse_bind_address"]


def parse_bind_address(value: str) -> tuple[str, int]:
    """ "127.0.0.1:10247" / "[::1]:10247" → (host, port)."""
    host, _, port = value.rpartition(":")
    return host.strip("[]"), int(port)


def make_metrics_app(*, metrics: Callable[[], str], probes: Callable[[], str],
                     resource: Callable[[], Awaitable[str]]) -> web.Application:
    def reply(text: str) -> web.Response:
        return web.Response(body=text.encode(), headers={"Content-Type": CONTENT_TYPE})

    async def get_metrics(request: web.Request) -> web.Response:
        return reply(metrics())

    async def get_probes(request: web.Request) -> web.Response:
        return reply(probes())

    async def get_resource(request: web.Request) -> web.Response:
        return reply(await resource())

    app = web.Application()
    app.router.add_get("/metrics", get_metrics)
    app.router.add_get("/metrics/probes", get_probes)
    app.router.add_get("/metrics/resource", get_resource)
    return app


class MetricsServer:
    def __init__(self, app: web.Application, *, bind_address: str) -> None:
        self.app = app
        self.host, self.port = parse_bind_address(bind_address)
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        server = getattr(site, "_server", None)
        if self.port == 0 and server is not None and server.sockets:
            self.port = server.sockets[0].getsockname()[1]
        log.info("metrics server listening address=%s port=%d paths=/metrics,/metrics/probes,/metrics/resource",
                 self.host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
