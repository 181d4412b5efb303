"""nodelet-cni's dispatcher: env + stdin in, (exit code, stdout bytes) out.

`handle` is what both the exec'ed plugin (`main`, the fallback path) and the long-lived server (`cni.server`)
run, so they behave identically. Commands sit behind a small `Commands` interface so the dispatcher is
unit-tested with a fake; the real one (`BridgeCommands`) is imported lazily: VERSION and input errors never
pay for importing pyroute2.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from collections.abc import Mapping
from typing import IO, Any, Protocol

from .config import LATEST_VERSION, SUPPORTED_VERSIONS, Env, NetConf, parse_env, parse_netconf
from .errors import CNIError

log = logging.getLogger(__name__)


class Commands(Protocol):
    async def add(self, env: Env, conf: NetConf) -> dict[str, Any]: ...
    async def delete(self, env: Env, conf: NetConf) -> None: ...
    async def check(self, env: Env, conf: NetConf) -> None: ...
    async def gc(self, env: Env, conf: NetConf) -> None: ...
    async def status(self, env: Env, conf: NetConf) -> None: ...


class BridgeCommands:
    """The real commands: bridge.py on a DiskStore under the config's data dir."""

    def __init__(self) -> None:
        from . import bridge
        self._b = bridge

    async def add(self, env: Env, conf: NetConf) -> dict[str, Any]:
        return await self._b.cmd_add(env, conf, self._b.make_store(conf))

    async def delete(self, env: Env, conf: NetConf) -> None:
        await self._b.cmd_del(env, conf, self._b.make_store(conf))

    async def check(self, env: Env, conf: NetConf) -> None:
        await self._b.cmd_check(env, conf, self._b.make_store(conf))

    async def gc(self, env: Env, conf: NetConf) -> None:
        await self._b.cmd_gc(conf, self._b.make_store(conf))

    async def status(self, env: Env, conf: NetConf) -> None:
        await self._b.cmd_status(conf, self._b.make_store(conf))


def _dump(obj: Mapping[str, Any]) -> bytes:
    return (json.dumps(obj, indent=4) + "\n").encode()


def _config_version(stdin: bytes) -> str:
    """Best-effort cniVersion of the request, for error replies (spec: errors carry the config's version)."""
    try:
        v = json.loads(stdin).get("cniVersion")
    except Exception:
        return LATEST_VERSION
    return v if isinstance(v, str) and v in SUPPORTED_VERSIONS else LATEST_VERSION


async def handle(environ: Mapping[str, str], stdin: bytes, *, commands: Commands | None = None) -> tuple[int, bytes]:
    """One plugin invocation → (exit code, stdout)."""
    try:
        env = parse_env(environ)
        if env.command == "VERSION":
            return 0, _dump({"cniVersion": LATEST_VERSION, "supportedVersions": list(SUPPORTED_VERSIONS)})
        conf = parse_netconf(stdin, command=env.command)
        cmds = commands if commands is not None else BridgeCommands()
        if env.command == "ADD":
            return 0, _dump(await cmds.add(env, conf))
        if env.command == "DEL":
            await cmds.delete(env, conf)
        elif env.command == "CHECK":
            await cmds.check(env, conf)
        elif env.command == "GC":
            await cmds.gc(env, conf)
        elif env.command == "STATUS":
            await cmds.status(env, conf)
        return 0, b""
    except CNIError as e:
        log.warning("command failed code=%d msg=%s", e.code, e.msg)
        return 1, _dump(e.to_json(_config_version(stdin)))
    except Exception as e:  # an untyped failure still answers in the spec's shape
        log.exception("internal error")
        return 1, _dump(CNIError(f"internal error: {type(e).__name__}: {e}").to_json(_config_version(stdin)))


def run(environ: Mapping[str, str], stdin: bytes, stdout: IO[bytes], *, commands: Commands | None = None) -> int:
    code, out = asyncio.run(handle(environ, stdin, commands=commands))
    stdout.write(out)
    stdout.flush()
    return code


def main(stdin: bytes | None = None) -> None:
    """Console-script entry (`nodelet-cni`) and the installed client's fallback (which passes stdin it read)."""
    logging.basicConfig(level=os.environ.get("NODELET_CNI_LOG_LEVEL", "WARNING"), stream=sys.stderr,
                        format="nodelet-cni %(levelname)s %(name)s: %(message)s")
    if len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help", "version"):
        sys.stdout.write(f"nodelet-cni: CNI protocol versions supported: {', '.join(SUPPORTED_VERSIONS)}\n")
        sys.exit(0)
    sys.exit(run(os.environ, sys.stdin.buffer.read() if stdin is None else stdin, sys.stdout.buffer))


if __name__ == "__main__":
    main()
