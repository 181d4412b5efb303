"""DNS policies, dnsConfig, hostname/subdomain and hostAliases on real containerd, seen in the container's
/etc/resolv.conf, /etc/hosts and hostname."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from kubelet.testing import AgentProcess, wait_until
from kubelet.testing_podspec import BUSYBOX, module_agent, pod_yaml, sh, teardown_pod, wait_running

pytestmark = [pytest.mark.root, pytest.mark.containerd]


@pytest.fixture(scope="module")
def agent(containerd: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    yield from module_agent(containerd, tmp_path_factory.mktemp("dns"), clusterDNS=["10.96.0.10"], clusterDomain="k8s.test")


def host_nameservers() -> list[str]:
    return [line.split()[1] for line in Path("/etc/resolv.conf").read_text().splitlines() if line.startswith("nameserver")]


def test_cluster_first_dns_config_hostname_subdomain_host_aliases(agent: AgentProcess, containerd: Any) -> None:
    agent.write("dns.yaml", pod_yaml("dns", f"""  hostname: web
  subdomain: group
  dnsConfig:
    searches: [extra.example]
    options: [{{name: ndots, value: "2"}}, {{name: edns0}}]
  hostAliases:
  - {{ip: 10.1.2.3, hostnames: [foo.local, bar.local]}}
  containers:
  - name: c
    image: {BUSYBOX}
    command: ["sleep", "3600"]
  - name: own-hosts
    image: {BUSYBOX}
    command: ["sleep", "3600"]
    volumeMounts: [{{name: h, mountPath: /etc/hosts, subPath: hosts}}]
  volumes: [{{name: h, emptyDir: {{}}}}]
"""))
    pod = wait_running(agent, "dns")
    ip = pod["status"]["podIP"]
    resolv = sh(containerd, pod, "c", "cat /etc/resolv.conf")[1].splitlines()
    assert "nameserver 10.96.0.10" in resolv and not any(s in "\n".join(resolv) for s in host_nameservers())
    search = next(line for line in resolv if line.startswith("search ")).split()[1:]
    assert search[:3] == ["default.svc.k8s.test", "svc.k8s.test", "k8s.test"] and search[-1] == "extra.example"
    options = next(line for line in resolv if line.startswith("options ")).split()[1:]
    assert sorted(options) == ["edns0", "ndots:2"]  # dnsConfig's ndots replaces the default 5
    hosts = sh(containerd, pod, "c", "cat /etc/hosts")[1]
    assert hosts.startswith("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n")
    assert f"{ip}\tweb.group.default.svc.k8s.test\tweb\n" in hosts
    assert hosts.endswith("# Entries added by HostAliases.\n10.1.2.3\tfoo.local\tbar.local\n")
    assert sh(containerd, pod, "c", "hostname")[1] == "web\n"
    assert "Kubernetes-managed" not in sh(containerd, pod, "own-hosts", "cat /etc/hosts")[1]  # its own mount wins
    teardown_pod(agent, containerd, "dns.yaml", pod["metadata"]["uid"])


def test_default_none_and_host_network_policies(agent: AgentProcess, containerd: Any) -> None:
    agent.write("pol.yaml", pod_yaml("pol", f"""  dnsPolicy: Default
  containers:
  - name: c
    image: {BUSYBOX}
    command: ["sleep", "3600"]
"""))
    agent.write("none.yaml", pod_yaml("none", f"""  dnsPolicy: "None"
  dnsConfig: {{nameservers: [1.1.1.1], searches: [a.example]}}
  containers:
  - name: c
    image: {BUSYBOX}
    command: ["sleep", "3600"]
"""))
    agent.write("hn.yaml", pod_yaml("hn", f"""  hostNetwork: true
  dnsPolicy: ClusterFirstWithHostNet
  hostAliases: [{{ip: 10.9.9.9, hostnames: [alias.local]}}]
  containers:
  - name: c
    image: {BUSYBOX}
    command: ["sleep", "3600"]
"""))
    pods = {n: wait_running(agent, n) for n in ("pol", "none", "hn")}
    resolv = sh(containerd, pods["pol"], "c", "cat /etc/resolv.conf")[1]
    assert [line.split()[1] for line in resolv.splitlines() if line.startswith("nameserver")] == host_nameservers()
    resolv = sh(containerd, pods["none"], "c", "cat /etc/resolv.conf")[1].splitlines()
    assert sorted(line for line in resolv if line.startswith(("nameserver", "search"))) == ["nameserver 1.1.1.1", "search a.example"]
    resolv = sh(containerd, pods["hn"], "c", "cat /etc/resolv.conf")[1]
    assert "nameserver 10.96.0.10" in resolv
    hosts = sh(containerd, pods["hn"], "c", "cat /etc/hosts")[1]
    assert hosts.startswith("# Kubernetes-managed hosts file (host network).\n" + Path("/etc/hosts").read_text())
    assert hosts.endswith("10.9.9.9\talias.local\n")
    for n in ("pol", "none", "hn"):
        teardown_pod(agent, containerd, f"{n}.yaml", pods[n]["metadata"]["uid"])


def test_bad_dns_values_are_manifest_errors(agent: AgentProcess) -> None:
    agent.write("baddns.yaml", pod_yaml("baddns", f"""  dnsConfig: {{nameservers: [1.1.1.1, 1.0.0.1, 8.8.8.8, 9.9.9.9], searches: [Bad_Domain]}}
  hostAliases: [{{ip: not-an-ip, hostnames: [x]}}]
  containers:
  - name: c
    image: {BUSYBOX}
"""))
    want = ["spec.dnsConfig.nameservers: Invalid value: a list: must not have more than 3 nameservers",
            'spec.dnsConfig.searches[0]: Invalid value: "Bad_Domain": a lowercase RFC 1123 subdomain',
            'spec.hostAliases[0].ip: Invalid value: "not-an-ip": must be a valid IP address']
    got = wait_until(lambda: (msgs := [e["message"] for e in agent.events() if e["reason"] == "FailedManifest" and "baddns.yaml" in e["message"]])
                     and len(msgs) >= len(want) and msgs, timeout=30, what="manifest errors")
    for w in want:
        assert any(w in m for m in got), (w, got)
    (agent.manifests / "baddns.yaml").unlink()
