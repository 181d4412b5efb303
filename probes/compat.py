"""Python 3.10 support in one place: ``timeout`` is ``asyncio.timeout`` (3.11+) or the ``async-timeout`` backport
(the same API; aiohttp depends on it on 3.10). Both raise ``asyncio.TimeoutError``, which is the builtin
``TimeoutError`` only from 3.11: catch ``asyncio.TimeoutError``. Used by probes and by kubelet (which imports probes)."""
from __future__ import annotations

import sys

if sys.version_info >= (3, 11):
    from asyncio import timeout
else:  # pragma: no cover - exercised by the 3.10 run of the unit suite
    from async_timeout import timeout

__all__ = ["timeout"]
