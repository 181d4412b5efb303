"""The kubelet-managed /etc/hosts of a pod's containers (upstream ``kubelet_pods.go``: ``managedHostsFileContent``,
``nodeHostsFileContent``): localhost entries and the pod's own name (FQDN with ``subdomain``), or the node's
file for hostNetwork pods, then the ``hostAliases``. Written to ``<rootDir>/pods/<uid>/etc-hosts`` and mounted
at /etc/hosts in every container that does not mount something there itself."""
from __future__ import annotations

from pathlib import Path
from cni.fsutil import write_atomic
from kubelet.types import PodSpec

__all__ = ["render_hosts_file", "compute_pod_hostname", "ensure_hosts_file", "hosts_file_path"]

_LOCAL = """# Kubernetes-managed hosts file.
127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
fe00::0\tip6-mcastprefix
fe00::1\tip6-allnodes
fe00::2\tip6-allrouters
"""


def compute_pod_hostname(spec: PodSpec, pod_name: str, *, namespace: str, cluster_domain: str) -> tuple[str, str]:
    """(hostname, fqdn or ""): ``spec.hostname`` or the pod name (63 characters at most), and
    ``<hostname>.<subdomain>.<ns>.svc.<clusterDomain>`` when ``spec.subdomain`` is set."""
    hostname = (spec.hostname or pod_name)[:63].rstrip("-.")
    sub = spec.subdomain
    fqdn = f"{hostname}.{sub}.{namespace}.svc.{cluster_domain}" if sub else ""
    return hostname, fqdn


def render_hosts_file(spec: PodSpec, *, pod_name: str, namespace: str, pod_ips: list[str],
                      cluster_domain: str, host_network: bool, node_hosts: str = "") -> str:
    aliases = spec.host_aliases
    if host_network:
        out = "# Kubernetes-managed hosts file (host network).\n" + node_hosts
        if out and not out.endswith("\n"):
            out += "\n"
    else:
        hostname, fqdn = compute_pod_hostname(spec, pod_name, namespace=namespace, cluster_domain=cluster_domain)
        out = _LOCAL
        for ip in pod_ips:
            out += f"{ip}\t{fqdn}\t{hostname}\n" if fqdn else f"{ip}\t{hostname}\n"
    if aliases:
        out += "\n# Entries added by HostAliases.\n"
        for a in aliases:
            out += f"{a.ip}\t" + "\t".join(a.hostnames) + "\n"
    return out


def hosts_file_path(root_dir: Path, uid: str) -> Path:
    return root_dir / "pods" / uid / "etc-hosts"


def ensure_hosts_file(path: Path, content: str) -> None:
    """Write atomically, only when the content changed (a running container keeps the inode it mounted)."""
    try:
        if path.read_text() == content:
            return
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        # in place: a bind-mounted file is pinned by inode, a rename would hide the update from running containers
        with open(path, "w") as f:
            f.write(content)
        return
    write_atomic(path, content, mode=0o644)
