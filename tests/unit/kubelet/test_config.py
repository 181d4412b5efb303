"""The configuration file and flags: defaults, value parsing, errors naming file/flag, key and reason."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from kubelet.config import (
    ConfigError, NodeletConfig, config_keys, default_node_name, load_config, parse_duration, parse_quantity,
)


def write(tmp_path: Path, text: str) -> str:
    f = tmp_path / "config.yaml"
    f.write_text(text)
    return str(f)


def test_defaults() -> None:
    c = load_config(None)
    assert c == NodeletConfig(node_name=default_node_name())
    assert c.node_name == default_node_name() and c.node_name == c.node_name.lower()
    assert (c.static_pod_path, c.container_runtime_endpoint) == ("/etc/kubernetes/manifests",
                                                                  "unix:///run/containerd/containerd.sock")
    assert (c.pod_cidr, c.cluster_dns, c.cluster_domain) == ("", (), "cluster.local")
    assert (c.pod_logs_dir, c.root_dir) == ("/var/log/pods", "/var/lib/nodelet")
    assert (c.healthz_bind_address, c.healthz_port) == ("127.0.0.1", 10248)
    assert (c.file_check_frequency, c.sync_frequency, c.max_pods) == (20.0, 60.0, 110)
    assert (c.api_socket, c.cni_conf_dir, c.cni_bin_dir) == ("/run/nodelet/nodelet.sock", "/etc/cni/net.d",
                                                             "/opt/cni/bin")
    assert (c.proxy_mode, c.service_cidr, c.node_port_range) == ("iptables", "10.96.0.0/12", (30000, 32767))
    assert (c.etcd_endpoints, c.etcd_prefix, c.cluster_cidr, c.node_cidr_mask_size, c.node_lease_duration_seconds) == \
        ((), "/nodelet", "", 24, 10)
    assert (c.container_log_max_size, c.container_log_max_files) == (10 * 2**20, 5)
    assert (c.image_gc_high_threshold_percent, c.image_gc_low_threshold_percent) == (85, 80)


def test_full_file(tmp_path: Path) -> None:
    f = write(tmp_path, """
apiVersion: nodelet.io/v1alpha1
kind: NodeletConfiguration
staticPodPath: /srv/manifests
containerRuntimeEndpoint: /run/k3s/containerd.sock
nodeName: worker-1.example
podCIDR: 10.244.1.0/24
clusterDNS: [10.96.0.10, "fd00::a"]
clusterDomain: corp.local
healthzPort: 0
fileCheckFrequency: 1m30s
syncFrequency: 500ms
maxPods: 20
proxyMode: nftables
nodePortRange: 31000-31999
etcdEndpoints: [https://10.0.0.1:2379, "https://etcd2.example:2379"]
etcdCAFile: /etc/nodelet/etcd/ca.pem
etcdCertFile: /etc/nodelet/etcd/client.pem
etcdKeyFile: /etc/nodelet/etcd/client-key.pem
etcdPrefix: /corp/nodelet/
clusterCIDR: 10.244.0.0/16
nodeCIDRMaskSize: 25
nodeLeaseDurationSeconds: 6
containerLogMaxSize: 1Gi
containerLogMaxFiles: 2
imageGCHighThresholdPercent: 95
imageGCLowThresholdPercent: 90
""")
    c = load_config(f)
    assert c.static_pod_path == "/srv/manifests"
    assert c.container_runtime_endpoint == "unix:///run/k3s/containerd.sock"
    assert (c.node_name, c.pod_cidr, c.cluster_dns) == ("worker-1.example", "10.244.1.0/24", ("10.96.0.10", "fd00::a"))
    assert (c.cluster_domain, c.healthz_port, c.file_check_frequency, c.sync_frequency) == ("corp.local", 0, 90.0,
                                                                                            0.5)
    assert (c.max_pods, c.proxy_mode, c.node_port_range) == (20, "nftables", (31000, 31999))
    assert c.etcd_endpoints == ("https://10.0.0.1:2379", "https://etcd2.example:2379")
    assert (c.etcd_ca_file, c.etcd_cert_file, c.etcd_key_file) == ("/etc/nodelet/etcd/ca.pem", "/etc/nodelet/etcd/client.pem",
                                                                   "/etc/nodelet/etcd/client-key.pem")
    assert (c.etcd_prefix, c.cluster_cidr, c.node_cidr_mask_size, c.node_lease_duration_seconds) == \
        ("/corp/nodelet", "10.244.0.0/16", 25, 6)
    assert (c.container_log_max_size, c.container_log_max_files) == (2**30, 2)
    assert (c.image_gc_high_threshold_percent, c.image_gc_low_threshold_percent) == (95, 90)


def test_empty_file_is_defaults(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "# nothing\n"), {"nodeName": "n"}) == NodeletConfig(node_name="n")


def test_flags_win(tmp_path: Path) -> None:
    f = write(tmp_path, "maxPods: 20\nnodeName: from-file\nclusterDNS: [10.0.0.1]\n")
    c = load_config(f, {"maxPods": "30", "clusterDNS": "10.0.0.2, 10.0.0.3", "fileCheckFrequency": "5s",
                        "nodeName": None})
    assert (c.max_pods, c.cluster_dns, c.file_check_frequency, c.node_name) == (30, ("10.0.0.2", "10.0.0.3"), 5.0,
                                                                                "from-file")
    assert load_config(None, {"maxPods": 7}).max_pods == 7  # typed flag values too


@pytest.mark.parametrize("text,expected", [
    ("maxPod: 20\n", 'maxPod: unknown key (did you mean "maxPods"?)'),
    ("evictionHrad: {}\n", 'evictionHrad: unknown key (did you mean "evictionHard"?)'),
    ("zzz: 1\n", "zzz: unknown key"),
    ("maxpods: 20\n", 'maxpods: unknown key (did you mean "maxPods"?)'),
    ("apiVersion: kubelet.config.k8s.io/v1beta1\n", 'kind: must be kubelet.config.k8s.io/v1beta1 '
                                                    'KubeletConfiguration or nodelet.io/v1alpha1 NodeletConfiguration, '
                                                    'not null'),
    ("kind: KubeletConfiguration\n", 'apiVersion: must be "kubelet.config.k8s.io/v1beta1" for kind '
                                      'KubeletConfiguration, not null'),
    ("apiVersion: kubelet.config.k8s.io/v1alpha1\nkind: KubeletConfiguration\n",
     'apiVersion: must be "kubelet.config.k8s.io/v1beta1" for kind KubeletConfiguration, not '
     '"kubelet.config.k8s.io/v1alpha1"'),
    ("kind: NodeletConfig\n", 'kind: must be kubelet.config.k8s.io/v1beta1 KubeletConfiguration or '
                               'nodelet.io/v1alpha1 NodeletConfiguration, not "NodeletConfig"'),
    ("maxPods: many\n", 'maxPods: must be an integer, not a string'),
    ("maxPods: -1\n", "maxPods: must be at least 1, not -1"),
    ("maxPods: true\n", "maxPods: must be an integer, not a boolean"),
    ("healthzPort: 70000\n", "healthzPort: must be between 0 and 65535, inclusive, not 70000"),
    ("fileCheckFrequency: 20\n", 'fileCheckFrequency: must be a duration with a unit such as "20s", not the '
                                 "number 20"),
    ("fileCheckFrequency: 20 s\n", 'fileCheckFrequency: invalid duration "20 s" (expected a Go duration such as '
                                   '"20s", "1m30s", "500ms")'),
    ("syncFrequency: -1s\n", 'syncFrequency: invalid duration "-1s" (expected a Go duration such as "20s", '
                              '"1m30s", "500ms")'),
    ("cgroupDriver: systemD\n", 'cgroupDriver: must be one of cgroupfs, systemd, not "systemD"'),
    ("resolvConf: resolv.conf\n", 'resolvConf: must be an absolute path, not "resolv.conf"'),
    ("metricsBindAddress: localhost:1\n", 'metricsBindAddress: must be "IP:port" such as "127.0.0.1:10247" '
                                           '(IPv6: "[::1]:10247"), not "localhost:1"'),
    ("podCIDR: 10.244.1.1/24\n", 'podCIDR: must be a CIDR such as "10.244.0.0/24", not "10.244.1.1/24" '
                                 "(10.244.1.1/24 has host bits set)"),
    ("clusterDNS: 10.96.0.10\n", "clusterDNS: must be a list of IP addresses, not a string"),
    ("clusterDNS: [10.96.0.300]\n", 'clusterDNS: item 0: must be an IP address, not "10.96.0.300"'),
    ("clusterDomain: Cluster.Local\n", 'clusterDomain: must be a DNS domain such as "cluster.local", not '
                                       '"Cluster.Local"'),
    ("podLogsDir: logs\n", 'podLogsDir: must be an absolute path, not "logs"'),
    ("containerRuntimeEndpoint: tcp://1.2.3.4:1\n", 'containerRuntimeEndpoint: must be "unix:///path/to/socket" '
                                                    '(or an absolute socket path), not "tcp://1.2.3.4:1"'),
    ("nodeName: My_Node\n", 'nodeName: invalid node name "My_Node": a lowercase RFC 1123 subdomain must consist '
                            "of lower case alphanumeric characters, '-' or '.', and must start and end with an "
                            "alphanumeric character (e.g. 'example.com', regex used for validation is "
                            "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"),
    ("proxyMode: ipvs\n", 'proxyMode: must be one of iptables, nftables, none, not "ipvs"'),
    ("nodePortRange: 32767-30000\n", 'nodePortRange: must satisfy 1 <= first <= last <= 65535, not '
                                     '"32767-30000"'),
    ("containerLogMaxSize: 10MB\n", 'containerLogMaxSize: invalid quantity "10MB" (expected a number with an '
                                    'optional suffix such as "10Mi")'),
    ("containerLogMaxFiles: 1\n", "containerLogMaxFiles: must be at least 2, not 1"),
    ("imageGCLowThresholdPercent: 85\n", "imageGCLowThresholdPercent: must be less than "
                                         "imageGCHighThresholdPercent (85 >= 85)"),
    ("imageGCHighThresholdPercent: 101\n", "imageGCHighThresholdPercent: must be between 0 and 100, inclusive, "
                                           "not 101"),
    ("- a\n", "must be a mapping of keys to values, not a list"),
    ("maxPods: [\n", "invalid YAML: line 3: expected the node content, but found '<stream end>'"),
])
def test_bad_file_values(tmp_path: Path, text: str, expected: str) -> None:
    f = write(tmp_path, "nodeName: n\n" + text if not text.startswith("-") else text)
    with pytest.raises(ConfigError) as e:
        load_config(f)
    assert str(e.value) == f"{f}: {expected}".replace(":  ", ": ")


@pytest.mark.parametrize("overrides,expected", [
    ({"maxPods": "x"}, 'flag --max-pods: maxPods: must be an integer, not "x"'),
    ({"nope": "1"}, "flags: nope: unknown key"),
    ({"fileCheckFrequency": "fast"}, 'flag --file-check-frequency: fileCheckFrequency: invalid duration "fast" '
                                     '(expected a Go duration such as "20s", "1m30s", "500ms")'),
])
def test_bad_flags(overrides: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(None, {"nodeName": "n", **overrides})
    assert str(e.value) == expected


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(str(tmp_path / "none.yaml"))
    assert str(e.value) == f"{tmp_path / 'none.yaml'}: cannot read: No such file or directory"


@pytest.mark.parametrize("text,seconds", [
    ("20s", 20.0), ("1m", 60.0), ("1m30s", 90.0), ("500ms", 0.5), ("1h2m3s", 3723.0), ("1.5h", 5400.0),
    ("0", 0.0), ("100us", 1e-4), ("2µs", 2e-6), ("7ns", 7e-9),
])
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "s", "20", "-1s", "1d", "1m 30s", "1.2.3s"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize("text,size", [
    ("10Mi", 10 * 2**20), ("1Gi", 2**30), ("100M", 10**8), ("1k", 1000), ("512", 512), ("1.5Ki", 1536),
])
def test_parse_quantity(text: str, size: int) -> None:
    assert parse_quantity(text) == size


def test_config_keys_cover_every_field() -> None:
    keys = config_keys()
    assert [k.attr for k in keys] == [f.name for f in dataclasses.fields(NodeletConfig) if f.name != "warnings"]
    by_key = {k.key: k for k in keys}
    assert by_key["staticPodPath"].default == "/etc/kubernetes/manifests"
    assert by_key["fileCheckFrequency"].type == "duration" and by_key["fileCheckFrequency"].default == "20s"
    assert by_key["podCIDR"].flag == "--pod-cidr"
    assert all(k.help for k in keys)
    # every documented default parses to the dataclass default
    for k in keys:
        if k.key in ("nodeName", "resolvConf"):  # computed defaults
            continue
        default_text = "" if k.default == '""' else k.default
        value = [] if k.default == "[]" else default_text
        parsed = load_config(None, {"nodeName": "n", k.key: value})
        assert getattr(parsed, k.attr) == getattr(NodeletConfig(), k.attr), k.key


FIXTURES = Path(__file__).parent / "fixtures"


def test_kubeadm_kubelet_configuration_is_accepted_as_is() -> None:
    """kubeadm's file: honoured fields follow upstream (0s and "" are the defaults), the rest is one warning."""
    c = load_config(str(FIXTURES / "kubelet-config-kubeadm.yaml"), {"nodeName": "n"})
    assert c == NodeletConfig(node_name="n", cgroup_driver="systemd", cluster_dns=("10.96.0.10",),
                              resolv_conf="/run/systemd/resolve/resolv.conf")
    assert (c.file_check_frequency, c.sync_frequency) == (20.0, 60.0)  # "0s" is the default, not off
    assert c.container_runtime_endpoint == "unix:///run/containerd/containerd.sock"  # "" is the default
    assert len(c.warnings) == 1
    warning = c.warnings[0]
    for ignored in ("authentication", "authorization", "rotateCertificates", "logging", "memorySwap",
                    "runtimeRequestTimeout", "shutdownGracePeriod", "crashLoopBackOff"):
        assert f"{ignored} (" in warning
    for honoured in ("cgroupDriver", "resolvConf", "fileCheckFrequency", "staticPodPath", "clusterDNS"):
        assert f"{honoured} (" not in warning
    assert warning.startswith(f"{FIXTURES / 'kubelet-config-kubeadm.yaml'}: 18 KubeletConfiguration field(s) "
                              "nodelet does not implement, ignored: authentication (")


def test_minimal_two_document_file() -> None:
    c = load_config(str(FIXTURES / "kubelet-config-minimal.yaml"))
    assert (c.static_pod_path, c.max_pods, c.node_name, c.pod_cidr) == ("/srv/manifests", 110, "worker-1",
                                                                        "10.244.1.0/24")
    assert c.warnings == ()


@pytest.mark.parametrize("text,expected", [
    ("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nevictionHrad: {}\n",
     'evictionHrad: unknown key (did you mean "evictionHard"?)'),
    ("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nfileCheckFrequncy: 0s\n",
     'fileCheckFrequncy: unknown key (did you mean "fileCheckFrequency"?)'),
    ("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nproxyMode: nftables\n",
     "proxyMode: not a KubeletConfiguration field: put nodelet's own settings in a NodeletConfiguration document "
     "(nodelet.io/v1alpha1)"),
    ("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nmaxPods: many\n",
     "maxPods: must be an integer, not a string"),
    ("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nmaxPods: 5\n---\nmaxPods: 6\n",
     "maxPods: set in both the KubeletConfiguration and the NodeletConfiguration document"),
    ("maxPods: 5\n---\nmaxPods: 6\n", "(document 2): kind: a second NodeletConfiguration document"),
])
def test_kubelet_configuration_errors(tmp_path: Path, text: str, expected: str) -> None:
    f = write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_config(f, {"nodeName": "n"})
    assert str(e.value) == f"{f}: {expected}".replace(": (", " (")


def test_zero_means_default_also_for_flags() -> None:
    c = load_config(None, {"nodeName": "n", "fileCheckFrequency": "0s", "maxPods": "0"})
    assert (c.file_check_frequency, c.max_pods) == (20.0, 110)


def test_every_upstream_field_is_classified() -> None:
    from kubelet import config_v1beta1 as v1beta1

    keys = {k.key for k in config_keys()}
    assert v1beta1.HONOURED <= keys
    assert all(why for why in v1beta1.IGNORED.values())
    assert v1beta1.HONOURED | v1beta1.IGNORED.keys() == UPSTREAM_FIELDS


# json names of every KubeletConfiguration field, in types.go order (kubernetes staging/src/k8s.io/kubelet/config/
# v1beta1/types.go, 1.33 development branch)
UPSTREAM_FIELDS = set("""
enableServer staticPodPath podLogsDir syncFrequency fileCheckFrequency httpCheckFrequency staticPodURL
staticPodURLHeader address port readOnlyPort tlsCertFile tlsPrivateKeyFile tlsCipherSuites tlsCurvePreferences
tlsMinVersion rotateCertificates serverTLSBootstrap authentication authorization registryPullQPS registryBurst
imagePullCredentialsVerificationPolicy preloadedImagesVerificationAllowlist eventRecordQPS eventBurst
enableDebuggingHandlers enableContentionProfiling healthzPort healthzBindAddress oomScoreAdj clusterDomain clusterDNS
streamingConnectionIdleTimeout nodeStatusUpdateFrequency nodeStatusReportFrequency nodeLeaseDurationSeconds
imageMinimumGCAge imageMaximumGCAge imageGCHighThresholdPercent imageGCLowThresholdPercent volumeStatsAggPeriod
kubeletCgroups systemCgroups cgroupRoot cgroupsPerQOS cgroupDriver cpuManagerPolicy singleProcessOOMKill
cpuManagerPolicyOptions cpuManagerReconcilePeriod draManagerReconcilePeriod memoryManagerPolicy topologyManagerPolicy
topologyManagerScope topologyManagerPolicyOptions qosReserved runtimeRequestTimeout hairpinMode maxPods podCIDR
podPidsLimit resolvConf runOnce cpuCFSQuota cpuCFSQuotaPeriod nodeStatusMaxImages maxOpenFiles contentType kubeAPIQPS
kubeAPIBurst serializeImagePulls maxParallelImagePulls evictionHard evictionSoft evictionSoftGracePeriod
evictionPressureTransitionPeriod evictionMaxPodGracePeriod evictionMinimumReclaim mergeDefaultEvictionSettings
podsPerCore enableControllerAttachDetach protectKernelDefaults makeIPTablesUtilChains iptablesMasqueradeBit
iptablesDropBit featureGates failSwapOn memorySwap containerLogMaxSize containerLogMaxFiles containerLogMaxWorkers
containerLogMonitorInterval configMapAndSecretChangeDetectionStrategy systemReserved kubeReserved reservedSystemCPUs
showHiddenMetricsForVersion systemReservedCgroup kubeReservedCgroup enforceNodeAllocatable allowedUnsafeSysctls
volumePluginDir providerID kernelMemcgNotification logging enableSystemLogHandler enableSystemLogQuery
shutdownGracePeriod shutdownGracePeriodCriticalPods shutdownGracePeriodByPodPriority crashLoopBackOff reservedMemory
enableProfilingHandler enableDebugFlagsHandler seccompDefault memoryThrottlingFactor memoryReservationPolicy
registerWithTaints registerNode tracing localStorageCapacityIsolation containerRuntimeEndpoint imageServiceEndpoint
failCgroupV1 userNamespaces
""".split())
@pytest.mark.parametrize("overrides,key,reason", [
    ({"etcdEndpoints": "127.0.0.1:2379"}, "etcdEndpoints", 'item 0: must be a URL such as "https://10.0.0.1:2379", not "127.0.0.1:2379"'),
    ({"etcdPrefix": "nodelet"}, "etcdPrefix", 'must be an absolute key prefix such as "/nodelet", not "nodelet"'),
    ({"etcdCertFile": "/c.pem"}, "etcdKeyFile", "etcdCertFile and etcdKeyFile go together: set both or neither"),
    ({"clusterCIDR": "10.244.0.0/16", "nodeCIDRMaskSize": "12"}, "nodeCIDRMaskSize", "/12 is larger than clusterCIDR 10.244.0.0/16"),
    ({"clusterCIDR": "10.244.0.0/16", "podCIDR": "10.1.0.0/24"}, "podCIDR", "10.1.0.0/24 is not inside clusterCIDR 10.244.0.0/16"),
    ({"nodeLeaseDurationSeconds": "1"}, "nodeLeaseDurationSeconds", "must be between 2 and 3600, inclusive, not 1"),
])
def test_cluster_keys_are_validated(overrides: dict, key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(None, overrides)
    assert (e.value.key, e.value.reason) == (key, reason)


def test_cluster_dir_is_gone() -> None:
    with pytest.raises(ConfigError, match="clusterDir: unknown key"):
        load_config(None, {"clusterDir": "/vagrant/cluster"})
