"""A typed asyncio client for the subset of etcd v3 nodelet needs: KV (Range/Put/DeleteRange/Txn/Compact), Lease
(Grant/Revoke/KeepAlive/TimeToLive) and Watch (from a revision, compaction reported as `Compacted`).

Built on grpc.aio with the stubs in `_gen` (from `proto/rpc.proto`, upstream field numbers), like `cri/` — see the
README's dependency notes for why no PyPI client is used. Every gRPC error is translated once, in `errors.translate`.

Several endpoints: one channel each; a call goes to the endpoint that last answered and moves on to the next when
it is unavailable (as clientv3's balancer does), so a dead member costs one failed attempt, not an outage.
Endpoints are URLs: `http://host:port` (plaintext), `https://host:port` (TLS; the CA file, or the system roots),
or a bare `host:port` (TLS when a CA file is given).
"""
from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

import grpc

from . import errors
from ._gen import rpc_pb2 as pb
from ._gen import rpc_pb2_grpc as pbg

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 5.0
# clientv3 defaults: keepalive pings no more often than the server's --grpc-keepalive-min-time (5 s) allows.
_CHANNEL_OPTIONS = (
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.max_receive_message_length", 32 << 20),
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2_000),
)


@dataclass(frozen=True, kw_only=True)
class KeyValue:
    key: str
    value: bytes
    create_revision: int = 0
    mod_revision: int = 0
    version: int = 0
    lease: int = 0


@dataclass(frozen=True, kw_only=True)
class WatchEvent:
    type: Literal["PUT", "DELETE"]
    kv: KeyValue


@dataclass(frozen=True, kw_only=True)
class WatchBatch:
    """One WatchResponse: its events (possibly none: created/progress) and the store revision it reflects."""

    revision: int
    events: tuple[WatchEvent, ...] = ()
    created: bool = False


@dataclass(frozen=True, kw_only=True)
class Compare:
    """One txn guard: `target` of `key` compared with `value` (version/create/mod: int; value: bytes)."""

    key: str
    target: Literal["version", "create", "mod", "value", "lease"]
    op: Literal["=", "!=", "<", ">"] = "="
    value: int | bytes = 0


@dataclass(frozen=True, kw_only=True)
class Op:
    """One txn operation: put (with an optional lease), delete or get; `prefix` widens delete/get to the prefix."""

    kind: Literal["put", "delete", "get"]
    key: str
    value: bytes = b""
    lease: int = 0
    prefix: bool = False


@dataclass(frozen=True, kw_only=True)
class TxnResult:
    succeeded: bool
    revision: int
    ranges: tuple[tuple[KeyValue, ...], ...] = ()  # the get ops' results, in order


@dataclass(frozen=True, kw_only=True)
class Endpoint:
    url: str
    target: str  # host:port for gRPC
    tls: bool


@dataclass(frozen=True, kw_only=True)
class TLSFiles:
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""


def prefix_end(key: bytes) -> bytes:
    """The range_end that makes [key, end) every key starting with `key` (clientv3 GetPrefixRangeEnd)."""
    b = bytearray(key)
    for i in range(len(b) - 1, -1, -1):
        if b[i] < 0xFF:
            b[i] += 1
            return bytes(b[: i + 1])
    return b"\0"


def parse_endpoint(url: str, *, tls_default: bool = False) -> Endpoint:
    """`http://h:p`, `https://h:p` or `h:p` → Endpoint. Raises errors.ConfigError with the reason."""
    text = url.strip()
    if "://" not in text:
        text = ("https://" if tls_default else "http://") + text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https"):
        raise errors.ConfigError(f"endpoint {url!r}: scheme must be http or https")
    if not parts.hostname or parts.port is None:
        raise errors.ConfigError(f"endpoint {url!r}: must be host:port (e.g. https://10.0.0.1:2379)")
    if parts.path not in ("", "/") or parts.query:
        raise errors.ConfigError(f"endpoint {url!r}: no path or query allowed")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return Endpoint(url=url, target=f"{host}:{parts.port}", tls=parts.scheme == "https")


def _kv(m: Any) -> KeyValue:
    return KeyValue(key=m.key.decode(errors="replace"), value=bytes(m.value), create_revision=m.create_revision,
                    mod_revision=m.mod_revision, version=m.version, lease=m.lease)


_RESULTS = {"=": pb.Compare.EQUAL, "!=": pb.Compare.NOT_EQUAL, "<": pb.Compare.LESS, ">": pb.Compare.GREATER}
_TARGETS = {"version": pb.Compare.VERSION, "create": pb.Compare.CREATE, "mod": pb.Compare.MOD,
            "value": pb.Compare.VALUE, "lease": pb.Compare.LEASE}
_UNION = {"version": "version", "create": "create_revision", "mod": "mod_revision", "value": "value", "lease": "lease"}


def _compare_pb(c: Compare) -> Any:
    m = pb.Compare(result=_RESULTS[c.op], target=_TARGETS[c.target], key=c.key.encode())
    setattr(m, _UNION[c.target], c.value)
    return m


def _op_pb(o: Op) -> Any:
    key = o.key.encode()
    end = prefix_end(key) if o.prefix else b""
    if o.kind == "put":
        return pb.RequestOp(request_put=pb.PutRequest(key=key, value=o.value, lease=o.lease))
    if o.kind == "delete":
        return pb.RequestOp(request_delete_range=pb.DeleteRangeRequest(key=key, range_end=end))
    return pb.RequestOp(request_range=pb.RangeRequest(key=key, range_end=end))


class EtcdClient:
    """grpc.aio client over one or more endpoints. Use as `async with EtcdClient(...)` or call `close()`."""

    def __init__(self, endpoints: Sequence[str], *, tls: TLSFiles = TLSFiles(), timeout: float = DEFAULT_TIMEOUT) -> None:
        if not endpoints:
            raise errors.ConfigError("no endpoints")
        self.endpoints = [parse_endpoint(e, tls_default=bool(tls.ca_file)) for e in endpoints]
        self.timeout = timeout
        self._creds: grpc.ChannelCredentials | None = None
        if any(e.tls for e in self.endpoints) or tls.ca_file:
            self._creds = grpc.ssl_channel_credentials(
                root_certificates=_read(tls.ca_file, "CA") if tls.ca_file else None,
                private_key=_read(tls.key_file, "key") if tls.key_file else None,
                certificate_chain=_read(tls.cert_file, "certificate") if tls.cert_file else None,
            )
        elif tls.cert_file or tls.key_file:
            raise errors.ConfigError("a client certificate/key needs https:// endpoints")
        if bool(tls.cert_file) != bool(tls.key_file):
            raise errors.ConfigError("the client certificate and key go together: set both or neither")
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._current = 0

    @property
    def endpoint(self) -> str:
        return self.endpoints[self._current].url

    async def __aenter__(self) -> "EtcdClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        channels, self._channels = list(self._channels.values()), {}
        for ch in channels:
            await ch.close()

    def _channel(self, ep: Endpoint) -> grpc.aio.Channel:
        ch = self._channels.get(ep.target)
        if ch is None:
            if ep.tls or self._creds is not None:
                assert self._creds is not None
                ch = grpc.aio.secure_channel(ep.target, self._creds, options=_CHANNEL_OPTIONS)
            else:
                ch = grpc.aio.insecure_channel(ep.target, options=_CHANNEL_OPTIONS)
            self._channels[ep.target] = ch
        return ch

    def _order(self) -> list[int]:
        n = len(self.endpoints)
        return [(self._current + i) % n for i in range(n)]

    async def _unary(self, service: str, rpc: str, request: Any, timeout: float | None = None) -> Any:
        stubs = {"KV": pbg.KVStub, "Lease": pbg.LeaseStub}
        last: errors.EtcdError | None = None
        for i in self._order():
            ep = self.endpoints[i]
            method = getattr(stubs[service](self._channel(ep)), rpc)
            try:
                resp = await method(request, timeout=timeout or self.timeout)
            except grpc.RpcError as e:
                err = errors.translate(e, endpoint=ep.url, rpc=rpc)
                if not isinstance(err, (errors.Unavailable, errors.DeadlineExceeded)):
                    raise err from None
                last = err
                continue
            self._current = i
            return resp
        assert last is not None
        raise last

    # ---- KV ----

    async def range(self, key: str, *, prefix: bool = False, revision: int = 0, limit: int = 0,
                    serializable: bool = False) -> tuple[list[KeyValue], int]:
        """Keys at `key` (or under it with `prefix`) and the store revision of the read."""
        k = key.encode()
        resp = await self._unary("KV", "Range", pb.RangeRequest(key=k, range_end=prefix_end(k) if prefix else b"",
                                                                revision=revision, limit=limit, serializable=serializable))
        return [_kv(m) for m in resp.kvs], resp.header.revision

    async def get(self, key: str) -> KeyValue | None:
        kvs, _ = await self.range(key)
        return kvs[0] if kvs else None

    async def put(self, key: str, value: bytes | str, *, lease: int = 0) -> int:
        v = value.encode() if isinstance(value, str) else value
        resp = await self._unary("KV", "Put", pb.PutRequest(key=key.encode(), value=v, lease=lease))
        return int(resp.header.revision)

    async def delete(self, key: str, *, prefix: bool = False) -> int:
        k = key.encode()
        resp = await self._unary("KV", "DeleteRange", pb.DeleteRangeRequest(key=k, range_end=prefix_end(k) if prefix else b""))
        return int(resp.deleted)

    async def txn(self, compare: Sequence[Compare], success: Sequence[Op] = (), failure: Sequence[Op] = ()) -> TxnResult:
        req = pb.TxnRequest(compare=[_compare_pb(c) for c in compare], success=[_op_pb(o) for o in success],
                            failure=[_op_pb(o) for o in failure])
        resp = await self._unary("KV", "Txn", req)
        ranges = tuple(tuple(_kv(m) for m in r.response_range.kvs) for r in resp.responses if r.HasField("response_range"))
        return TxnResult(succeeded=resp.succeeded, revision=resp.header.revision, ranges=ranges)

    async def compact(self, revision: int, *, physical: bool = True) -> None:
        await self._unary("KV", "Compact", pb.CompactionRequest(revision=revision, physical=physical), timeout=30.0)

    # ---- Lease ----

    async def lease_grant(self, ttl: int, *, lease_id: int = 0) -> tuple[int, int]:
        """A new lease: (id, granted TTL in seconds; etcd may raise it to its minimum)."""
        resp = await self._unary("Lease", "LeaseGrant", pb.LeaseGrantRequest(TTL=ttl, ID=lease_id))
        if resp.error:
            raise errors.RequestRejected(resp.error, endpoint=self.endpoint, rpc="LeaseGrant")
        return int(resp.ID), int(resp.TTL)

    async def lease_revoke(self, lease_id: int) -> None:
        await self._unary("Lease", "LeaseRevoke", pb.LeaseRevokeRequest(ID=lease_id))

    async def lease_time_to_live(self, lease_id: int) -> int:
        """Remaining seconds of the lease; -1 when it does not exist (expired or revoked)."""
        resp = await self._unary("Lease", "LeaseTimeToLive", pb.LeaseTimeToLiveRequest(ID=lease_id))
        return int(resp.TTL)

    async def lease_keepalive_once(self, lease_id: int) -> int:
        """Renew the lease to its full TTL (one round on a LeaseKeepAlive stream). Raises LeaseNotFound if gone."""
        last: errors.EtcdError | None = None
        for i in self._order():
            ep = self.endpoints[i]
            call = pbg.LeaseStub(self._channel(ep)).LeaseKeepAlive(timeout=self.timeout)
            try:
                await call.write(pb.LeaseKeepAliveRequest(ID=lease_id))
                resp = await call.read()
                await call.done_writing()
            except grpc.RpcError as e:
                err = errors.translate(e, endpoint=ep.url, rpc="LeaseKeepAlive")
                if not isinstance(err, (errors.Unavailable, errors.DeadlineExceeded)):
                    raise err from None
                last = err
                continue
            finally:
                call.cancel()
            if resp is grpc.aio.EOF:
                last = errors.Unavailable("keepalive stream closed", endpoint=ep.url, rpc="LeaseKeepAlive")
                continue
            self._current = i
            if resp.TTL <= 0:
                raise errors.LeaseNotFound(f"lease {lease_id:x} expired or revoked", endpoint=ep.url, rpc="LeaseKeepAlive")
            return int(resp.TTL)
        assert last is not None
        raise last

    # ---- Watch ----

    async def watch(self, key: str, *, prefix: bool = False, start_revision: int = 0,
                    progress_notify: bool = True) -> AsyncIterator[WatchBatch]:
        """Events on `key` (or under it) from `start_revision` (inclusive; 0: now), batch by batch, until the stream
        breaks (Unavailable) or the start revision is compacted (Compacted with compact_revision)."""
        k = key.encode()
        create = pb.WatchRequest(create_request=pb.WatchCreateRequest(
            key=k, range_end=prefix_end(k) if prefix else b"", start_revision=start_revision, progress_notify=progress_notify))
        ep = self.endpoints[self._current]
        # hasleader: a member cut off from its leader cancels the watch instead of going quiet (clientv3 WithRequireLeader)
        call = pbg.WatchStub(self._channel(ep)).Watch(metadata=(("hasleader", "true"),))
        try:
            try:
                await call.write(create)
                while True:
                    resp = await call.read()
                    if resp is grpc.aio.EOF:
                        raise errors.Unavailable("watch stream closed by the server", endpoint=ep.url, rpc="Watch")
                    if resp.compact_revision:
                        raise errors.Compacted(f"required revision {start_revision} has been compacted (compacted to {resp.compact_revision})",
                                               compact_revision=int(resp.compact_revision), endpoint=ep.url, rpc="Watch")
                    if resp.canceled:
                        raise errors.Unavailable(f"watch canceled: {resp.cancel_reason or 'no reason given'}", endpoint=ep.url, rpc="Watch")
                    yield WatchBatch(revision=int(resp.header.revision), created=resp.created,
                                     events=tuple(WatchEvent(type="DELETE" if ev.type == pb.Event.DELETE else "PUT", kv=_kv(ev.kv))
                                                  for ev in resp.events))
            except grpc.RpcError as e:
                err = errors.translate(e, endpoint=ep.url, rpc="Watch")
                if isinstance(err, errors.Unavailable):
                    self._current = (self._current + 1) % len(self.endpoints)  # the next try goes elsewhere
                raise err from None
        finally:
            call.cancel()

    async def status_revision(self) -> int:
        """The current store revision (a cheap serializable range of one key)."""
        _, rev = await self.range("\0", limit=1, serializable=False)
        return rev


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise errors.ConfigError(f"cannot read the {what} file {path}: {e.strerror or e}") from None


__all__ = ["Compare", "EtcdClient", "KeyValue", "Op", "TLSFiles", "TxnResult", "WatchBatch", "WatchEvent",
           "parse_endpoint", "prefix_end"]
