"""etcd v3 client (the KV, Lease and Watch subset nodelet's cluster mode uses); see client.py."""
from .client import Compare, EtcdClient, KeyValue, Op, TLSFiles, TxnResult, WatchBatch, WatchEvent, parse_endpoint, prefix_end
from .errors import (Compacted, ConfigError, DeadlineExceeded, EtcdError, LeaseNotFound, PermissionDenied,
                     RequestRejected, TLSError, Unavailable)

__all__ = ["Compacted", "Compare", "ConfigError", "DeadlineExceeded", "EtcdClient", "EtcdError", "KeyValue",
           "LeaseNotFound", "Op", "PermissionDenied", "RequestRejected", "TLSError", "TLSFiles", "TxnResult",
           "Unavailable", "WatchBatch", "WatchEvent", "parse_endpoint", "prefix_end"]
