"""Dispatcher: env + stdin in, exit code + spec-shaped JSON out (commands faked at the Commands boundary)."""
from __future__ import annotations

import io
import json

from cni.__main__ import handle, run
from cni.errors import InterfaceExists
from cni.testing import FakeCommands

CONF = {"cniVersion": "1.1.0", "name": "net", "type": "nodelet-cni",
        "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.1.0.0/24"}]]}}
ENV = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "abc", "CNI_NETNS": "/run/netns/x", "CNI_IFNAME": "eth0",
       "CNI_PATH": "/opt/cni/bin"}


async def call(env: dict[str, str], conf: object = CONF, fake: FakeCommands | None = None) -> tuple[int, object]:
    stdin = conf if isinstance(conf, bytes) else json.dumps(conf).encode()
    code, out = await handle(env, stdin, commands=fake or FakeCommands())
    return code, json.loads(out) if out else None


async def test_version() -> None:
    code, out = await call({"CNI_COMMAND": "VERSION"}, b"")
    assert code == 0
    assert out == {"cniVersion": "1.1.0", "supportedVersions": ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]}


async def test_add_result_and_env_passed_through() -> None:
    fake = FakeCommands()
    code, out = await call({**ENV, "CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAME=p"}, fake=fake)
    assert code == 0 and out == {"cniVersion": "1.1.0", "interfaces": [], "ips": [{"address": "10.1.0.2/24"}]}
    (method, env, conf), = fake.calls
    assert method == "add" and env.container_id == "abc" and env.args["K8S_POD_NAME"] == "p"
    assert conf.name == "net"


async def test_del_check_gc_status_print_nothing_on_success() -> None:
    for cmd, method in (("DEL", "delete"), ("CHECK", "check"), ("GC", "gc"), ("STATUS", "status")):
        fake = FakeCommands()
        code, out = await call({**ENV, "CNI_COMMAND": cmd}, {**CONF, "cni.dev/valid-attachments": []}, fake=fake)
        assert (code, out, fake.calls[0][0]) == (0, None, method)


async def test_errors_are_spec_json_with_the_configs_version() -> None:
    code, out = await call({**ENV, "CNI_IFNAME": ""}, {**CONF, "cniVersion": "0.4.0"})
    assert code == 1
    assert out == {"cniVersion": "0.4.0", "code": 4, "msg": "required env variables [CNI_IFNAME] missing"}
    code, out = await call(ENV, b"nope")
    assert code == 1 and out["code"] == 6 and out["cniVersion"] == "1.1.0"  # type: ignore[index]


async def test_typed_error_from_a_command_keeps_code_and_details() -> None:
    fake = FakeCommands()
    fake.inject_error("add", InterfaceExists("CNI_IFNAME: interface 'eth0' already exists", details="netns x"))
    code, out = await call(ENV, fake=fake)
    assert code == 1 and out == {"cniVersion": "1.1.0", "code": 102,
                                 "msg": "CNI_IFNAME: interface 'eth0' already exists", "details": "netns x"}


async def test_untyped_failure_is_code_999_not_a_traceback() -> None:
    fake = FakeCommands()
    fake.inject_error("delete", RuntimeError("boom"))
    code, out = await call({**ENV, "CNI_COMMAND": "DEL"}, fake=fake)
    assert code == 1 and out == {"cniVersion": "1.1.0", "code": 999, "msg": "internal error: RuntimeError: boom"}


def test_run_writes_stdout_and_returns_exit_code() -> None:
    buf = io.BytesIO()
    assert run({"CNI_COMMAND": "VERSION"}, b"{}", buf, commands=FakeCommands()) == 0
    assert json.loads(buf.getvalue())["cniVersion"] == "1.1.0"
    buf = io.BytesIO()
    assert run({}, b"{}", buf, commands=FakeCommands()) == 1
    assert json.loads(buf.getvalue())["code"] == 4
