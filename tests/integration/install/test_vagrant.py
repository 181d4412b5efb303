"""vagrant/: the Vagrantfile parses (`ruby -c`) and, evaluated against a recording stand-in for Vagrant's config
object, defines N nodes with the documented IPs and pod CIDRs; the provisioning script runs here into a temp root."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
VAGRANTFILE = REPO / "vagrant" / "Vagrantfile"

# A stand-in for Vagrant's configuration DSL (its boundary: Vagrant.configure yields a config object): records every
# call and assignment as [path, args] and prints them as JSON.
RECORDER = r'''
require "json"
LOG = []
class Rec
  def initialize(path) @path = path end
  def method_missing(name, *args, **kw, &blk)
    path = "#{@path}.#{name}"
    LOG << [path, args.map { |a| a.respond_to?(:call) ? "<proc>" : a }, kw]
    child = Rec.new(path)
    blk.call(Rec.new("#{path}(#{args.first})")) if blk
    child
  end
  def respond_to_missing?(*) true end
end
module Vagrant
  def self.configure(version) yield Rec.new("config") end
end
load ARGV[0]
puts JSON.generate(LOG)
'''


def ruby() -> str:
    exe = shutil.which("ruby")
    if exe is None:
        if os.geteuid() != 0:
            pytest.skip("ruby is missing and installing it needs root")
        subprocess.run(["apt-get", "install", "-y", "-qq", "ruby"], check=True, timeout=600, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        exe = shutil.which("ruby")
    assert exe
    return exe


def test_vagrantfile_syntax() -> None:
    p = subprocess.run([ruby(), "-c", str(VAGRANTFILE)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stdout.strip() == "Syntax OK", p


def evaluate(tmp_path: Path, **env: str) -> list[list]:
    rec = tmp_path / "recorder.rb"
    rec.write_text(RECORDER)
    p = subprocess.run([ruby(), str(rec), str(VAGRANTFILE)], capture_output=True, text=True, timeout=60,
                       cwd=VAGRANTFILE.parent, env={**os.environ, **env})
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


ETCD = "node1=192.168.56.11,node2=192.168.56.12,node3=192.168.56.13"


def test_three_nodes_and_three_etcd_members_by_default(tmp_path: Path) -> None:
    log = evaluate(tmp_path)
    defines = [args[0] for path, args, kw in log if path == "config.vm.define"]
    assert defines == ["node1", "node2", "node3"]
    nets = [(path, kw) for path, args, kw in log if path.endswith(".vm.network") and args == ["private_network"]]
    assert [kw["ip"] for _, kw in nets] == ["192.168.56.11", "192.168.56.12", "192.168.56.13"]
    provs = [kw for path, args, kw in log if path.endswith(".vm.provision")]
    assert [kw["args"] for kw in provs] == [
        [f"node{i}", f"192.168.56.1{i}", f"10.244.{i}.0/24", ETCD, "/vagrant/vagrant/pki", "/vagrant"] for i in (1, 2, 3)
    ]
    assert all(kw["path"] == "provision.sh" and (VAGRANTFILE.parent / kw["path"]).exists() for kw in provs)
    assert ["config.vm.box=", ["bento/debian-12"], {}] in log
    sync = next(kw for path, args, kw in log if path == "config.vm.synced_folder")
    assert sync["type"] == "virtualbox"  # shared, not rsync'ed: every node must see the one CA


def test_knobs_at_the_top(tmp_path: Path) -> None:
    log = evaluate(tmp_path, NODELET_NODES="4", NODELET_CPUS="4", NODELET_MEMORY="4096", NODELET_BOX="debian/bookworm64")
    assert [args[0] for path, args, kw in log if path == "config.vm.define"] == ["node1", "node2", "node3", "node4"]
    provs = [kw["args"] for path, args, kw in log if path.endswith(".vm.provision")]
    assert provs[3][:4] == ["node4", "192.168.56.14", "10.244.4.0/24", ETCD]  # a fourth node: no member, a client
    one = [kw["args"] for path, args, kw in evaluate(tmp_path, NODELET_NODES="1") if path.endswith(".vm.provision")]
    assert one[0][3] == "node1=192.168.56.11"
    assert ["config.vm.box=", ["debian/bookworm64"], {}] in log
    assert any(path.endswith(".cpus=") and args == [4] for path, args, kw in log)
    assert any(path.endswith(".memory=") and args == [4096] for path, args, kw in log)


def test_bad_node_count_is_refused(tmp_path: Path) -> None:
    rec = tmp_path / "recorder.rb"
    rec.write_text(RECORDER)
    p = subprocess.run([ruby(), str(rec), str(VAGRANTFILE)], capture_output=True, text=True, timeout=60,
                       cwd=VAGRANTFILE.parent, env={**os.environ, "NODELET_NODES": "0"})
    assert p.returncode != 0 and "NODELET_NODES must be between 1 and 250, got 0" in p.stderr


def test_example_manifests_and_service_are_valid() -> None:
    p = subprocess.run([sys.executable, "-m", "kubelet.cli.main", "validate", str(REPO / "vagrant" / "manifests")], capture_output=True, text=True, timeout=60, cwd="/")
    assert p.returncode == 0 and "3 files, 2 pods, 1 Service valid" in p.stdout, p
    from proxy.model import parse_service

    path = REPO / "vagrant" / "manifests" / "web-service.yaml"
    svc = parse_service(yaml.safe_load(path.read_text()), source=str(path))
    assert svc.cluster_ip == "10.96.0.80" and svc.selector == (("app", "web"),)


@pytest.mark.root
@pytest.mark.slow
def test_provisioner_runs_here_into_a_temp_root(tmp_path: Path) -> None:
    """provision.sh as Vagrant runs it, into a temp root (the installer's --root), twice: the second changes nothing.
    The certificates it makes are checked with openssl, and a real etcd started with its /etc/default/etcd (paths
    moved into the temp root) serves nodelet's client over TLS with client-certificate auth."""
    src = tmp_path / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(".git", "build", "*.egg-info", "__pycache__", "tests", "bench", ".vagrant"))
    root = tmp_path / "root"
    root.mkdir()
    env = dict(os.environ, NODELET_ROOT=str(root), NODELET_PYTHON=sys.executable,
               NODELET_INSTALL_ARGS=f"--root {root} --no-apt --system-site-packages")
    pki = tmp_path / "pki"
    argv = ["bash", str(src / "vagrant" / "provision.sh"), "node1", "127.0.0.1", "10.244.1.0/24", "node1=127.0.0.1", str(pki), str(src)]
    first = subprocess.run(argv, capture_output=True, text=True, timeout=600, env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "provisioned node1 (127.0.0.1, podCIDR 10.244.1.0/24, etcd member: yes, etcd https://127.0.0.1:2379)" in first.stdout
    cfg = yaml.safe_load((root / "etc/nodelet/config.yaml").read_text())
    assert cfg["nodeName"] == "node1" and cfg["nodeIP"] == "127.0.0.1" and cfg["podCIDR"] == "10.244.1.0/24"
    assert cfg["etcdEndpoints"] == ["https://127.0.0.1:2379"] and cfg["clusterCIDR"] == "10.244.0.0/16"
    assert (cfg["etcdCAFile"], cfg["etcdCertFile"], cfg["etcdKeyFile"]) == (
        "/etc/nodelet/etcd/ca.pem", "/etc/nodelet/etcd/node.pem", "/etc/nodelet/etcd/node-key.pem")
    tls = root / "etc/nodelet/etcd"
    v = subprocess.run(["openssl", "verify", "-CAfile", str(tls / "ca.pem"), str(tls / "node.pem")], capture_output=True, text=True)
    assert v.returncode == 0, v.stderr
    env_file = (root / "etc/default/etcd").read_text()
    assert "ETCD_INITIAL_CLUSTER=node1=https://127.0.0.1:2380\n" in env_file and "ETCD_CLIENT_CERT_AUTH=true" in env_file
    assert sorted(p.name for p in (root / "etc/kubernetes/manifests").iterdir()) == ["web-a.yaml", "web-b.yaml", "web-service.yaml"]
    _etcd_from_the_provisioned_files(tmp_path, root, env_file)
    stamp = (root / "etc/kubernetes/manifests/web-a.yaml").stat().st_mtime_ns
    second = subprocess.run(argv, capture_output=True, text=True, timeout=600, env=env)
    assert second.returncode == 0, second.stderr
    assert "nodelet install: 0 changes (changed)" in second.stdout
    assert (root / "etc/kubernetes/manifests/web-a.yaml").stat().st_mtime_ns == stamp


def _etcd_from_the_provisioned_files(tmp_path: Path, root: Path, env_file: str) -> None:
    """Run etcd with the provisioned environment (paths into the temp root, free ports) and talk to it as nodelet
    would, with the provisioned CA and client certificate."""
    import asyncio
    import signal

    from kubelet.node.etcd import EtcdClient, TLSFiles
    from kubelet.node.etcd.testing import free_port

    env = {}
    for line in env_file.splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            env[k] = v.replace("/etc/nodelet", str(root / "etc/nodelet"))
    cport, pport = free_port(), free_port()
    for k in list(env):
        env[k] = env[k].replace(":2379", f":{cport}").replace(":2380", f":{pport}")
    env["ETCD_DATA_DIR"] = str(tmp_path / "etcd-data")
    env["ETCD_LISTEN_CLIENT_URLS"] = f"https://127.0.0.1:{cport}"
    proc = subprocess.Popen(["etcd"], env={**{k: v for k, v in os.environ.items() if not k.startswith("ETCD")}, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    tls = root / "etc/nodelet/etcd"

    async def talk() -> bytes:
        async with EtcdClient([f"https://127.0.0.1:{cport}"], tls=TLSFiles(ca_file=str(tls / "ca.pem"), cert_file=str(tls / "node.pem"),
                                                                         key_file=str(tls / "node-key.pem")), timeout=2) as cl:
            for _ in range(100):
                try:
                    await cl.put("/nodelet/probe", "ok")
                    kv = await cl.get("/nodelet/probe")
                    return kv.value if kv else b""
                except Exception:  # noqa: BLE001 - not up yet
                    await asyncio.sleep(0.1)
            raise AssertionError("the provisioned etcd did not answer over TLS")

    try:
        assert asyncio.run(talk()) == b"ok"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
