"""The agent's configuration: KubeletConfiguration files as they are, nodelet's own settings, flags (pure).

``load_config(path, overrides)`` reads the file: one YAML document or several separated by ``---``. A
``kubelet.config.k8s.io/v1beta1`` ``KubeletConfiguration`` (kubeadm's, say) is accepted as is: the fields nodelet
implements follow upstream semantics and defaults (a zero Duration such as ``fileCheckFrequency: 0s`` means the
default), the fields it does not implement end up in ``NodeletConfig.warnings`` (one Warning, see
``kubelet.config_v1beta1``). nodelet's own settings live in a ``nodelet.io/v1alpha1`` ``NodeletConfiguration``
document (or a bare mapping), which also takes every upstream field nodelet implements. Flags (keyed by the YAML key
name) win over the file. A misspelt key is an error naming the closest known one; bad values raise
:class:`ConfigError` naming the file (or flag), the key and the reason.
``config_keys()`` describes every key (type, default, help) for the README table and the CLI flags. Adding a key is
one row in ``_KEYS`` plus its ``NodeletConfig`` field.
"""
from __future__ import annotations

import difflib
import ipaddress
import os
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any
from kubelet.errors import PermanentError

from kubelet import config_v1beta1 as v1beta1


__all__ = [
    "API_VERSION", "KIND", "ConfigError", "ConfigKey", "NodeletConfig", "config_keys", "load_config",
    "parse_duration", "parse_quantity",
]

API_VERSION = "nodelet.io/v1alpha1"
KIND = "NodeletConfiguration"


class ConfigError(PermanentError, ValueError):
    """The configuration is unusable. ``str()`` is ``<file or flag>: <key>: <reason>``."""

    def __init__(self, *, where: str, key: str, reason: str) -> None:
        self.where = where
        self.key = key
        self.reason = reason
        super().__init__(f"{where}: {key}: {reason}" if key else f"{where}: {reason}")


@dataclass(frozen=True, kw_only=True)
class NodeletConfig:
    static_pod_path: str = "/etc/kubernetes/manifests"
    container_runtime_endpoint: str = "unix:///run/containerd/containerd.sock"
    node_name: str = ""  # load_config fills in the lowercased hostname
    pod_cidr: str = ""
    node_ip: str = ""
    cluster_dns: tuple[str, ...] = ()
    cluster_domain: str = "cluster.local"
    pod_logs_dir: str = "/var/log/pods"
    root_dir: str = "/var/lib/nodelet"
    healthz_bind_address: str = "127.0.0.1"
    healthz_port: int = 10248
    file_check_frequency: float = 20.0  # seconds
    sync_frequency: float = 60.0  # seconds
    max_pods: int = 110
    api_socket: str = "/run/nodelet/nodelet.sock"
    cni_conf_dir: str = "/etc/cni/net.d"
    cni_bin_dir: str = "/opt/cni/bin"
    cni_bridge: str = "nodelet0"
    cni_gc_period: float = 300.0  # seconds
    proxy_mode: str = "iptables"  # iptables | nftables | none
    service_cidr: str = "10.96.0.0/12"
    node_port_range: tuple[int, int] = (30000, 32767)
    etcd_endpoints: tuple[str, ...] = ()
    etcd_ca_file: str = ""
    etcd_cert_file: str = ""
    etcd_key_file: str = ""
    etcd_prefix: str = "/nodelet"
    cluster_cidr: str = ""
    node_cidr_mask_size: int = 24
    node_lease_duration_seconds: int = 10
    container_log_max_size: int = 10 * 1024 * 1024  # bytes
    container_log_max_files: int = 5
    image_gc_high_threshold_percent: int = 85
    image_gc_low_threshold_percent: int = 80
    resolv_conf: str | None = None  # None: not set, detected at start as kubeadm does (systemd-resolved)
    cgroup_driver: str = "cgroupfs"  # cgroupfs | systemd
    metrics_bind_address: str = "127.0.0.1:10247"  # host:port of the plain-HTTP metrics server ("": off)
    api_bind_address: str = "127.0.0.1"
    api_port: int = 10443
    admin_kubeconfig: str = "/etc/nodelet/admin.conf"
    # not a key: what load_config accepted and ignores (upstream fields nodelet does not implement), for one Warning
    warnings: tuple[str, ...] = field(default=(), compare=False)


@dataclass(frozen=True, kw_only=True)
class ConfigKey:
    """One configuration key as documented: YAML key, attribute, flag, type, default (as written in YAML), help."""

    key: str
    attr: str
    flag: str
    type: str
    default: str
    help: str


# ---------------------------------------------------------------------------------------------------------------------
# value parsers: each takes the raw value and whether it came from a flag (a string), returns the typed value or
# raises ValueError with the reason.

_DURATION_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_QUANTITY_RE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")
_QUANTITY_UNITS = {None: 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
                   "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}


def parse_duration(text: str) -> float:
    """A Go duration ("20s", "1m30s", "500ms", "1.5h", "0") as float seconds. Negative durations are refused."""
    text = text.strip()
    if text == "0":
        return 0.0
    if not text:
        raise ValueError("empty duration")
    pos, total = 0, 0.0
    for m in _DURATION_RE.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text):
        raise ValueError(f'invalid duration "{text}" (expected a Go duration such as "20s", "1m30s", "500ms")')
    return total


def parse_quantity(text: str) -> int:
    """A Kubernetes quantity of bytes ("10Mi", "100M", "1048576") as an int."""
    m = _QUANTITY_RE.match(text.strip())
    if not m:
        raise ValueError(f'invalid quantity "{text}" (expected a number with an optional suffix such as "10Mi")')
    value = float(m.group(1)) * _QUANTITY_UNITS[m.group(2)]
    if value != int(value):
        raise ValueError(f'invalid quantity "{text}": not a whole number of bytes')
    return int(value)


def _string(value: Any, flag: bool) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, not {_yaml_type(value)}")
    return value


def _abs_path(value: Any, flag: bool) -> str:
    value = _string(value, flag)
    if not os.path.isabs(value):
        raise ValueError(f'must be an absolute path, not "{value}"')
    return os.path.normpath(value)


def _opt_abs_path(value: Any, flag: bool) -> str:
    return "" if _string(value, flag) == "" else _abs_path(value, flag)


def _nonempty_path(value: Any, flag: bool) -> str:
    value = _string(value, flag)
    if not value:
        raise ValueError("must not be empty")
    return value


def _endpoint(value: Any, flag: bool) -> str:
    value = _string(value, flag)
    if value.startswith("unix://") and os.path.isabs(value[len("unix://"):]):
        return value
    if os.path.isabs(value):
        return "unix://" + value
    raise ValueError(f'must be "unix:///path/to/socket" (or an absolute socket path), not "{value}"')


def _int(lo: int, hi: int | None = None) -> Callable[[Any, bool], int]:
    def parse(value: Any, flag: bool) -> int:
        if flag and isinstance(value, str):
            try:
                value = int(value.strip(), 10)
            except ValueError:
                raise ValueError(f'must be an integer, not "{value}"') from None
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"must be an integer, not {_yaml_type(value)}")
        if value < lo or (hi is not None and value > hi):
            raise ValueError(f"must be between {lo} and {hi}, inclusive, not {value}" if hi is not None
                             else f"must be at least {lo}, not {value}")
        return value
    return parse


def _duration(value: Any, flag: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f'must be a duration such as "20s", not {_yaml_type(value)}')
    if not isinstance(value, str):  # a bare number in YAML: refuse rather than guess the unit
        raise ValueError(f'must be a duration with a unit such as "{value}s", not the number {value}')
    seconds = parse_duration(value)
    if seconds <= 0:
        return DEFAULT  # upstream: a zero Duration means the default (fileCheckFrequency: 0s is 20s)
    return seconds


def _quantity(value: Any, flag: bool) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    elif isinstance(value, str):
        size = parse_quantity(value)
    else:
        raise ValueError(f'must be a quantity such as "10Mi", not {_yaml_type(value)}')
    if size <= 0:
        raise ValueError("must be greater than zero")
    return size


class _Default:
    """A parser's answer "use the default" (upstream: a zero Duration / empty field means the default)."""

    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT: Any = _Default()


def _zero_is_default(parser: Callable[[Any, bool], Any]) -> Callable[[Any, bool], Any]:
    """Upstream's non-pointer fields: 0 or "" means "not set", so the default applies (maxPods: 0 is 110)."""
    def parse(value: Any, flag: bool) -> Any:
        zero = value.strip() in ("", "0") if isinstance(value, str) and flag else value == "" or (
            isinstance(value, int) and not isinstance(value, bool) and value == 0)
        return DEFAULT if zero else parser(value, flag)
    return parse


def _opt_resolv_conf(value: Any, flag: bool) -> str:
    """resolvConf: a path, or "" for no host DNS (upstream: the pod gets no nameservers from the host)."""
    return "" if _string(value, flag) == "" else _abs_path(value, flag)


def _host_port(value: Any, flag: bool) -> str:
    """ "host:port" (kube-proxy's metricsBindAddress form, IPv6 as [::1]:port); "" or port 0 turns it off."""
    value = _string(value, flag).strip()
    if value == "":
        return ""
    m = re.fullmatch(r"\[([0-9a-fA-F:.]+)\]:(\d+)|([0-9.]+):(\d+)", value)
    if not m:
        raise ValueError(f'must be "IP:port" such as "127.0.0.1:10247" (IPv6: "[::1]:10247"), not "{value}"')
    host, port = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f'must be "IP:port" with an IP address, not "{value}"') from None
    if not 0 <= int(port) <= 65535:
        raise ValueError(f"port must be between 0 and 65535, not {port}")
    return "" if int(port) == 0 else value


def _ip(value: Any, flag: bool) -> str:
    value = _string(value, flag)
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError(f'must be an IP address, not "{value}"') from None


def _opt_ip(value: Any, flag: bool) -> str:
    return "" if value in ("", None) else _ip(value, flag)


def _ip_list(value: Any, flag: bool) -> tuple[str, ...]:
    if flag and isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"must be a list of IP addresses, not {_yaml_type(value)}")
    out = []
    for i, item in enumerate(value):
        try:
            out.append(_ip(item, flag))
        except ValueError as e:
            raise ValueError(f"item {i}: {e}") from None
    return tuple(out)


def _url_list(value: Any, flag: bool) -> tuple[str, ...]:
    if flag and isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"must be a list of URLs, not {_yaml_type(value)}")
    out = []
    for i, item in enumerate(value):
        item = _string(item, flag)
        m = re.fullmatch(r"(https?)://([A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\]):(\d{1,5})/?", item)
        if not m or not 0 < int(m.group(3)) < 65536:
            raise ValueError(f'item {i}: must be a URL such as "https://10.0.0.1:2379", not "{item}"')
        out.append(item.rstrip("/"))
    return tuple(out)


def _key_prefix(value: Any, flag: bool) -> str:
    value = _string(value, flag)
    if not value.startswith("/") or value.rstrip("/") == "" or any(c.isspace() for c in value):
        raise ValueError(f'must be an absolute key prefix such as "/nodelet", not "{value}"')
    return value.rstrip("/")


def _cidr(optional: bool) -> Callable[[Any, bool], str]:
    def parse(value: Any, flag: bool) -> str:
        value = _string(value, flag)
        if optional and value == "":
            return ""
        try:
            return str(ipaddress.ip_network(value, strict=True))
        except ValueError as e:
            raise ValueError(f'must be a CIDR such as "10.244.0.0/24", not "{value}" ({e})') from None
    return parse


def _domain(value: Any, flag: bool) -> str:
    value = _string(value, flag)
    if value and is_dns1123_subdomain(value):
        raise ValueError(f'must be a DNS domain such as "cluster.local", not "{value}"')
    return value


def _node_name(value: Any, flag: bool) -> str:
    value = _string(value, flag)
    problems = is_dns1123_subdomain(value)
    if problems:
        raise ValueError(f'invalid node name "{value}": {problems[0]}')
    return value


def _ifname(value: Any, flag: bool) -> str:
    name = _string(value, flag)
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,15}", name):
        raise ValueError("must be a Linux interface name: 1-15 letters, digits, '_', '-' or '.'")
    return name


def _enum(*choices: str) -> Callable[[Any, bool], str]:
    def parse(value: Any, flag: bool) -> str:
        value = _string(value, flag)
        if value not in choices:
            raise ValueError(f'must be one of {", ".join(choices)}, not "{value}"')
        return value
    return parse


def _port_range(value: Any, flag: bool) -> tuple[int, int]:
    value = _string(value, flag)
    m = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", value)
    if not m:
        raise ValueError(f'must be a range such as "30000-32767", not "{value}"')
    lo, hi = int(m.group(1)), int(m.group(2))
    if not 1 <= lo <= hi <= 65535:
        raise ValueError(f'must satisfy 1 <= first <= last <= 65535, not "{value}"')
    return lo, hi


def _percent(value: Any, flag: bool) -> int:
    return _int(0, 100)(value, flag)


def _yaml_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


# ---------------------------------------------------------------------------------------------------------------------
# the table: key, parser, type name, default as written in YAML, help

_KEYS: tuple[tuple[str, Callable[[Any, bool], Any], str, str, str], ...] = (
    ("staticPodPath", _nonempty_path, "string", "/etc/kubernetes/manifests",
     "directory (or single file) of static pod manifests"),
    ("containerRuntimeEndpoint", _endpoint, "string", "unix:///run/containerd/containerd.sock",
     "CRI runtime socket"),
    ("nodeName", _node_name, "string", "hostname, lowercased", "this node's name (suffix of static pod names)"),
    ("podCIDR", _cidr(optional=True), "CIDR", '""', "pod network of this node (empty: none)"),
    ("nodeIP", _opt_ip, "IP", '""', "this node's IP: status.hostIP, hostNetwork pods' IP (empty: the default route's source)"),
    ("clusterDNS", _ip_list, "list of IPs", "[]", "DNS servers for ClusterFirst pods"),
    ("clusterDomain", _domain, "string", "cluster.local", "cluster DNS domain (search path of pods)"),
    ("podLogsDir", _abs_path, "path", "/var/log/pods", "where container logs are written"),
    ("rootDir", _abs_path, "path", "/var/lib/nodelet", "the agent's state directory"),
    ("healthzBindAddress", _ip, "IP", "127.0.0.1", "address of the /healthz server"),
    ("healthzPort", _int(0, 65535), "int", "10248", "port of the /healthz server (0: disabled)"),
    ("fileCheckFrequency", _duration, "duration", "20s", "full relist of the manifest directory (inotify is sooner)"),
    ("syncFrequency", _duration, "duration", "1m", "resync period of every pod"),
    ("maxPods", _int(1), "int", "110", "most pods this node runs"),
    ("apiSocket", _abs_path, "path", "/run/nodelet/nodelet.sock", "the local API's unix socket (mode 0600)"),
    ("cniConfDir", _abs_path, "path", "/etc/cni/net.d", "CNI network configuration directory"),
    ("cniBinDir", _abs_path, "path", "/opt/cni/bin", "CNI plugin binaries"),
    ("cniBridge", _ifname, "string", "nodelet0", "the Linux bridge nodelet-cni attaches pods to (with podCIDR)"),
    ("cniGCPeriod", _duration, "duration", "5m", "CNI GC of leaked IPs/veths/NAT entries (also at start)"),
    ("proxyMode", _enum("iptables", "nftables", "none"), "mode", "iptables",
     "service proxy backend: iptables, nftables or none"),
    ("serviceCIDR", _cidr(optional=False), "CIDR", "10.96.0.0/12", "service ClusterIP range"),
    ("nodePortRange", _port_range, "range", "30000-32767", "NodePort range"),
    ("etcdEndpoints", _url_list, "list of URLs", "[]",
     "etcd client URLs (http:// or https://) of the cluster store (empty: single node)"),
    ("etcdCAFile", _opt_abs_path, "path", '""', "CA bundle that signed etcd's serving certificates"),
    ("etcdCertFile", _opt_abs_path, "path", '""', "client certificate for etcd (with etcdKeyFile)"),
    ("etcdKeyFile", _opt_abs_path, "path", '""', "client key for etcd (with etcdCertFile)"),
    ("etcdPrefix", _key_prefix, "string", "/nodelet", "every key nodelet reads or writes is under this prefix"),
    ("clusterCIDR", _cidr(optional=True), "CIDR", '""',
     "the cluster's pod network: node subnets come from it, pod-to-pod traffic inside it is not masqueraded"),
    ("nodeCIDRMaskSize", _int(8, 30), "int", "24", "prefix length of the subnet each node takes from clusterCIDR"),
    ("nodeLeaseDurationSeconds", _int(2, 3600), "int", "10",
     "node lease TTL: a node that stops renewing leaves every other node's view this long after"),
    ("containerLogMaxSize", _quantity, "quantity", "10Mi", "rotate a container log at this size"),
    ("containerLogMaxFiles", _int(2), "int", "5", "container log files kept (current included)"),
    ("imageGCHighThresholdPercent", _percent, "int", "85", "disk usage that starts image GC"),
    ("imageGCLowThresholdPercent", _percent, "int", "80", "disk usage image GC frees down to"),
    ("resolvConf", _opt_resolv_conf, "path", "detected",
     'host resolver file pods\' DNS starts from ("": none; unset: /run/systemd/resolve/resolv.conf when '
     "systemd-resolved runs, else /etc/resolv.conf, as kubeadm writes it); loopback nameservers are never used"),
    ("cgroupDriver", _enum("cgroupfs", "systemd"), "driver", "cgroupfs",
     "how pod cgroups are named: cgroupfs (/kubepods/burstable/pod<uid>) or systemd (kubepods-burstable-pod<uid>"
     ".slice); must match containerd's SystemdCgroup"),
    ("metricsBindAddress", _host_port, "IP:port", "127.0.0.1:10247",
     "plain-HTTP server of /metrics, /metrics/probes, /metrics/resource (\"\" or port 0: off)"),
    ("apiBindAddress", _ip, "IP", "127.0.0.1", "address of the Kubernetes API (HTTPS) kubectl talks to"),
    ("apiPort", _int(0, 65535), "int", "10443", "port of the Kubernetes API (0: disabled); see README for the choice"),
    ("adminKubeconfig", _opt_abs_path, "path", "/etc/nodelet/admin.conf",
     "admin kubeconfig written on start, mode 0600 (empty: none; `nodelet kubeconfig` prints one)"),
)


def _attr(key: str) -> str:
    special = {"etcdCAFile": "etcd_ca_file", "clusterCIDR": "cluster_cidr", "nodeCIDRMaskSize": "node_cidr_mask_size",
               "podCIDR": "pod_cidr", "nodeIP": "node_ip", "clusterDNS": "cluster_dns", "serviceCIDR": "service_cidr", "cniGCPeriod": "cni_gc_period",
               "imageGCHighThresholdPercent": "image_gc_high_threshold_percent",
               "imageGCLowThresholdPercent": "image_gc_low_threshold_percent"}
    return special.get(key) or re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()


def _flag(key: str) -> str:
    return "--" + _attr(key).replace("_", "-")


_PARSERS = {key: _zero_is_default(parser) if key in v1beta1.ZERO_IS_DEFAULT else parser
            for key, parser, *_ in _KEYS}
assert {_attr(k) for k in _PARSERS} == {f.name for f in fields(NodeletConfig)} - {"warnings"}
assert v1beta1.HONOURED <= _PARSERS.keys() and not _PARSERS.keys() & v1beta1.IGNORED.keys()


def config_keys() -> tuple[ConfigKey, ...]:
    """Every key, in documentation order."""
    return tuple(ConfigKey(key=key, attr=_attr(key), flag=_flag(key), type=type_, default=default, help=help_)
                 for key, _, type_, default, help_ in _KEYS)


def default_node_name() -> str:
    return socket.gethostname().lower()


def load_config(path: str | None, overrides: Mapping[str, Any] = {}) -> NodeletConfig:
    """The configuration from ``path`` (None: defaults only) with ``overrides`` (flag values by YAML key) applied."""
    where = path or "configuration"
    values: dict[str, Any] = {}
    ignored: dict[str, str] = {}
    seen: dict[str, str] = {}  # key -> kind of the document that set it
    for kind, doc in (_read_file(path) if path is not None else []):
        for key, value in doc.items():
            if key in ("apiVersion", "kind"):
                continue
            if not isinstance(key, str) or (key not in _PARSERS and key not in v1beta1.IGNORED):
                raise _unknown_key(where, key, kind)
            if key in v1beta1.IGNORED:
                ignored[key] = v1beta1.IGNORED[key]
                continue
            if kind == v1beta1.KIND and key not in v1beta1.HONOURED:
                raise ConfigError(where=where, key=key,
                                  reason=f"not a {v1beta1.KIND} field: put nodelet's own settings in a "
                                         f"{KIND} document ({API_VERSION})")
            if key in seen:
                raise ConfigError(where=where, key=key, reason=f"set in both the {seen[key]} and the {kind} document")
            seen[key] = kind
            values[key] = _parse(where, key, value, flag=False)
    for key, value in overrides.items():
        if value is None:
            continue
        flag_where = f"flag {_flag(key)}" if key in _PARSERS else "flags"
        values[key] = _parse(flag_where, key, value, flag=True)
    values = {k: v for k, v in values.items() if v is not DEFAULT}
    if "nodeName" not in values:
        values["nodeName"] = _parse(where, "nodeName", default_node_name(), flag=False)
    warnings: tuple[str, ...] = ()
    if ignored:
        warnings = (f"{where}: {len(ignored)} {v1beta1.KIND} field(s) nodelet does not implement, ignored: "
                    + "; ".join(f"{k} ({why})" for k, why in sorted(ignored.items())),)
    config = NodeletConfig(**{_attr(k): v for k, v in values.items()}, warnings=warnings)
    if config.image_gc_low_threshold_percent >= config.image_gc_high_threshold_percent:
        raise ConfigError(where=where, key="imageGCLowThresholdPercent",
                          reason=f"must be less than imageGCHighThresholdPercent "
                                 f"({config.image_gc_low_threshold_percent} >= "
                                 f"{config.image_gc_high_threshold_percent})")
    if bool(config.etcd_cert_file) != bool(config.etcd_key_file):
        raise ConfigError(where=where, key="etcdCertFile" if not config.etcd_cert_file else "etcdKeyFile",
                          reason="etcdCertFile and etcdKeyFile go together: set both or neither")
    if config.cluster_cidr:
        net = ipaddress.ip_network(config.cluster_cidr)
        if net.version != 4:
            raise ConfigError(where=where, key="clusterCIDR", reason="only IPv4 is supported")
        if config.node_cidr_mask_size < net.prefixlen:
            raise ConfigError(where=where, key="nodeCIDRMaskSize",
                              reason=f"/{config.node_cidr_mask_size} is larger than clusterCIDR {net}")
        if config.pod_cidr and not ipaddress.ip_network(config.pod_cidr).subnet_of(net):  # type: ignore[arg-type]
            raise ConfigError(where=where, key="podCIDR", reason=f"{config.pod_cidr} is not inside clusterCIDR {net}")
    return config


def is_dns1123_subdomain(value: str) -> list[str]:
    # imported on use: kubelet.manifest.validation pulls in probes and cri, which the CLI's start-up should not pay for
    from kubelet.manifest.validation import is_dns1123_subdomain as check

    return check(value)


def _read_file(path: str) -> list[tuple[str, dict[str, Any]]]:
    """The file's documents as (kind, mapping): KubeletConfiguration and/or NodeletConfiguration (a bare mapping is
    the latter), each at most once."""
    import yaml  # only when there is a file to read

    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ConfigError(where=path, key="", reason=f"cannot read: {e.strerror or e}") from None
    try:
        docs = list(yaml.safe_load_all(data))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e)
        raise ConfigError(where=path, key="", reason=f"invalid YAML: {line}{problem}") from None
    out: list[tuple[str, dict[str, Any]]] = []
    for n, doc in enumerate(docs):
        if doc is None:
            continue
        where = path if len(docs) == 1 else f"{path} (document {n + 1})"
        if not isinstance(doc, dict):
            raise ConfigError(where=where, key="", reason=f"must be a mapping of keys to values, not {_yaml_type(doc)}")
        kind = _document_kind(where, doc)
        if any(k == kind for k, _ in out):
            raise ConfigError(where=where, key="kind", reason=f"a second {kind} document")
        out.append((kind, doc))
    return sorted(out, key=lambda d: d[0] != v1beta1.KIND)  # upstream first, so nodelet's own document reads after


def _document_kind(where: str, doc: Mapping[str, Any]) -> str:
    known = {(API_VERSION, KIND), (v1beta1.API_VERSION, v1beta1.KIND)}
    api_version, kind = doc.get("apiVersion"), doc.get("kind")
    if api_version is None and kind is None:
        return KIND
    if (api_version, kind) in known:
        return str(kind)
    expected = " or ".join(f"{a} {k}" for a, k in sorted(known))
    if kind not in (KIND, v1beta1.KIND):
        raise ConfigError(where=where, key="kind", reason=f"must be {expected}, not {_shown(kind)}")
    want = API_VERSION if kind == KIND else v1beta1.API_VERSION
    raise ConfigError(where=where, key="apiVersion", reason=f'must be "{want}" for kind {kind}, not {_shown(api_version)}')


def _parse(where: str, key: str, value: Any, *, flag: bool) -> Any:
    parser = _PARSERS.get(key)
    if parser is None:
        raise _unknown_key(where, key, None)
    try:
        return parser(value, flag)
    except ValueError as e:
        raise ConfigError(where=where, key=key, reason=str(e)) from None


def _unknown_key(where: str, key: Any, kind: str | None) -> ConfigError:
    known = set(v1beta1.HONOURED) | set(v1beta1.IGNORED) if kind == v1beta1.KIND else set(_PARSERS) | set(v1beta1.IGNORED)
    hint = _suggest(str(key), known)
    return ConfigError(where=where, key=str(key), reason="unknown key" + (f' (did you mean "{hint}"?)' if hint else ""))


def _suggest(key: str, known: set[str]) -> str | None:
    lowered = key.lower().replace("-", "").replace("_", "")
    for k in sorted(known):
        if k.lower() == lowered:
            return k
    close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.75)
    return close[0] if close else None


def _shown(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else _yaml_type(value)
