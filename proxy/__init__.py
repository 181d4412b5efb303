"""nodelet: proxy package — kube-proxy-style Service rules (iptables or nftables) without an API server.

The daemon builds one :class:`Proxier` from a :class:`ProxyConfig`, runs ``await proxier.run()`` as a task, calls
``proxier.update(services=…, endpoint_docs=…, pods=…)`` with the full current set whenever anything changes, and
``proxier.stop()`` on shutdown. ``proxier.status()`` feeds the CLI; ``cleanup(mode)`` is ``nodelet proxy cleanup``.
"""
from proxy.cleanup import CleanupSummary, cleanup, cleanup_sync
from proxy.errors import BackendError, BackendUnavailable, ProxyError, ServiceSpecError
from proxy.model import ContainerPort, ManifestDoc, PodInfo, Protocol
from proxy.proxier import Proxier, ProxyConfig, ProxyStatus, ServicePortStatus, SyncResult

__all__ = [
    "BackendError",
    "BackendUnavailable",
    "CleanupSummary",
    "ContainerPort",
    "ManifestDoc",
    "PodInfo",
    "Protocol",
    "Proxier",
    "ProxyConfig",
    "ProxyError",
    "ProxyStatus",
    "ServicePortStatus",
    "ServiceSpecError",
    "SyncResult",
    "cleanup",
    "cleanup_sync",
]
