"""`nodelet doctor`: preflight and live checks of a node, as pure functions over one snapshot of host facts.

`gather_facts` reads the host (procfs/sysfs, `ip -j route`, `iptables-*-save`, the CRI) once, read-only; every
`check_*` turns facts into one :class:`Check` (PASS/WARN/FAIL, what was seen, and the fix). Unit tests build
`HostFacts` by hand to cover every branch; one test gathers the real host's."""
from __future__ import annotations

import ctypes
import ipaddress
import json
import os
import shutil
import stat
import subprocess
import time
from collections.abc import Mapping, Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["CHECKS", "Check", "DiskFacts", "HostFacts", "compute_checks", "gather_facts"]

PASS, WARN, FAIL = "PASS", "WARN", "FAIL"
CAP_SYS_RESOURCE = 24
NODELET_CONFLIST_SUFFIX = "nodelet.conflist"
CNI_EXTS = (".conf", ".conflist", ".json")
# the kubelet's default hard eviction thresholds: nodefs.available<10%, imagefs.available<15%
NODEFS_MIN_FREE, IMAGEFS_MIN_FREE = 0.10, 0.15


@dataclass(frozen=True, kw_only=True)
class Check:
    name: str
    status: str  # PASS | WARN | FAIL
    message: str
    fix: str = ""


@dataclass(frozen=True, kw_only=True)
class DiskFacts:
    label: str  # "pod logs", "images"
    path: str
    free_bytes: int
    total_bytes: int
    min_free: float  # fraction


@dataclass(frozen=True, kw_only=True)
class HostFacts:
    runtime_endpoint: str = ""
    runtime_error: str = ""  # non-empty: unreachable
    runtime_version: str = ""
    runtime_conditions: tuple[tuple[str, bool, str, str], ...] = ()  # (type, status, reason, message)
    runtime_config: dict[str, Any] = field(default_factory=dict)  # containerd's CRI config (Status verbose "config")
    sandbox_image_present: bool | None = None
    cgroup_version: int = 2
    init_is_systemd: bool = False
    ip_forward: str | None = "1"
    br_netfilter_loaded: bool = True
    bridge_nf_call_iptables: str | None = "1"
    iptables_nft_rules: int | None = 0  # None: the tool is missing
    iptables_legacy_rules: int | None = 0
    pod_cidr: str = ""
    cni_bridge: str = "nodelet0"
    cni_conf_dir: str = "/etc/cni/net.d"
    cni_conf_files: tuple[str, ...] | None = ()  # None: the directory is missing
    host_routes: tuple[tuple[str, str], ...] = ()  # (destination CIDR, device)
    has_cap_sys_resource: bool = True
    manifest_dir: str = "/etc/kubernetes/manifests"
    manifest_dir_mode: int | None = 0o755  # None: missing
    manifest_dir_uid: int = 0
    manifest_files_world_writable: tuple[str, ...] = ()
    disks: tuple[DiskFacts, ...] = ()
    clock_synchronized: bool | None = True  # None: unknown
    # cluster mode: the daemon's /api/v1/extra/cluster (or a direct probe of etcd: {"connected", "lastError",
    # "endpoints"}); None: single node
    cluster: Mapping[str, Any] | None = None
    wall_time: float = 0.0
    agent_cgroup_driver: str = "cgroupfs"  # the agent's cgroupDriver
    resolv_conf: str = "/etc/resolv.conf"  # the file pods' DNS starts from ("" = none)
    resolv_conf_nameservers: tuple[str, ...] | None = ()  # None: unreadable
    systemd_resolved_nameservers: tuple[str, ...] | None = None  # of /run/systemd/resolve/resolv.conf; None: absent


# --- checks (pure) ---------------------------------------------------------------------------------------------------

def check_runtime(f: HostFacts) -> Check:
    if f.runtime_error:
        return Check(name="runtime", status=FAIL, message=f"cannot reach the CRI runtime at {f.runtime_endpoint}: {f.runtime_error}",
                     fix="start containerd (`systemctl start containerd`, or `nodelet runtime setup`) or point "
                         "--runtime-endpoint / containerRuntimeEndpoint at its socket")
    bad = [c for c in f.runtime_conditions if c[0] in ("RuntimeReady", "NetworkReady") and not c[1]]
    if bad:
        detail = "; ".join(f"{t}=false ({r}: {m})" if r or m else f"{t}=false" for t, _, r, m in bad)
        net_only = all(t == "NetworkReady" for t, *_ in bad)
        return Check(name="runtime", status=WARN if net_only else FAIL, message=f"{f.runtime_version} at {f.runtime_endpoint}: {detail}",
                     fix="NetworkReady=false means no CNI config was loaded: set podCIDR so nodelet writes one, or install a CNI "
                         "network" if net_only else "see the runtime's log (journalctl -u containerd)")
    return Check(name="runtime", status=PASS, message=f"{f.runtime_version} at {f.runtime_endpoint}: RuntimeReady, NetworkReady")


def _systemd_cgroup(cfg: dict[str, Any]) -> bool | None:
    runc = (((cfg.get("containerd") or {}).get("runtimes") or {}).get("runc") or {}).get("options") or {}
    if "SystemdCgroup" in runc:
        return bool(runc["SystemdCgroup"])
    if "systemdCgroup" in cfg:
        return bool(cfg["systemdCgroup"])
    return None


def check_cgroups(f: HostFacts) -> Check:
    """The agent's cgroupDriver and the runtime's SystemdCgroup must agree (else pod cgroup names are wrong and
    sandboxes fail to start); the systemd driver needs systemd as init."""
    version = f"cgroup v{f.cgroup_version}"
    systemd = _systemd_cgroup(f.runtime_config)
    runtime = {True: "systemd", False: "cgroupfs", None: "unknown"}[systemd]
    agent = f.agent_cgroup_driver
    msg = (f"{version}, agent cgroupDriver {agent}, runtime cgroup driver {runtime}, "
           f"init {'systemd' if f.init_is_systemd else 'not systemd'}")
    if systemd is not None and runtime != agent:
        want = "true" if agent == "systemd" else "false"
        return Check(name="cgroups", status=FAIL, message=msg + ": they must match, pod sandboxes fail otherwise",
                     fix=f"set SystemdCgroup = {want} in containerd's runc options (nodelet runtime setup / install "
                         f"write it from cgroupDriver), or set cgroupDriver: {runtime}")
    if "systemd" in (agent, runtime) and not f.init_is_systemd:
        return Check(name="cgroups", status=FAIL, message=msg,
                     fix="the systemd cgroup driver needs systemd as init: set cgroupDriver: cgroupfs and "
                         "SystemdCgroup = false")
    if f.cgroup_version == 1:
        return Check(name="cgroups", status=WARN, message=msg,
                     fix="cgroup v1 is in maintenance upstream: boot with systemd.unified_cgroup_hierarchy=1")
    if agent == "cgroupfs" and systemd is False and f.init_is_systemd:
        return Check(name="cgroups", status=WARN, message=msg,
                     fix="with systemd as init, two cgroup managers compete: set cgroupDriver: systemd and "
                         "SystemdCgroup = true, together")
    return Check(name="cgroups", status=PASS, message=msg)


def check_dns(f: HostFacts) -> Check:
    """A loopback nameserver (systemd-resolved's 127.0.0.53) in the pods' resolver file is unreachable from a pod."""
    from kubelet.node.resolvconf import SYSTEMD_RESOLVED_RESOLV_CONF, split_loopback

    if not f.resolv_conf:
        return Check(name="dns", status=PASS, message='resolvConf "": pods get no nameservers from the host')
    if f.resolv_conf_nameservers is None:
        return Check(name="dns", status=FAIL, message=f"{f.resolv_conf} cannot be read: pods get no host nameservers",
                     fix="create it or point resolvConf at the host's resolver file")
    usable, loopback = split_loopback(f.resolv_conf_nameservers)
    if loopback:
        resolved_ok = f.systemd_resolved_nameservers is not None and split_loopback(f.systemd_resolved_nameservers)[0]
        fix = (f"set resolvConf: {SYSTEMD_RESOLVED_RESOLV_CONF} (systemd-resolved's upstream servers, as kubeadm does)"
               if resolved_ok else "point resolvConf at a file whose nameservers pods can reach")
        return Check(name="dns", status=FAIL,
                     message=f"{f.resolv_conf} names loopback nameserver {', '.join(loopback)}: unreachable from "
                             f"pods, left out of their resolv.conf ({len(usable)} usable)", fix=fix)
    return Check(name="dns", status=PASS, message=f"{f.resolv_conf}: nameservers {', '.join(usable) or 'none'}")


def check_ip_forward(f: HostFacts) -> Check:
    if f.ip_forward == "1":
        return Check(name="ip_forward", status=PASS, message="net.ipv4.ip_forward = 1")
    return Check(name="ip_forward", status=FAIL if f.pod_cidr else WARN, message=f"net.ipv4.ip_forward = {f.ip_forward or 'unreadable'}: pod traffic is not routed off the node",
                 fix="sysctl -w net.ipv4.ip_forward=1 and persist it in /etc/sysctl.d/99-nodelet.conf")


def check_br_netfilter(f: HostFacts) -> Check:
    if not f.br_netfilter_loaded:
        return Check(name="br_netfilter", status=WARN if not f.pod_cidr else FAIL,
                     message="br_netfilter is not loaded: service traffic between pods on the bridge bypasses iptables",
                     fix="modprobe br_netfilter and add it to /etc/modules-load.d/nodelet.conf")
    if f.bridge_nf_call_iptables != "1":
        return Check(name="br_netfilter", status=FAIL if f.pod_cidr else WARN,
                     message=f"net.bridge.bridge-nf-call-iptables = {f.bridge_nf_call_iptables}: bridged pod traffic skips service rules",
                     fix="sysctl -w net.bridge.bridge-nf-call-iptables=1 and persist it in /etc/sysctl.d/99-nodelet.conf")
    return Check(name="br_netfilter", status=PASS, message="br_netfilter loaded, net.bridge.bridge-nf-call-iptables = 1")


def check_iptables_backend(f: HostFacts) -> Check:
    nft, legacy = f.iptables_nft_rules, f.iptables_legacy_rules
    if nft is None and legacy is None:
        return Check(name="iptables", status=WARN, message="no iptables tools found", fix="apt-get install iptables")
    if nft and legacy:
        return Check(name="iptables", status=FAIL, message=f"rules in both backends: {nft} nf_tables, {legacy} legacy; "
                     "each tool sees only its half and packets traverse both",
                     fix="use one backend: migrate the legacy rules (iptables-legacy-save | iptables-nft-restore) and flush "
                         "the legacy tables, or update-alternatives --set iptables to the one in use")
    used = "nf_tables" if nft else "legacy" if legacy else "none yet"
    return Check(name="iptables", status=PASS, message=f"one backend in use: {used} ({nft or legacy or 0} rules)")


def check_cni_config(f: HostFacts) -> Check:
    d = f.cni_conf_dir
    if not f.pod_cidr:
        if f.cni_conf_files:
            return Check(name="cni", status=PASS, message=f"podCIDR unset: pods use the runtime's network, {f.cni_conf_files[0]} in {d}")
        return Check(name="cni", status=WARN, message=f"podCIDR unset and no CNI config in {d}: only hostNetwork pods can run",
                     fix="set podCIDR (nodelet writes its conflist) or install a CNI network")
    if f.cni_conf_files is None or not f.cni_conf_files:
        return Check(name="cni", status=FAIL, message=f"no CNI config in {d} (podCIDR {f.pod_cidr}): pod sandboxes cannot get a network",
                     fix="start `nodelet run` with podCIDR set (it writes 00-nodelet.conflist), and check the runtime's "
                         "cni confDir is the same directory")
    first = f.cni_conf_files[0]
    if not first.endswith(NODELET_CONFLIST_SUFFIX):
        return Check(name="cni", status=FAIL, message=f"{first} comes before nodelet's conflist in {d}: the runtime uses the first file",
                     fix=f"remove or rename {os.path.join(d, first)} so nodelet's conflist sorts first")
    return Check(name="cni", status=PASS, message=f"{first} is the first of {len(f.cni_conf_files)} in {d}")


def check_pod_cidr_routes(f: HostFacts) -> Check:
    if not f.pod_cidr:
        return Check(name="pod-cidr", status=PASS, message="podCIDR unset")
    try:
        net = ipaddress.ip_network(f.pod_cidr, strict=False)
    except ValueError:
        return Check(name="pod-cidr", status=FAIL, message=f"podCIDR {f.pod_cidr!r} is not a CIDR", fix="fix podCIDR in the config")
    clashes = []
    for dst, dev in f.host_routes:
        if dst in ("default", "0.0.0.0/0", "::/0") or dev == f.cni_bridge:
            continue
        try:
            other = ipaddress.ip_network(dst, strict=False)
        except ValueError:
            continue
        if other.version == net.version and other.overlaps(net):
            clashes.append(f"{dst} dev {dev}")
    if clashes:
        return Check(name="pod-cidr", status=FAIL, message=f"podCIDR {f.pod_cidr} overlaps host routes: {', '.join(clashes)}",
                     fix="choose a podCIDR that no host network uses (traffic to those hosts would go to pods or vice versa)")
    return Check(name="pod-cidr", status=PASS, message=f"podCIDR {f.pod_cidr} overlaps no host route")


def check_sandbox_image(f: HostFacts) -> Check:
    image = str(f.runtime_config.get("sandboxImage") or "")
    if f.runtime_error:
        return Check(name="sandbox-image", status=WARN, message="runtime unreachable: not checked")
    if not image:
        return Check(name="sandbox-image", status=WARN, message="the runtime does not say which sandbox (pause) image it uses")
    if f.sandbox_image_present:
        return Check(name="sandbox-image", status=PASS, message=f"{image} present")
    return Check(name="sandbox-image", status=WARN, message=f"{image} not present: the first pod pulls it (fails offline)",
                 fix="nodelet runtime images --address <runtime socket> (builds and imports it locally)")


def check_oom_score_adj(f: HostFacts) -> Check:
    restrict = f.runtime_config.get("restrictOOMScoreAdj")
    if f.has_cap_sys_resource:
        return Check(name="oom-score-adj", status=PASS, message=f"CAP_SYS_RESOURCE held (restrict_oom_score_adj {str(bool(restrict)).lower()})")
    if restrict:
        return Check(name="oom-score-adj", status=PASS, message="no CAP_SYS_RESOURCE, and the runtime has restrict_oom_score_adj = true")
    if restrict is None:
        return Check(name="oom-score-adj", status=WARN, message="no CAP_SYS_RESOURCE; whether the runtime restricts oom_score_adj is unknown",
                     fix="set restrict_oom_score_adj = true in containerd's CRI plugin config")
    return Check(name="oom-score-adj", status=FAIL, message="no CAP_SYS_RESOURCE and restrict_oom_score_adj = false: every sandbox fails to start",
                 fix="set restrict_oom_score_adj = true in containerd's CRI plugin config (`nodelet runtime config` shows it)")


def check_manifest_dir(f: HostFacts) -> Check:
    d = f.manifest_dir
    if f.manifest_dir_mode is None:
        return Check(name="manifests", status=WARN, message=f"{d} does not exist: no static pods will run", fix=f"mkdir -m 0755 {d}")
    mode = f.manifest_dir_mode & 0o7777
    if mode & 0o002:
        return Check(name="manifests", status=FAIL, message=f"{d} is world-writable (mode {mode:04o}): anyone on the node can run root pods",
                     fix=f"chmod o-w {d}")
    if f.manifest_files_world_writable:
        return Check(name="manifests", status=FAIL, message=f"world-writable manifests: {', '.join(f.manifest_files_world_writable)}",
                     fix="chmod o-w " + " ".join(os.path.join(d, n) for n in f.manifest_files_world_writable))
    if f.manifest_dir_uid != 0:
        return Check(name="manifests", status=WARN, message=f"{d} is owned by uid {f.manifest_dir_uid}: that user can run root pods",
                     fix=f"chown root {d}")
    if mode & 0o020:
        return Check(name="manifests", status=WARN, message=f"{d} is group-writable (mode {mode:04o}): its group can run root pods",
                     fix=f"chmod g-w {d}")
    return Check(name="manifests", status=PASS, message=f"{d} mode {mode:04o}, owned by root")


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f}GiB"


def check_disk(f: HostFacts) -> Check:
    if not f.disks:
        return Check(name="disk", status=WARN, message="no disk facts")
    worst = PASS
    parts, fixes = [], []
    for dk in f.disks:
        free = dk.free_bytes / dk.total_bytes if dk.total_bytes else 0.0
        parts.append(f"{dk.label} {dk.path}: {_gib(dk.free_bytes)} free ({free:.0%})")
        if free < dk.min_free:
            worst = FAIL
            fixes.append(f"free space under {dk.path} (below {dk.min_free:.0%} the kubelet evicts pods)")
        elif free < 2 * dk.min_free and worst != FAIL:
            worst = WARN
            fixes.append(f"free space under {dk.path} soon (eviction at {dk.min_free:.0%})")
    return Check(name="disk", status=worst, message="; ".join(parts), fix="; ".join(fixes))


def check_clock(f: HostFacts) -> Check:
    year = time.gmtime(f.wall_time).tm_year
    if year < 2024:
        return Check(name="clock", status=FAIL, message=f"the clock says {year}: TLS, log timestamps and ages are wrong",
                     fix="set the time (timedatectl set-ntp true, or chronyd/systemd-timesyncd)")
    if f.clock_synchronized is False:
        return Check(name="clock", status=WARN, message="the kernel clock is not synchronized (adjtimex: STA_UNSYNC)",
                     fix="run an NTP client (systemd-timesyncd, chrony)")
    if f.clock_synchronized is None:
        return Check(name="clock", status=WARN, message="clock synchronization unknown")
    return Check(name="clock", status=PASS, message="synchronized (adjtimex)")


def check_etcd(f: HostFacts) -> Check | None:
    """Cluster mode only: is etcd reachable, and is the cluster data clean?"""
    c = f.cluster
    if c is None:
        return None
    if not c.get("connected"):
        return Check(name="etcd", status=FAIL,
                     message=f"etcd unreachable ({', '.join(c.get('endpoints') or [])}): {c.get('lastError') or 'not connected'}; "
                             "pods and rules keep their last known state",
                     fix="start etcd / check etcdEndpoints, the network and etcdCAFile/etcdCertFile/etcdKeyFile")
    errors = list(c.get("errors") or [])
    if errors:
        return Check(name="etcd", status=WARN, message=f"{len(errors)} problem(s) in the cluster data, first: {errors[0]}",
                     fix="`nodelet cluster status` lists them; fix or delete the keys named")
    return Check(name="etcd", status=PASS, message=c.get("detail") or f"connected to {c.get('endpoint', '?')}")


CHECKS: tuple[Callable[[HostFacts], Check | None], ...] = (
    check_runtime, check_cgroups, check_ip_forward, check_br_netfilter, check_iptables_backend, check_cni_config,
    check_pod_cidr_routes, check_sandbox_image, check_oom_score_adj, check_manifest_dir, check_disk, check_clock,
    check_dns, check_etcd,
)


def compute_checks(f: HostFacts) -> list[Check]:
    return [c for c in (check(f) for check in CHECKS) if c is not None]


def render_checks(checks: Sequence[Check], *, colour: Callable[[str, str], str] = lambda s, _: s) -> str:
    width = max(len(c.name) for c in checks) + 2
    colours = {PASS: "green", WARN: "yellow", FAIL: "red"}
    out = []
    for c in checks:
        out.append(f"{colour(c.status, colours[c.status])}  {c.name.ljust(width)}{c.message}")
        if c.fix and c.status != PASS:
            out.append(f"{'':6}{'':{width}}fix: {c.fix}")
    n = {s: sum(1 for c in checks if c.status == s) for s in (PASS, WARN, FAIL)}
    out.append(f"{len(checks)} checks: {n[PASS]} passed, {n[WARN]} warning{'s' if n[WARN] != 1 else ''}, {n[FAIL]} failed")
    return "\n".join(out) + "\n"


def render_checks_json(checks: Sequence[Check]) -> str:
    return json.dumps({"checks": [asdict(c) for c in checks]}, indent=2) + "\n"


# --- gathering (read-only) -------------------------------------------------------------------------------------------

def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            return fh.read().strip()
    except OSError:
        return None


def _has_cap(bit: int) -> bool:
    for line in (_read("/proc/self/status") or "").splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> bit & 1)
    return False


def _count_rules(tool: str) -> int | None:
    exe = shutil.which(tool)
    if exe is None:
        return None
    try:
        out = subprocess.run([exe], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    return sum(1 for line in out.splitlines() if line.startswith("-A "))


def _legacy_rules() -> int | None:
    # Only when the legacy tables are already in use: running iptables-legacy-save would load ip_tables otherwise.
    if not os.path.exists("/proc/net/ip_tables_names") or not (_read("/proc/net/ip_tables_names") or "").strip():
        return 0 if shutil.which("iptables-legacy-save") else None
    return _count_rules("iptables-legacy-save")


def _routes() -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    for family in ("-4", "-6"):
        try:
            text = subprocess.run(["ip", "-j", family, "route", "show", "table", "main"], capture_output=True, text=True, timeout=10).stdout
            for r in json.loads(text or "[]"):
                out.append((str(r.get("dst", "")), str(r.get("dev", ""))))
        except (OSError, ValueError, subprocess.TimeoutExpired):
            continue
    return tuple(out)


class _Timex(ctypes.Structure):
    _fields_ = [("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long), ("maxerror", ctypes.c_long),
                ("esterror", ctypes.c_long), ("status", ctypes.c_int), ("pad", ctypes.c_long * 40)]


def _clock_synchronized() -> bool | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        tx = _Timex()  # modes = 0: read only
        state = libc.adjtimex(ctypes.byref(tx))
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return state != 5 and not tx.status & 0x0040  # TIME_ERROR, STA_UNSYNC


def _disk(label: str, path: str, min_free: float) -> DiskFacts | None:
    p = path
    while p and not os.path.exists(p):
        p = os.path.dirname(p)
    try:
        st = os.statvfs(p or "/")
    except OSError:
        return None
    return DiskFacts(label=label, path=path, free_bytes=st.f_bavail * st.f_frsize, total_bytes=st.f_blocks * st.f_frsize, min_free=min_free)


async def _runtime_facts(endpoint: str) -> dict[str, Any]:
    import cri

    out: dict[str, Any] = {"runtime_endpoint": endpoint}
    try:
        async with cri.RuntimeClient(endpoint, timeout=5) as c:
            v = await c.version()
            out["runtime_version"] = f"{v.runtime_name} {v.runtime_version}"
            st = await c.status(verbose=True)
            out["runtime_conditions"] = tuple((x.type, x.status, x.reason, x.message) for x in st.conditions)
            try:
                out["runtime_config"] = json.loads(st.info.get("config") or "{}")
            except ValueError:
                out["runtime_config"] = {}
            image = out["runtime_config"].get("sandboxImage")
            if image:
                out["sandbox_image_present"] = await c.image_status(image) is not None
    except cri.CRIError as e:
        out["runtime_error"] = e.message
    return out


def _nameservers(path: str) -> tuple[str, ...] | None:
    from kubelet.node.resolvconf import parse_nameservers

    text = _read(path)
    return None if text is None else parse_nameservers(text)


def gather_facts(*, endpoint: str, pod_cidr: str, cni_bridge: str, cni_conf_dir: str, manifest_dir: str, pod_logs_dir: str,
                 cgroup_driver: str = "cgroupfs", resolv_conf: str | None = None) -> HostFacts:
    """One read-only snapshot of this host (no module loads, no writes). ``resolv_conf`` None: as the agent
    chooses it (kubeadm's systemd-resolved rule)."""
    from kubelet.node.resolvconf import SYSTEMD_RESOLVED_RESOLV_CONF, compute_resolv_conf

    resolv = compute_resolv_conf(resolv_conf)
    import asyncio

    from kubelet.cli.common import missing_socket

    reason = missing_socket(endpoint)
    rt: dict[str, Any] = {"runtime_endpoint": endpoint, "runtime_error": reason} if reason else asyncio.run(_runtime_facts(endpoint))
    cfg = rt.get("runtime_config") or {}
    conf_dir = (cfg.get("cni") or {}).get("confDir") or cni_conf_dir  # the directory the runtime really reads
    try:
        conf_files: tuple[str, ...] | None = tuple(sorted(n for n in os.listdir(conf_dir) if n.endswith(CNI_EXTS)))
    except OSError:
        conf_files = None
    try:
        mst = os.stat(manifest_dir)
        mode: int | None = stat.S_IMODE(mst.st_mode)
        uid = mst.st_uid
        ww = []
        if stat.S_ISDIR(mst.st_mode):
            for n in sorted(os.listdir(manifest_dir)):
                try:
                    if os.stat(os.path.join(manifest_dir, n)).st_mode & 0o002:
                        ww.append(n)
                except OSError:
                    pass
    except OSError:
        mode, uid, ww = None, 0, []
    image_root = cfg.get("containerdRootDir") or "/var/lib/containerd"
    disks = tuple(d for d in (_disk("pod logs", pod_logs_dir, NODEFS_MIN_FREE), _disk("images", image_root, IMAGEFS_MIN_FREE)) if d)
    return HostFacts(
        **rt, cgroup_version=2 if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else 1,
        init_is_systemd=os.path.isdir("/run/systemd/system"),
        ip_forward=_read("/proc/sys/net/ipv4/ip_forward"), br_netfilter_loaded=os.path.isdir("/sys/module/br_netfilter"),
        bridge_nf_call_iptables=_read("/proc/sys/net/bridge/bridge-nf-call-iptables"),
        iptables_nft_rules=_count_rules("iptables-nft-save"), iptables_legacy_rules=_legacy_rules(),
        pod_cidr=pod_cidr, cni_bridge=cni_bridge, cni_conf_dir=conf_dir, cni_conf_files=conf_files, host_routes=_routes(),
        has_cap_sys_resource=_has_cap(CAP_SYS_RESOURCE), manifest_dir=manifest_dir, manifest_dir_mode=mode,
        manifest_dir_uid=uid, manifest_files_world_writable=tuple(ww), disks=disks,
        clock_synchronized=_clock_synchronized(), wall_time=time.time(),
        agent_cgroup_driver=cgroup_driver, resolv_conf=resolv,
        resolv_conf_nameservers=_nameservers(resolv) if resolv else (),
        systemd_resolved_nameservers=_nameservers(SYSTEMD_RESOLVED_RESOLV_CONF),
    )
