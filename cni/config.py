"""Parse and validate what a CNI runtime hands the plugin (env + stdin config), and render nodelet's conflist.

Everything here is pure except `ensure_conflist`. Validation errors carry the spec code and name the field:
`InvalidEnvironment` (4) for env vars, `DecodeFailure` (6) for stdin that is not JSON, `IncompatibleVersion` (1),
`UnsupportedField` (2), `InvalidConfig` (7).
"""
from __future__ import annotations

import ipaddress
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, NewType

from .errors import DecodeFailure, IncompatibleVersion, InvalidConfig, InvalidEnvironment, UnsupportedField
from .fsutil import write_if_changed

ContainerId = NewType("ContainerId", str)
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

PLUGIN_TYPE = "nodelet-cni"
DEFAULT_NETWORK = "nodelet"
DEFAULT_BRIDGE = "nodelet0"
DEFAULT_DATA_DIR = "/var/lib/cni/networks"
SUPPORTED_VERSIONS = ("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
LATEST_VERSION = "1.1.0"
COMMANDS = ("ADD", "DEL", "CHECK", "VERSION", "GC", "STATUS")

_ID_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$")
# Fields of the reference bridge plugin nodelet-cni does not implement: refused (code 2) when set to a true value.
_UNSUPPORTED_BRIDGE_FIELDS = ("vlan", "vlanTrunk", "preserveDefaultVlan", "macspoofchk", "enabledad",
                              "disableContainerInterface", "portIsolation")


def parse_version(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in v.split("."))


# --- environment ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class Env:
    command: str
    container_id: ContainerId = ContainerId("")
    netns: str = ""
    ifname: str = ""
    args: Mapping[str, str] = field(default_factory=dict)
    path: str = ""


_REQUIRED_ENV = {
    "ADD": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"),
    "CHECK": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"),
    "DEL": ("CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH"),
    "GC": ("CNI_PATH",),
    "STATUS": ("CNI_PATH",),
    "VERSION": (),
}
_KNOWN_ARGS = {"IgnoreUnknown", "IP", "MAC", "K8S_POD_NAMESPACE", "K8S_POD_NAME", "K8S_POD_INFRA_CONTAINER_ID",
               "K8S_POD_UID"}


def validate_ifname(name: str, what: str) -> str | None:
    """Reason why `name` is not a valid Linux interface name, or None (same rules as libcni's skel)."""
    if not name:
        return f"{what} is empty"
    if len(name) > 15:
        return f"{what} {name!r} is longer than 15 characters"
    if name in (".", ".."):
        return f"{what} {name!r} is not a valid interface name"
    if any(c in name for c in "/:") or any(c.isspace() for c in name):
        return f"{what} {name!r} contains '/', ':' or whitespace"
    return None


def parse_cni_args(raw: str) -> dict[str, str]:
    """`K=V;K=V` → dict; unknown keys are an error unless IgnoreUnknown=1/true (libcni's LoadArgs rule)."""
    out: dict[str, str] = {}
    if not raw:
        return out
    for part in raw.split(";"):
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise InvalidEnvironment(f"CNI_ARGS: invalid pair {part!r}, expected KEY=VALUE")
        out[key] = value
    ignore = out.get("IgnoreUnknown", "").lower() in ("1", "true")
    unknown = sorted(set(out) - _KNOWN_ARGS)
    if unknown and not ignore:
        raise InvalidEnvironment(f"CNI_ARGS: unknown key(s) {', '.join(unknown)} (set IgnoreUnknown=1 to ignore)")
    return out


def parse_env(environ: Mapping[str, str]) -> Env:
    command = environ.get("CNI_COMMAND", "")
    if not command:
        raise InvalidEnvironment("required env variables [CNI_COMMAND] missing")
    if command not in COMMANDS:
        raise InvalidEnvironment(f"CNI_COMMAND: unknown command {command!r} (expected one of {', '.join(COMMANDS)})")
    missing = [k for k in _REQUIRED_ENV[command] if not environ.get(k)]
    if missing:
        raise InvalidEnvironment(f"required env variables [{','.join(missing)}] missing")
    cid = environ.get("CNI_CONTAINERID", "")
    if cid and not _ID_RE.match(cid):
        raise InvalidEnvironment(f"CNI_CONTAINERID: invalid characters in container id {cid!r}")
    ifname = environ.get("CNI_IFNAME", "")
    if ifname and (why := validate_ifname(ifname, "CNI_IFNAME")):
        raise InvalidEnvironment(why)
    return Env(command=command, container_id=ContainerId(cid), netns=environ.get("CNI_NETNS", ""), ifname=ifname,
               args=parse_cni_args(environ.get("CNI_ARGS", "")), path=environ.get("CNI_PATH", ""))


# --- network config ------------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class Range:
    subnet: IPNetwork
    start: IPAddress
    end: IPAddress
    gateway: IPAddress


@dataclass(frozen=True, kw_only=True)
class Route:
    dst: IPNetwork
    gw: IPAddress | None = None


@dataclass(frozen=True, kw_only=True)
class IpamConf:
    range_sets: tuple[tuple[Range, ...], ...]
    routes: tuple[Route, ...] = ()
    data_dir: str = DEFAULT_DATA_DIR


@dataclass(frozen=True, kw_only=True)
class Attachment:
    container_id: ContainerId
    ifname: str


@dataclass(frozen=True, kw_only=True)
class NetConf:
    cni_version: str
    name: str
    type: str = PLUGIN_TYPE
    bridge: str = DEFAULT_BRIDGE
    is_gateway: bool = False
    is_default_gateway: bool = False
    force_address: bool = False
    ip_masq: bool = False
    # nodelet's key "ipMasqExempt": more destinations pods reach with their own source IP (cluster mode: the whole
    # clusterCIDR, so pod-to-pod traffic across nodes is not masqueraded; flannel does the same)
    ip_masq_exempt: tuple[IPNetwork, ...] = ()
    hairpin_mode: bool = False
    promisc_mode: bool = False
    mtu: int = 0
    ipam: IpamConf | None = None
    dns: Mapping[str, Any] = field(default_factory=dict)
    runtime_ips: tuple[str, ...] = ()
    runtime_mac: str = ""  # runtimeConfig.mac (the `mac` capability), normalised; "" when not asked for
    prev_result: Mapping[str, Any] | None = None
    valid_attachments: tuple[Attachment, ...] | None = None

    @property
    def store_dir(self) -> str:
        assert self.ipam is not None
        return os.path.join(self.ipam.data_dir, self.name)


def _bool(conf: Mapping[str, Any], key: str, prefix: str = "") -> bool:
    v = conf.get(key, False)
    if not isinstance(v, bool):
        raise InvalidConfig(f"{prefix}{key}: expected true or false, got {v!r}")
    return v


def _str(conf: Mapping[str, Any], key: str, default: str, prefix: str = "") -> str:
    v = conf.get(key, default)
    if not isinstance(v, str):
        raise InvalidConfig(f"{prefix}{key}: expected a string, got {v!r}")
    return v


def _net(value: Any, where: str) -> IPNetwork:
    if not isinstance(value, str):
        raise InvalidConfig(f"{where}: expected a CIDR string, got {value!r}")
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError as e:
        raise InvalidConfig(f"{where}: invalid CIDR {value!r}: {e}") from None


def _addr(value: Any, where: str) -> IPAddress:
    if not isinstance(value, str):
        raise InvalidConfig(f"{where}: expected an IP address string, got {value!r}")
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        raise InvalidConfig(f"{where}: invalid IP address {value!r}") from None


def parse_range(raw: Any, where: str) -> Range:
    """One host-local range: subnet (required), rangeStart/rangeEnd/gateway defaulted like host-local."""
    if not isinstance(raw, Mapping):
        raise InvalidConfig(f"{where}: expected an object, got {raw!r}")
    if "subnet" not in raw:
        raise InvalidConfig(f"{where}.subnet: missing")
    subnet = _net(raw["subnet"], f"{where}.subnet")
    if subnet.prefixlen > subnet.max_prefixlen - 2:
        raise InvalidConfig(f"{where}.subnet: network {subnet} too small to allocate from (needs /"
                            f"{subnet.max_prefixlen - 2} or larger)")
    first = subnet.network_address + 1
    last = subnet.broadcast_address - (1 if subnet.version == 4 else 0)
    start = _addr(raw["rangeStart"], f"{where}.rangeStart") if "rangeStart" in raw else first
    end = _addr(raw["rangeEnd"], f"{where}.rangeEnd") if "rangeEnd" in raw else last
    gateway = _addr(raw["gateway"], f"{where}.gateway") if "gateway" in raw else first
    for key, ip in (("rangeStart", start), ("rangeEnd", end), ("gateway", gateway)):
        if ip.version != subnet.version or ip not in subnet:
            raise InvalidConfig(f"{where}.{key}: {ip} is not in subnet {subnet}")
    if start < first or end > last:
        raise InvalidConfig(f"{where}: range {start}-{end} includes the network or broadcast address of {subnet}")
    if start > end:
        raise InvalidConfig(f"{where}: rangeStart {start} is after rangeEnd {end}")
    return Range(subnet=subnet, start=start, end=end, gateway=gateway)


def parse_ipam(raw: Any) -> IpamConf:
    if not isinstance(raw, Mapping):
        raise InvalidConfig(f"ipam: expected an object, got {raw!r}")
    itype = raw.get("type")
    if itype != "host-local":
        raise UnsupportedField(f"ipam.type: {itype!r} is not supported; nodelet-cni has host-local built in "
                               f"(use \"type\": \"host-local\")")
    if "ranges" in raw and "subnet" in raw:
        raise InvalidConfig("ipam: give either ranges or subnet, not both")
    if "ranges" in raw:
        ranges = raw["ranges"]
        if not isinstance(ranges, list) or not ranges:
            raise InvalidConfig(f"ipam.ranges: expected a non-empty list of range sets, got {ranges!r}")
        sets: list[tuple[Range, ...]] = []
        for i, rs in enumerate(ranges):
            if not isinstance(rs, list) or not rs:
                raise InvalidConfig(f"ipam.ranges[{i}]: expected a non-empty list of ranges, got {rs!r}")
            sets.append(tuple(parse_range(r, f"ipam.ranges[{i}][{j}]") for j, r in enumerate(rs)))
    elif "subnet" in raw:
        legacy = {k: raw[k] for k in ("subnet", "rangeStart", "rangeEnd", "gateway") if k in raw}
        sets = [(parse_range(legacy, "ipam"),)]
    else:
        raise InvalidConfig("ipam.ranges: missing (give ranges or subnet)")
    seen: list[tuple[str, Range]] = []
    for i, rs in enumerate(sets):
        if len({r.subnet.version for r in rs}) != 1:
            raise InvalidConfig(f"ipam.ranges[{i}]: mixes IPv4 and IPv6 ranges")
        for j, r in enumerate(rs):
            for where, other in seen:
                if r.subnet.version == other.subnet.version and r.start <= other.end and other.start <= r.end:
                    raise InvalidConfig(f"ipam.ranges[{i}][{j}]: overlaps {where}")
            seen.append((f"ipam.ranges[{i}][{j}]", r))
    routes_raw = raw.get("routes", [])
    if not isinstance(routes_raw, list):
        raise InvalidConfig(f"ipam.routes: expected a list, got {routes_raw!r}")
    routes = tuple(parse_route(r, f"ipam.routes[{i}]") for i, r in enumerate(routes_raw))
    data_dir = _str(raw, "dataDir", DEFAULT_DATA_DIR, "ipam.")
    if not os.path.isabs(data_dir):
        raise InvalidConfig(f"ipam.dataDir: {data_dir!r} is not an absolute path")
    return IpamConf(range_sets=tuple(sets), routes=routes, data_dir=data_dir)


def parse_route(raw: Any, where: str) -> Route:
    if not isinstance(raw, Mapping) or "dst" not in raw:
        raise InvalidConfig(f"{where}: expected an object with dst, got {raw!r}")
    dst = _net(raw["dst"], f"{where}.dst")
    gw = _addr(raw["gw"], f"{where}.gw") if raw.get("gw") else None
    if gw is not None and gw.version != dst.version:
        raise InvalidConfig(f"{where}: gw {gw} and dst {dst} are different IP versions")
    return Route(dst=dst, gw=gw)


_MAC_RE = re.compile(r"^[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}$")


def parse_mac(text: str, where: str) -> str:
    """A unicast Ethernet MAC, normalised to lower-case colon form; InvalidConfig naming `where` otherwise."""
    if not _MAC_RE.match(text):
        raise InvalidConfig(f"{where}: {text!r} is not a MAC address (expected 6 hex bytes like 0a:58:0a:f4:00:02)")
    mac = text.replace("-", ":").lower()
    if int(mac[:2], 16) & 1:
        raise InvalidConfig(f"{where}: {text!r} is a multicast address; a container interface needs a unicast MAC")
    return mac


def compute_container_mac(env: Env, conf: NetConf) -> str:
    """The MAC asked for the container interface: runtimeConfig.mac (the `mac` capability) over CNI_ARGS MAC=,
    as the reference bridge plugin; "" for a random one."""
    if conf.runtime_mac:
        return conf.runtime_mac
    mac = env.args.get("MAC", "")
    return parse_mac(mac, "CNI_ARGS MAC") if mac else ""


def parse_netconf(stdin: bytes, *, command: str = "ADD") -> NetConf:
    """stdin config → NetConf. `command` decides what is required (ipam for ADD/CHECK, not for DEL/GC/STATUS)."""
    try:
        raw = json.loads(stdin or b"null")
    except (ValueError, UnicodeDecodeError) as e:
        raise DecodeFailure(f"failed to decode network config from stdin: {e}") from None
    if not isinstance(raw, dict):
        raise DecodeFailure(f"network config on stdin must be a JSON object, got {type(raw).__name__}")
    version = raw.get("cniVersion")
    if version is None or version == "":
        raise InvalidConfig("cniVersion: missing")
    if not isinstance(version, str) or version not in SUPPORTED_VERSIONS:
        raise IncompatibleVersion(f"cniVersion: incompatible CNI version {version!r}; plugin supports "
                                  f"{', '.join(SUPPORTED_VERSIONS)}")
    name = raw.get("name")
    if not isinstance(name, str) or not _ID_RE.match(name):
        raise InvalidConfig(f"name: missing or invalid network name {name!r}")
    bridge = _str(raw, "bridge", DEFAULT_BRIDGE)
    if why := validate_ifname(bridge, "bridge"):
        raise InvalidConfig(why)
    for key in _UNSUPPORTED_BRIDGE_FIELDS:
        if raw.get(key):
            raise UnsupportedField(f"{key}: {json.dumps(raw[key])} is not supported by nodelet-cni")
    mtu = raw.get("mtu", 0)
    if not isinstance(mtu, int) or isinstance(mtu, bool) or (mtu != 0 and not 68 <= mtu <= 65535):
        raise InvalidConfig(f"mtu: expected 0 (kernel default) or an integer 68-65535, got {mtu!r}")
    ipam = None
    if "ipam" in raw and raw["ipam"] not in (None, {}):
        ipam = parse_ipam(raw["ipam"])
    elif command in ("ADD", "CHECK", "DEL", "GC", "STATUS"):
        raise InvalidConfig("ipam: missing (nodelet-cni needs {\"type\": \"host-local\", \"ranges\": ...})")
    dns = raw.get("dns", {})
    if not isinstance(dns, Mapping):
        raise InvalidConfig(f"dns: expected an object, got {dns!r}")
    rc = raw.get("runtimeConfig", {}) or {}
    if not isinstance(rc, Mapping):
        raise InvalidConfig(f"runtimeConfig: expected an object, got {rc!r}")
    ips = rc.get("ips", []) or []
    args = raw.get("args", {}) or {}
    if isinstance(args, Mapping) and isinstance(args.get("cni"), Mapping):
        ips = list(ips) + list(args["cni"].get("ips", []) or [])
    if not isinstance(ips, list) or not all(isinstance(i, str) for i in ips):
        raise InvalidConfig(f"runtimeConfig.ips: expected a list of IP strings, got {ips!r}")
    mac = rc.get("mac", "") or ""
    if not isinstance(mac, str):
        raise InvalidConfig(f"runtimeConfig.mac: expected a MAC address string, got {mac!r}")
    mac = parse_mac(mac, "runtimeConfig.mac") if mac else ""
    prev = raw.get("prevResult")
    if prev is not None and not isinstance(prev, Mapping):
        raise InvalidConfig(f"prevResult: expected an object, got {prev!r}")
    valid = None
    if "cni.dev/valid-attachments" in raw:
        va = raw["cni.dev/valid-attachments"] or []
        if not isinstance(va, list):
            raise InvalidConfig(f"cni.dev/valid-attachments: expected a list, got {va!r}")
        items = []
        for i, a in enumerate(va):
            if not isinstance(a, Mapping) or not isinstance(a.get("containerID"), str) \
                    or not isinstance(a.get("ifname"), str):
                raise InvalidConfig(f"cni.dev/valid-attachments[{i}]: expected {{containerID, ifname}}, got {a!r}")
            items.append(Attachment(container_id=ContainerId(a["containerID"]), ifname=a["ifname"]))
        valid = tuple(items)
    elif command == "GC":  # never read a missing list as "nothing is valid": that would wipe every pod
        raise InvalidConfig("cni.dev/valid-attachments: required for GC")
    is_default_gateway = _bool(raw, "isDefaultGateway")
    exempt_raw = raw.get("ipMasqExempt", []) or []
    if not isinstance(exempt_raw, list):
        raise InvalidConfig(f"ipMasqExempt: expected a list of CIDRs, got {exempt_raw!r}")
    exempt = []
    for i, c in enumerate(exempt_raw):
        try:
            exempt.append(ipaddress.ip_network(c, strict=False))
        except (TypeError, ValueError):
            raise InvalidConfig(f"ipMasqExempt[{i}]: expected a CIDR, got {c!r}") from None
    return NetConf(cni_version=version, name=name, type=_str(raw, "type", PLUGIN_TYPE), bridge=bridge,
                   # like the reference: a default gateway must be a gateway
                   is_gateway=_bool(raw, "isGateway") or is_default_gateway, is_default_gateway=is_default_gateway,
                   force_address=_bool(raw, "forceAddress"), ip_masq=_bool(raw, "ipMasq"),
                   ip_masq_exempt=tuple(exempt), hairpin_mode=_bool(raw, "hairpinMode"), promisc_mode=_bool(raw, "promiscMode"), mtu=mtu,
                   ipam=ipam, dns=dns, runtime_ips=tuple(ips), runtime_mac=mac, prev_result=prev, valid_attachments=valid)


# --- conflist for the runtime --------------------------------------------------------------------------------
CONFLIST_NAME = "00-nodelet.conflist"
_CONF_EXTS = (".conf", ".conflist", ".json")


def render_conflist(*, pod_cidr: str, bridge: str = DEFAULT_BRIDGE, name: str = DEFAULT_NETWORK,
                    cni_version: str = "1.0.0", ip_masq: bool = True, hairpin_mode: bool = True, mtu: int = 0,
                    data_dir: str | None = None, portmap: bool = True, force_address: bool = True,
                    ip_masq_exempt: tuple[str, ...] = ()) -> dict[str, Any]:
    """The conflist containerd should load: nodelet-cni (bridge + built-in host-local) then, optionally, the
    reference portmap plugin for hostPort. cniVersion 1.0.0 by default because Debian's portmap (1.1.1) does not
    speak 1.1.0; pass cni_version="1.1.0" to get GC/STATUS from a runtime that supports them. forceAddress is on
    because the bridge is nodelet's own: after a podCIDR change its gateway address is replaced instead of every
    ADD failing with "already has an IP address different from ..." (the reference's default)."""
    subnet = ipaddress.ip_network(pod_cidr, strict=False)
    ipam: dict[str, Any] = {"type": "host-local", "ranges": [[{"subnet": str(subnet)}]],
                            "routes": [{"dst": "0.0.0.0/0" if subnet.version == 4 else "::/0"}]}
    if data_dir:
        ipam["dataDir"] = data_dir
    plugin: dict[str, Any] = {"type": PLUGIN_TYPE, "bridge": bridge, "isGateway": True, "isDefaultGateway": True,
                              "forceAddress": force_address, "ipMasq": ip_masq, "hairpinMode": hairpin_mode,
                              "ipam": ipam}
    if mtu:
        plugin["mtu"] = mtu
    if ip_masq_exempt:
        plugin["ipMasqExempt"] = list(ip_masq_exempt)
    plugins: list[dict[str, Any]] = [plugin]
    if portmap:
        plugins.append({"type": "portmap", "capabilities": {"portMappings": True}})
    plugin["capabilities"] = {"mac": True}  # a runtime may pass runtimeConfig.mac (podman --mac-address does)
    conflist = {"cniVersion": cni_version, "name": name, "plugins": plugins}
    parse_netconf(json.dumps({"cniVersion": cni_version, "name": name, **plugin}).encode())  # validate
    return conflist


def compute_conflist_name(existing: list[str]) -> str:
    """A file name sorting before every other config file (the runtime loads the first one)."""
    foreign = sorted(n for n in existing if n.endswith(_CONF_EXTS) and not n.endswith("-nodelet.conflist"))
    name = CONFLIST_NAME
    for prefix in ("00-", "0-", "-", "+", "!"):
        name = f"{prefix}nodelet.conflist"
        if not foreign or name < foreign[0]:
            return name
    return name


def ensure_conflist(conf_dir: str | os.PathLike[str], conflist: Mapping[str, Any]) -> Path:
    """Write `conflist` atomically as the first config file of `conf_dir`; idempotent; other files untouched
    (an older nodelet conflist under another of our names is replaced)."""
    d = Path(conf_dir)
    d.mkdir(parents=True, exist_ok=True)
    existing = [p.name for p in d.iterdir()]
    name = compute_conflist_name(existing)
    path = d / name
    data = (json.dumps(conflist, indent=2) + "\n").encode()
    write_if_changed(path, data, mode=0o644, tmp_prefix=".nodelet-conflist.")
    for other in existing:
        if other != name and other.endswith("nodelet.conflist") and other in {
                f"{p}nodelet.conflist" for p in ("00-", "0-", "-", "+", "!")}:
            (d / other).unlink(missing_ok=True)
    return path

