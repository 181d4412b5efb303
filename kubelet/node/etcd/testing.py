"""Real etcd servers for tests and benchmarks: Debian's `/usr/bin/etcd` on loopback, free ports, a private data dir.

    with EtcdCluster.start(tmp_path, members=3) as cluster:
        cluster.endpoints            # ["http://127.0.0.1:P1", ...]
        cluster.kill(1); cluster.restart(1)

Nothing here touches the system etcd (Debian's postinst starts one on 2379/2380): every member gets its own ports,
name, token and data directory, and is killed (its process group) at the end.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

ETCD = shutil.which("etcd") or "/usr/bin/etcd"
ETCDCTL = shutil.which("etcdctl") or "/usr/bin/etcdctl"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(kw_only=True)
class Member:
    name: str
    client_port: int
    peer_port: int
    data_dir: Path
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    host: str = "127.0.0.1"

    @property
    def client_url(self) -> str:
        return f"http://{self.host}:{self.client_port}"


@dataclass(kw_only=True)
class EtcdCluster:
    members: list[Member]
    token: str
    extra_args: tuple[str, ...] = ()
    _started: set[int] = field(default_factory=set)

    @classmethod
    def start(cls, base: Path, *, members: int = 1, extra_args: tuple[str, ...] = (), timeout: float = 20.0,
              host: str = "127.0.0.1") -> "EtcdCluster":
        """`host`: the address clients reach it on (loopback, or a test bridge's address for agents in netns)."""
        if not os.path.exists(ETCD):
            raise RuntimeError("etcd is not installed (apt-get install etcd-server etcd-client)")
        base.mkdir(parents=True, exist_ok=True)
        ms = [Member(name=f"m{i}", client_port=free_port(), peer_port=free_port(), data_dir=base / f"m{i}.etcd",
                     log_path=base / f"m{i}.log", host=host) for i in range(members)]
        c = cls(members=ms, token=f"nodelet-test-{os.getpid()}-{time.monotonic_ns()}", extra_args=extra_args)
        try:
            for i in range(members):
                c._spawn(i, state="new")
            c.wait_healthy(timeout=timeout)
        except BaseException:
            c.stop()
            raise
        return c

    @property
    def endpoints(self) -> list[str]:
        return [m.client_url for m in self.members]

    def _spawn(self, i: int, *, state: str) -> None:
        m = self.members[i]
        initial = ",".join(f"{x.name}=http://127.0.0.1:{x.peer_port}" for x in self.members)
        argv = [ETCD, "--name", m.name, "--data-dir", str(m.data_dir),
                "--listen-client-urls", m.client_url, "--advertise-client-urls", m.client_url,
                "--listen-peer-urls", f"http://127.0.0.1:{m.peer_port}",
                "--initial-advertise-peer-urls", f"http://127.0.0.1:{m.peer_port}",
                "--initial-cluster", initial, "--initial-cluster-state", state, "--initial-cluster-token", self.token,
                "--heartbeat-interval", "100", "--election-timeout", "1000", *self.extra_args]
        log = open(m.log_path, "ab")
        env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD")}
        m.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env)
        log.close()

    def wait_healthy(self, *, timeout: float = 20.0, members: list[int] | None = None) -> None:
        deadline = time.monotonic() + timeout
        idx = members if members is not None else [i for i, m in enumerate(self.members) if m.proc is not None]
        while True:
            bad = [i for i in idx if not self._healthy(i)]
            if not bad:
                return
            for i in bad:
                p = self.members[i].proc
                if p is not None and p.poll() is not None:
                    raise RuntimeError(f"etcd {self.members[i].name} exited {p.returncode}: {self.log(i)[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"etcd members {bad} not healthy after {timeout}s: {self.log(bad[0])[-2000:]}")
            time.sleep(0.1)

    def _healthy(self, i: int) -> bool:
        r = subprocess.run([ETCDCTL, "--endpoints", self.members[i].client_url, "--command-timeout=1s", "endpoint", "health"],
                           capture_output=True, env={**os.environ, "ETCDCTL_API": "3"})
        return r.returncode == 0

    def log(self, i: int) -> str:
        try:
            return self.members[i].log_path.read_text(errors="replace")
        except OSError:
            return ""

    def ctl(self, *args: str, check: bool = True) -> str:
        r = subprocess.run([ETCDCTL, "--endpoints", ",".join(self.endpoints), *args], capture_output=True, text=True,
                           env={**os.environ, "ETCDCTL_API": "3"})
        if check and r.returncode != 0:
            raise RuntimeError(f"etcdctl {' '.join(args)}: {r.stderr.strip()}")
        return r.stdout

    def kill(self, i: int, sig: int = signal.SIGKILL) -> None:
        p = self.members[i].proc
        if p is not None and p.poll() is None:
            os.killpg(p.pid, sig)
            p.wait(timeout=10)
        self.members[i].proc = None

    def restart(self, i: int) -> None:
        """Start a killed member again on its data dir (it rejoins the existing cluster)."""
        self._spawn(i, state="existing")

    def stop(self) -> None:
        for i in range(len(self.members)):
            try:
                self.kill(i, signal.SIGTERM)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                self.kill(i)

    def __enter__(self) -> "EtcdCluster":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
