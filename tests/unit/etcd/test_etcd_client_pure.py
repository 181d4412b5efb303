"""kubelet.node.etcd: the committed stubs are fresh, endpoint parsing, prefix ranges, error translation."""
from __future__ import annotations

import grpc
import pytest

from kubelet.node.etcd import errors
from kubelet.node.etcd.client import EtcdClient, TLSFiles, parse_endpoint, prefix_end


def test_committed_stubs_match_a_fresh_generation() -> None:
    from kubelet.node.etcd import regen

    assert regen.main(["--check"]) == 0


def test_stubs_use_upstream_service_paths_and_field_numbers() -> None:
    from kubelet.node.etcd._gen import rpc_pb2 as pb

    assert pb.DESCRIPTOR.services_by_name["KV"].full_name == "etcdserverpb.KV"
    f = pb.WatchResponse.DESCRIPTOR.fields_by_name
    assert (f["compact_revision"].number, f["cancel_reason"].number, f["events"].number) == (5, 6, 11)
    assert pb.Compare.DESCRIPTOR.fields_by_name["range_end"].number == 64
    assert pb.KeyValue.DESCRIPTOR.fields_by_name["lease"].number == 6


@pytest.mark.parametrize("url,target,tls", [
    ("http://127.0.0.1:2379", "127.0.0.1:2379", False),
    ("https://etcd1:2379", "etcd1:2379", True),
    ("10.0.0.1:2379", "10.0.0.1:2379", False),
    ("http://[::1]:2379", "[::1]:2379", False),
])
def test_parse_endpoint(url: str, target: str, tls: bool) -> None:
    ep = parse_endpoint(url)
    assert (ep.target, ep.tls) == (target, tls)


@pytest.mark.parametrize("url", ["ftp://h:1", "http://h", "http://h:1/path", ""])
def test_bad_endpoints_are_refused(url: str) -> None:
    with pytest.raises(errors.ConfigError):
        parse_endpoint(url)


def test_prefix_end() -> None:
    assert prefix_end(b"/nodelet/") == b"/nodelet0"
    assert prefix_end(b"a\xff") == b"b"
    assert prefix_end(b"\xff") == b"\0"


def test_missing_ca_file_is_a_config_error(tmp_path) -> None:
    with pytest.raises(errors.ConfigError, match="cannot read the CA file"):
        EtcdClient(["https://127.0.0.1:2379"], tls=TLSFiles(ca_file=str(tmp_path / "nope.pem")))


class _Err(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._c, self._d = code, details

    def code(self) -> grpc.StatusCode:
        return self._c

    def details(self) -> str:
        return self._d


@pytest.mark.parametrize("code,details,cls", [
    (grpc.StatusCode.UNAVAILABLE, "failed to connect", errors.Unavailable),
    (grpc.StatusCode.OUT_OF_RANGE, "etcdserver: mvcc: required revision has been compacted", errors.Compacted),
    (grpc.StatusCode.NOT_FOUND, "etcdserver: requested lease not found", errors.LeaseNotFound),
    (grpc.StatusCode.UNAVAILABLE, "Ssl handshake failed: CERTIFICATE_VERIFY_FAILED", errors.TLSError),
    (grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: request is too large", errors.RequestRejected),
    (grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded", errors.DeadlineExceeded),
])
def test_translate(code: grpc.StatusCode, details: str, cls: type) -> None:
    err = errors.translate(_Err(code, details), endpoint="http://e:1", rpc="Range")
    assert type(err) is cls and "Range on http://e:1" in str(err)
