"""Helpers for tests and benchmarks of nodelet-cni (and for other packages' tests that need pod-like netns).

Nothing here imports pytest or pyroute2. Every namespace gets a unique `ncni-<pid>-<rand>-<tag>` name and is
removed on exit, even on failure; plugins run "inside" a test-created host netns (the child process setns()es
there before exec), so the real host's links, bridges and nft tables are never touched.
"""
from __future__ import annotations

import contextlib
import ctypes
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REFERENCE_DIR = "/usr/lib/cni"
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def is_root() -> bool:
    return os.geteuid() == 0


def unique(tag: str) -> str:
    return f"ncni-{os.getpid()}-{secrets.token_hex(3)}-{tag}"


def _setns_path(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), path)
    finally:
        os.close(fd)


@contextlib.contextmanager
def netns(tag: str) -> Iterator[str]:
    """A fresh named netns (loopback up); yields its path; deleted afterwards."""
    name = unique(tag)
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield f"/run/netns/{name}"
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def ns_name(path: str) -> str:
    return os.path.basename(path)


def ns_argv(host_netns: str | None, argv: list[str]) -> list[str]:
    """argv run inside `host_netns` through nsenter. (A preexec_fn that calls setns runs Python between fork and
    exec; in a process with threads that can deadlock or abort the child, which happened under load.)"""
    if host_netns is None:
        return list(argv)
    return ["nsenter", f"--net={host_netns}", *argv]


def in_ns(host_netns: str | None):  # type: ignore[no-untyped-def]
    """preexec_fn for subprocess: run the child in `host_netns`."""
    if host_netns is None:
        return None
    return lambda: _setns_path(host_netns)


def plugin_env(command: str, *, container_id: str = "", netns: str = "", ifname: str = "eth0", args: str = "",
               cni_path: str = REFERENCE_DIR, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {"CNI_COMMAND": command, "CNI_PATH": cni_path, "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin")}
    if container_id:
        env["CNI_CONTAINERID"] = container_id
    if netns:
        env["CNI_NETNS"] = netns
    if ifname:
        env["CNI_IFNAME"] = ifname
    if args:
        env["CNI_ARGS"] = args
    env.update(extra or {})
    return env


@dataclass(frozen=True, kw_only=True)
class PluginRun:
    rc: int
    stdout: bytes
    stderr: bytes
    seconds: float

    @property
    def json(self) -> Any:
        return json.loads(self.stdout) if self.stdout.strip() else None


def exec_plugin(executable: str | list[str], env: Mapping[str, str], conf: Mapping[str, Any] | bytes, *,
                host_netns: str | None = None, timeout: float = 60, setns_in_child: bool = False) -> PluginRun:
    data = conf if isinstance(conf, bytes) else json.dumps(conf).encode()
    argv = [executable] if isinstance(executable, str) else executable
    t0 = time.perf_counter()
    # setns_in_child: enter the netns between fork and exec (no nsenter exec in the timing) — only for
    # single-threaded callers such as bench/cni.py.
    if setns_in_child:
        p = subprocess.run(list(argv), input=data, env=dict(env), capture_output=True, timeout=timeout, preexec_fn=in_ns(host_netns))
    else:
        p = subprocess.run(ns_argv(host_netns, list(argv)), input=data, env=dict(env), capture_output=True, timeout=timeout)
    return PluginRun(rc=p.returncode, stdout=p.stdout, stderr=p.stderr, seconds=time.perf_counter() - t0)


def bridge_conf(*, name: str, bridge: str, subnet: str, data_dir: str, plugin_type: str = "nodelet-cni",
                cni_version: str = "1.1.0", ip_masq: bool = False, **extra: Any) -> dict[str, Any]:
    """The same config shape for nodelet-cni and the reference bridge + host-local."""
    conf: dict[str, Any] = {"cniVersion": cni_version, "name": name, "type": plugin_type, "bridge": bridge,
                            "isGateway": True, "isDefaultGateway": True, "ipMasq": ip_masq, "hairpinMode": True,
                            "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet}]], "dataDir": data_dir}}
    conf.update(extra)
    return conf


def python() -> str:
    """The real interpreter (never a pyenv shim): what exec'ed helpers must name."""
    return sys.executable


@contextlib.contextmanager
def cni_server(socket_path: str, *, host_netns: str | None = None, timeout: float = 20) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m cni.server --socket PATH` inside `host_netns`; yields once it accepts connections."""
    pkg_parent = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ, PYTHONPATH=pkg_parent)
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(ns_argv(host_netns, [python(), "-m", "cni.server", "--socket", socket_path, "--log-level", "WARNING"]),
                            env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"cni server exited rc={proc.returncode}: {log.read().decode(errors='replace')}")
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(socket_path)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"cni server did not listen on {socket_path} within {timeout}s") from None
                time.sleep(0.02)
            finally:
                s.close()
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


def run_in(netns_path: str, *argv: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(ns_argv(netns_path, list(argv)), capture_output=True, text=True, check=check, timeout=timeout)


def veth_links(host_netns: str) -> list[str]:
    out = run_in(host_netns, "ip", "-o", "link", "show", "type", "veth").stdout
    return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if line.strip()]


def nft_ruleset(host_netns: str) -> str:
    return run_in(host_netns, "nft", "list", "ruleset").stdout


def allocation_files(data_dir: str, network: str) -> list[str]:
    d = Path(data_dir) / network
    if not d.exists():
        return []
    return sorted(p.name for p in d.iterdir() if p.name not in ("lock",) and not p.name.startswith("last_reserved"))


def ping(netns_path: str, address: str, *, count: int = 1, timeout: int = 2) -> bool:
    """busybox ping from inside `netns_path` (traffic stays in test namespaces)."""
    p = run_in(netns_path, "busybox", "ping", "-c", str(count), "-W", str(timeout), address, check=False,
               timeout=timeout * count + 5)
    return p.returncode == 0


class FakeCommands:
    """Stateful fake of `cni.__main__.Commands`: records calls, returns a canned ADD result, and raises an
    injected error for a method (`inject_error("add", err)`)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any, Any]] = []
        self.errors: dict[str, BaseException] = {}

    def inject_error(self, method: str, err: BaseException) -> None:
        self.errors[method] = err

    async def _call(self, method: str, env: Any, conf: Any) -> None:
        self.calls.append((method, env, conf))
        if method in self.errors:
            raise self.errors.pop(method)

    async def add(self, env: Any, conf: Any) -> dict[str, Any]:
        await self._call("add", env, conf)
        return {"cniVersion": conf.cni_version, "interfaces": [], "ips": [{"address": "10.1.0.2/24"}]}

    async def delete(self, env: Any, conf: Any) -> None:
        await self._call("delete", env, conf)

    async def check(self, env: Any, conf: Any) -> None:
        await self._call("check", env, conf)

    async def gc(self, env: Any, conf: Any) -> None:
        await self._call("gc", env, conf)

    async def status(self, env: Any, conf: Any) -> None:
        await self._call("status", env, conf)


class CniHarness:
    """A private "host" netns with nodelet-cni installed (client + optional server) and a temp data dir.

    `call(command, ...)` runs the installed executable inside the host netns: through the server when
    `server=True` (fast path), else the in-process fallback.
    """

    def __init__(self, *, host: str, workdir: str, network: str = "ncnitest", bridge: str = "ncnibr0",
                 subnet: str = "10.88.0.0/24", client: str = "auto") -> None:
        from .install import ensure_plugin_installed
        self.host, self.workdir, self.network, self.bridge, self.subnet = host, workdir, network, bridge, subnet
        self.data_dir = os.path.join(workdir, "data")
        self.socket = os.path.join(workdir, "cni.sock")
        self.client = str(ensure_plugin_installed(os.path.join(workdir, "bin"), socket_path=self.socket,
                                                  client=client))  # type: ignore[arg-type]

    def conf(self, **extra: Any) -> dict[str, Any]:
        base = bridge_conf(name=self.network, bridge=self.bridge, subnet=self.subnet, data_dir=self.data_dir)
        return {**base, **extra}

    def call(self, command: str, *, conf: Mapping[str, Any] | bytes | None = None, container_id: str = "",
             netns: str = "", ifname: str = "eth0", args: str = "", fast: bool = True,
             extra_env: Mapping[str, str] | None = None) -> PluginRun:
        extra = dict(extra_env or {})
        if not fast:
            extra["NODELET_CNI_SOCKET"] = os.path.join(self.workdir, "no-server.sock")
        env = plugin_env(command, container_id=container_id, netns=netns, ifname=ifname, args=args, extra=extra)
        return exec_plugin(self.client, env, self.conf() if conf is None else conf, host_netns=self.host)

    def allocations(self) -> list[str]:
        return allocation_files(self.data_dir, self.network)

    def veths(self) -> list[str]:
        return veth_links(self.host)

    def masq_elements(self) -> str:
        p = run_in(self.host, "nft", "list", "table", "ip", "nodelet-cni", check=False)
        return p.stdout if p.returncode == 0 else ""
