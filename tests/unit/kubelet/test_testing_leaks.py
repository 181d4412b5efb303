from __future__ import annotations

from kubelet.testing_leaks import HostSnapshot, compute_leaks


def test_only_new_objects_still_present_are_leaks() -> None:
    before = HostSnapshot(netns=frozenset({"cni-old"}), links=frozenset({"nlt-br0"}),
                          nft=frozenset({"ip nodelet-cni", "ip nodelet-cni set pods-1"}), processes={10: "containerd"})
    after = HostSnapshot(netns=frozenset({"cni-old", "cni-new"}), links=frozenset(),
                         nft=frozenset({"ip nodelet-cni", "ip nodelet-cni set pods-2"}),
                         processes={10: "containerd", 11: "python -m kubelet.cli.main run --config /tmp/x/config.yaml"})
    assert compute_leaks(before, after) == [
        "netns: cni-new",
        "nft: ip nodelet-cni set pods-2",
        "process: 11 python -m kubelet.cli.main run --config /tmp/x/config.yaml",
    ]


def test_processes_compare_by_command_line() -> None:
    assert compute_leaks(HostSnapshot(processes={5: "a"}), HostSnapshot(processes={5: "b"})) == ["process: 5 b"]
    assert compute_leaks(HostSnapshot(processes={5: "a"}), HostSnapshot(processes={5: "a"})) == []
    # restarted by a test (new pid, same command): as found
    assert compute_leaks(HostSnapshot(processes={5: "containerd"}), HostSnapshot(processes={9: "containerd"})) == []
    assert compute_leaks(HostSnapshot(processes={5: "x"}), HostSnapshot(processes={5: "x", 6: "x"})) == ["process: 6 x"]
