"""The project's own soak: kill -9 the agent at random points, then containerd, and check nothing was lost,
duplicated or restarted — from containerd's side as well as nodelet's.

    python bench/chaos.py [--cycles 20] [--pods 20] [--seed N]

~`--pods` varied pods (sleepers, exec readiness probes, init containers, a crash loop, a job, hostNetwork,
two-container pods) run on the private test containerd through one agent with pod networking. Each cycle kills
the agent with SIGKILL after a random delay, so kills land during start-up sync, steady state, CNI ADD/DEL and
teardown (every few cycles one pod's manifest is removed and re-added just before the kill), starts a new agent,
waits until every pod is where it should be and checks:
  duplicates   at most one ready sandbox per pod (containerd)
  lost         every manifest pod has its ready sandbox / running containers (containerd) and a status (nodelet)
  restarts     containers that never exit were never restarted (attempt 0 in containerd, restartCount 0)
  backoff      the crash loop's saved delay matches its restarts: 10 s x 2^(n-1) or one step ahead (killed between
               saving and creating), never reset, never doubled twice for one exit
  ips/links/nat  allocation files == pod IPs of ready sandboxes; our labelled veths == ready pod sandboxes;
               the network's NAT set members == allocated IPs
At the end containerd itself is killed -9 and restarted, and the checks run once more. One summary line; exit 1
when any check failed. Run as root, under /work/tools/rootlock.
"""
from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cni.nat import compute_net_hash  # noqa: E402
from kubelet.node.podnet import compute_cni_network  # noqa: E402
from kubelet.node.runtime.testing import start_test_runtime  # noqa: E402
from kubelet.testing import BUSYBOX, AgentProcess, runtime_pods, wait_until  # noqa: E402
from kubelet.types import LABEL_CONTAINER_NAME, LABEL_POD_UID  # noqa: E402

SLEEP = 'command: ["sleep", "3600"]'


def render_pods(n: int) -> dict[str, str]:
    """name -> manifest; the kinds cycle so any n >= 7 has one of each."""
    kinds = ["sleeper", "probed", "init", "crash", "job", "hostnet", "pair"]
    out = {}
    for i in range(n):
        kind = kinds[i % len(kinds)]
        name = f"chaos-{kind}-{i}"
        head = f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  terminationGracePeriodSeconds: 1\n"
        c = f"  - name: main\n    image: {BUSYBOX}\n"
        if kind == "sleeper":
            body = f"  containers:\n{c}    {SLEEP}\n"
        elif kind == "probed":
            body = (f"  containers:\n{c}    {SLEEP}\n    readinessProbe:\n      exec: {{command: [\"true\"]}}\n"
                    "      periodSeconds: 2\n")
        elif kind == "init":
            body = (f"  initContainers:\n  - name: setup\n    image: {BUSYBOX}\n    command: [\"true\"]\n"
                    f"  containers:\n{c}    {SLEEP}\n")
        elif kind == "crash":
            body = f"  containers:\n{c}    command: [\"sh\", \"-c\", \"exit 1\"]\n"
        elif kind == "job":
            body = f"  restartPolicy: Never\n  containers:\n{c}    command: [\"true\"]\n"
        elif kind == "hostnet":
            body = f"  hostNetwork: true\n  containers:\n{c}    {SLEEP}\n"
        else:
            body = (f"  containers:\n{c}    {SLEEP}\n  - name: side\n    image: {BUSYBOX}\n    {SLEEP}\n")
        out[name] = head + body
    return out


def kind_of(name: str) -> str:
    return name.split("-")[1]


def settled(agent: AgentProcess, names: list[str], node: str) -> bool:
    for name in names:
        p = agent.pod(f"{name}-{node}")
        if p is None:
            return False
        phase = p["status"].get("phase")
        kind = kind_of(name)
        if kind == "job":
            if phase != "Succeeded":
                return False
        elif kind == "crash":
            if phase != "Running" or not p["status"].get("podIP"):
                return False
        elif phase != "Running" or not all(c.get("ready") for c in p["status"].get("containerStatuses", [])):
            return False
    return True


def _nft_elements(network: str) -> set[str]:
    p = subprocess.run(["nft", "-j", "list", "set", "ip", "nodelet-cni", f"pods-{compute_net_hash(network)}"],
                       capture_output=True, text=True)
    if p.returncode != 0:
        return set()
    out = set()
    for o in json.loads(p.stdout).get("nftables", []):
        for e in (o.get("set") or {}).get("elem", []) or []:
            out.add(e["elem"]["val"] if isinstance(e, dict) and "elem" in e else str(e))
    return out


def _our_veths(network: str) -> set[str]:
    out = set()
    for link in json.loads(subprocess.run(["ip", "-j", "-d", "link", "show"], capture_output=True, text=True).stdout):
        alias = link.get("ifalias", "")
        if alias.startswith(f"nodelet-cni net={network} "):
            out.add(alias.split("id=", 1)[1].split()[0])
    return out


def backoff_ok(delay: float, attempt: int) -> bool:
    def f(k: int) -> float:
        return min(10.0 * 2 ** (k - 1), 300.0)
    if attempt == 0:
        return delay in (0.0, 10.0)
    return delay in (f(attempt), f(attempt + 1))


def check(agent: AgentProcess, endpoint: str, names: list[str], node: str, root: Path,
          recreated: set[str] | None = None) -> dict[str, list[str]]:
    """Every invariant; {check: [problems]} (empty lists when all is well)."""
    problems: dict[str, list[str]] = {k: [] for k in ("duplicates", "lost", "restarts", "backoff", "ips", "links",
                                                      "nat")}
    rt = runtime_pods(endpoint, node)
    pods = {name: agent.pod(f"{name}-{node}") for name in names}
    net = compute_cni_network(root_dir=str(root))
    store = Path(str(net.data_dir)) / net.name
    pod_ips, pod_sandboxes = set(), set()
    for name, pod in pods.items():
        if pod is None:
            problems["lost"].append(f"{name}: no status in nodelet")
            continue
        uid = pod["metadata"]["uid"]
        r = rt.get(uid)
        ready = [s for s in (r or {}).get("sandboxes", []) if s.state.name == "READY"]
        kind = kind_of(name)
        if len(ready) > 1:
            problems["duplicates"].append(f"{name}: {len(ready)} ready sandboxes")
        if kind != "job" and not ready:
            problems["lost"].append(f"{name}: no ready sandbox in containerd")
        if ready and kind != "hostnet":
            pod_sandboxes.add(ready[0].id)
            if pod["status"].get("podIP"):
                pod_ips.add(pod["status"]["podIP"])
        for c in (r or {}).get("containers", []):
            cname = c.labels.get(LABEL_CONTAINER_NAME, "")
            if name in (recreated or set()):
                continue  # deleted and re-added under the same UID mid-teardown: a restart is legitimate
            if kind in ("sleeper", "probed", "hostnet", "pair", "init") and cname in ("main", "side") \
                    and c.attempt > 0:
                problems["restarts"].append(f"{name}/{cname}: attempt {c.attempt}")
        for cs in pod["status"].get("containerStatuses", []):
            if kind != "crash" and name not in (recreated or set()) and cs.get("restartCount", 0) > 0:
                problems["restarts"].append(f"{name}/{cs['name']}: restartCount {cs['restartCount']}")
        if kind == "crash":
            state = json.loads((root / "state" / "backoff.json").read_text()) \
                if (root / "state" / "backoff.json").exists() else {}
            delay = next((v["delay"] for k, v in state.items() if k.startswith(uid)), 0.0)
            attempt = max((c.attempt for c in (r or {}).get("containers", [])
                           if c.labels.get(LABEL_POD_UID) == uid), default=0)
            if not backoff_ok(delay, attempt):
                problems["backoff"].append(f"{name}: delay {delay} after attempt {attempt}")
    allocated = {p.name for p in store.iterdir() if p.name[0].isdigit()} if store.exists() else set()
    if allocated != pod_ips:
        problems["ips"].append(f"allocated {sorted(allocated - pod_ips)} not in pods; pods {sorted(pod_ips - allocated)}"
                               " without allocation")
    veths = _our_veths(net.name)
    if veths != pod_sandboxes:
        problems["links"].append(f"{len(veths - pod_sandboxes)} veths without a pod sandbox, "
                                 f"{len(pod_sandboxes - veths)} sandboxes without a veth")
    nat = _nft_elements(net.name)
    if nat != allocated:
        problems["nat"].append(f"NAT set {sorted(nat - allocated)} extra, {sorted(allocated - nat)} missing")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cycles", type=int, default=20)
    ap.add_argument("--pods", type=int, default=20)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--settle-timeout", type=float, default=120.0)
    opts = ap.parse_args(argv)
    seed = opts.seed if opts.seed is not None else random.randrange(1 << 30)
    rnd = random.Random(seed)
    t_start = time.monotonic()
    containerd = start_test_runtime()
    pods = render_pods(opts.pods)
    names = sorted(pods)
    failures: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="nodelet-chaos-") as tmp:
        base = Path(tmp)
        node = f"chaos-{uuid.uuid4().hex[:6]}"
        agent = AgentProcess(base, endpoint=containerd.endpoint, node_name=node, runtime=containerd,
                             extra={"cniGCPeriod": "30s"})
        root = Path(agent.config["rootDir"])
        recreated: set[str] = set()

        def record(problems: dict[str, list[str]], when: str) -> None:
            for k, v in problems.items():
                if v:
                    failures[k] = failures.get(k, 0) + len(v)
                    print(f"chaos: {when}: {k}: {'; '.join(v)}", file=sys.stderr)

        try:
            agent.start()
            for name, text in pods.items():
                agent.write(f"{name}.yaml", text)
            wait_until(lambda: settled(agent, names, node), timeout=opts.settle_timeout, what="pods settled")
            record(check(agent, containerd.endpoint, names, node, root, recreated), "initial")
            for cycle in range(opts.cycles):
                point = rnd.choice(["startup", "steady", "teardown"])
                if point == "teardown":  # kill while a pod goes (CNI DEL) or comes back (CNI ADD)
                    victim = rnd.choice([n for n in names if kind_of(n) in ("sleeper", "pair", "probed")])
                    recreated.add(victim)
                    (agent.manifests / f"{victim}.yaml").unlink()
                    time.sleep(rnd.uniform(0.0, 1.5))
                    agent.kill9()
                    agent.write(f"{victim}.yaml", pods[victim])
                    agent.start()
                elif point == "startup":  # kill during the start-up sync of a fresh agent
                    agent.kill9()
                    agent.start()
                    time.sleep(rnd.uniform(0.0, 1.0))
                    agent.kill9()
                    agent.start()
                else:
                    time.sleep(rnd.uniform(0.0, 2.0))
                    agent.kill9()
                    agent.start()
                wait_until(lambda: settled(agent, names, node), timeout=opts.settle_timeout,
                           what=f"pods settled after cycle {cycle} ({point})")
                record(check(agent, containerd.endpoint, names, node, root, recreated), f"cycle {cycle} ({point})")
            containerd.stop(kill=True)
            containerd.start()
            wait_until(lambda: settled(agent, names, node), timeout=opts.settle_timeout,
                       what="pods settled after containerd kill -9")
            record(check(agent, containerd.endpoint, names, node, root, recreated), "after containerd kill -9")
        finally:
            for f in agent.manifests.glob("*.yaml"):
                f.unlink()
            try:
                if agent.proc is None or agent.proc.poll() is not None:
                    agent.start()
                wait_until(lambda: not runtime_pods(containerd.endpoint, node), timeout=120, what="teardown")
            finally:
                agent.stop()
    total = sum(failures.values())
    print(f"chaos: seed={seed} cycles={opts.cycles} pods={opts.pods} containerd-kill=1 "
          + " ".join(f"{k}={failures.get(k, 0)}" for k in ("duplicates", "lost", "restarts", "backoff", "ips",
                                                           "links", "nat"))
          + f" {'OK' if total == 0 else 'FAILED'} in {time.monotonic() - t_start:.0f}s")
    return 0 if total == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
