from __future__ import annotations

import subprocess
import sys

from cri import api, convert
from cri._gen import api_pb2 as pb


def test_generated_stubs_are_fresh() -> None:
    r = subprocess.run([sys.executable, "-m", "cri.regen", "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_wire_names_and_numbers_match_upstream() -> None:
    # Spot checks of the contract (the whole proto was compared against kubernetes/cri-api when written).
    f = pb.ContainerConfig.DESCRIPTOR.fields_by_name
    assert (f["log_path"].number, f["linux"].number, f["CDI_devices"].number) == (11, 15, 17)
    assert pb.LinuxSandboxSecurityContext.DESCRIPTOR.fields_by_name["run_as_group"].number == 8
    assert pb.ContainerStatus.DESCRIPTOR.fields_by_name["log_path"].number == 15
    assert pb.DESCRIPTOR.package == "runtime.v1"
    assert pb.DESCRIPTOR.services_by_name["RuntimeService"].methods_by_name["ExecSync"].full_name == "runtime.v1.RuntimeService.ExecSync"


def test_container_config_round_trip() -> None:
    cfg = api.ContainerConfig(
        name="web",
        image="img:1",
        attempt=3,
        command=("sh",),
        args=("-c", "true"),
        envs=(("A", "1"),),
        mounts=(api.Mount(container_path="/data", host_path="/h", readonly=True, propagation=api.MountPropagation.HOST_TO_CONTAINER),),
        resources=api.LinuxResources(cpu_shares=512, memory_limit_in_bytes=1 << 20),
        security=api.ContainerSecurity(run_as_user=0, capabilities=api.Capabilities(add=("NET_ADMIN",), drop=("ALL",)), no_new_privs=True),
    )
    msg = convert.to_container_config(cfg)
    wire = pb.ContainerConfig.FromString(msg.SerializeToString())
    assert wire.metadata.attempt == 3 and wire.envs[0].value == b"1"
    assert wire.mounts[0].propagation == pb.PROPAGATION_HOST_TO_CONTAINER
    # run_as_user=0 must be sent (root is a real value, not "unset").
    assert wire.linux.security_context.HasField("run_as_user") and wire.linux.security_context.run_as_user.value == 0
    assert list(wire.linux.security_context.capabilities.drop_capabilities) == ["ALL"]


def test_sandbox_status_conversion_reads_network_mode() -> None:
    msg = pb.PodSandboxStatus(
        id="s",
        metadata=pb.PodSandboxMetadata(name="n", uid="u", namespace="ns", attempt=1),
        network=pb.PodSandboxNetworkStatus(ip="10.0.0.2", additional_ips=[pb.PodIP(ip="fd00::2")]),
        linux=pb.LinuxPodSandboxStatus(namespaces=pb.Namespace(options=pb.NamespaceOption(network=pb.NODE))),
    )
    st = convert.from_sandbox_status(msg, {})
    assert st.network_mode is api.NamespaceMode.NODE and st.additional_ips == ("fd00::2",) and st.metadata.attempt == 1
