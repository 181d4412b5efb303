"""Every field of the upstream ``kubelet.config.k8s.io/v1beta1`` KubeletConfiguration and what nodelet does with it.

Source: kubernetes ``staging/src/k8s.io/kubelet/config/v1beta1/types.go`` (json names) and
``pkg/kubelet/apis/config/v1beta1/defaults.go`` (defaults). :data:`HONOURED` fields are keys of nodelet's own table in
``kubelet.config`` and follow upstream semantics (a zero Duration or empty value means the upstream default).
:data:`IGNORED` fields are accepted and ignored with one Warning (log + node event), never fatal; each says why.
A name in neither set is a typo: an error naming the closest known field.
"""
from __future__ import annotations

API_VERSION = "kubelet.config.k8s.io/v1beta1"
KIND = "KubeletConfiguration"

#: upstream fields nodelet implements (each is also a key of ``kubelet.config._KEYS``)
HONOURED: frozenset[str] = frozenset({
    "staticPodPath", "podLogsDir", "syncFrequency", "fileCheckFrequency", "healthzPort", "healthzBindAddress",
    "clusterDomain", "clusterDNS", "imageGCHighThresholdPercent", "imageGCLowThresholdPercent", "cgroupDriver",
    "maxPods", "podCIDR", "resolvConf", "containerLogMaxSize", "containerLogMaxFiles", "containerRuntimeEndpoint",
    # cluster mode's etcd node lease; nodelet's default is 10 s where the kubelet's is 40 s (README, cluster mode)
    "nodeLeaseDurationSeconds",
})

#: upstream fields whose zero value (``0s``, ``0``, ``""``) means "use the default" (non-pointer ``omitempty`` fields
#: that ``SetDefaults_KubeletConfiguration`` fills in when zero)
ZERO_IS_DEFAULT: frozenset[str] = frozenset({
    "podLogsDir", "syncFrequency", "fileCheckFrequency", "healthzBindAddress", "maxPods", "containerLogMaxSize",
    "containerRuntimeEndpoint", "cgroupDriver", "nodeLeaseDurationSeconds",
})

_SERVER = "nodelet serves no kubelet API port (10250/10255): kubectl talks to its own Kubernetes API (apiPort)"
_CLUSTER = "nodelet registers with no API server (cluster mode registers the node in etcd)"
_TLS = "no TLS server and no API server client certificates"
_EVICT = "nodelet does no node-pressure eviction"
_RESMGR = "no CPU/memory/topology manager: containers get plain cgroup limits"
_ALLOC = "no node-allocatable enforcement (pods go under kubepods without reservations)"
_GATES = "nodelet has no feature gates: its features are always on"
_LOG = "logging is Python logging to stderr (journald under systemd); -v/-vv set the level"

#: upstream fields nodelet accepts and ignores, with the reason shown in the warning
IGNORED: dict[str, str] = {
    "enableServer": _SERVER, "address": _SERVER, "port": _SERVER, "readOnlyPort": _SERVER,
    "tlsCertFile": _TLS, "tlsPrivateKeyFile": _TLS, "tlsCipherSuites": _TLS, "tlsCurvePreferences": _TLS,
    "tlsMinVersion": _TLS, "rotateCertificates": _TLS, "serverTLSBootstrap": _TLS,
    "authentication": _SERVER, "authorization": _SERVER,
    "enableDebuggingHandlers": _SERVER, "enableContentionProfiling": _SERVER, "enableSystemLogHandler": _SERVER,
    "enableSystemLogQuery": _SERVER, "enableProfilingHandler": _SERVER, "enableDebugFlagsHandler": _SERVER,
    "httpCheckFrequency": "no HTTP manifest source", "staticPodURL": "no HTTP manifest source",
    "staticPodURLHeader": "no HTTP manifest source",
    "registryPullQPS": "image pulls are not rate limited", "registryBurst": "image pulls are not rate limited",
    "serializeImagePulls": "image pulls run per pod worker, not serialised",
    "maxParallelImagePulls": "image pulls run per pod worker, not capped",
    "imagePullCredentialsVerificationPolicy": "no image pull secrets", "preloadedImagesVerificationAllowlist":
        "no image pull secrets",
    "eventRecordQPS": "events are kept in memory, not rate limited", "eventBurst": "events are kept in memory",
    "oomScoreAdj": "nodelet does not change its own OOM score",
    "streamingConnectionIdleTimeout": "deprecated upstream; no effect",
    "nodeStatusUpdateFrequency": _CLUSTER, "nodeStatusReportFrequency": _CLUSTER,
    "registerNode": _CLUSTER, "registerWithTaints": _CLUSTER,
    "contentType": _CLUSTER, "kubeAPIQPS": _CLUSTER, "kubeAPIBurst": _CLUSTER, "providerID": _CLUSTER,
    "configMapAndSecretChangeDetectionStrategy": _CLUSTER, "enableControllerAttachDetach": _CLUSTER,
    "imageMinimumGCAge": "image GC frees unused images by disk threshold only",
    "imageMaximumGCAge": "image GC frees unused images by disk threshold only",
    "volumeStatsAggPeriod": "no volume stats", "volumePluginDir": "no flexvolume plugins",
    "kubeletCgroups": _ALLOC, "systemCgroups": _ALLOC, "cgroupRoot": "pod cgroups are always under kubepods",
    "cgroupsPerQOS": "QoS cgroups are always on", "enforceNodeAllocatable": _ALLOC, "systemReserved": _ALLOC,
    "kubeReserved": _ALLOC, "reservedSystemCPUs": _ALLOC, "systemReservedCgroup": _ALLOC,
    "kubeReservedCgroup": _ALLOC,
    "cpuManagerPolicy": _RESMGR, "cpuManagerPolicyOptions": _RESMGR, "cpuManagerReconcilePeriod": _RESMGR,
    "draManagerReconcilePeriod": "no dynamic resource allocation", "memoryManagerPolicy": _RESMGR,
    "topologyManagerPolicy": _RESMGR, "topologyManagerScope": _RESMGR, "topologyManagerPolicyOptions": _RESMGR,
    "qosReserved": _RESMGR, "reservedMemory": _RESMGR, "memoryThrottlingFactor": _RESMGR,
    "memoryReservationPolicy": _RESMGR, "singleProcessOOMKill": "the runtime's default OOM grouping applies",
    "runtimeRequestTimeout": "CRI calls use nodelet's own per-call timeouts",
    "hairpinMode": "the bridge's hairpin setting comes from the CNI conflist nodelet writes",
    "podPidsLimit": "no pod PID limit", "runOnce": "nodelet always runs as a daemon",
    "cpuCFSQuota": "CPU limits always become a CFS quota", "cpuCFSQuotaPeriod": "the CFS period is always 100ms",
    "nodeStatusMaxImages": _CLUSTER, "maxOpenFiles": "nodelet does not change its own file limit",
    "evictionHard": _EVICT, "evictionSoft": _EVICT, "evictionSoftGracePeriod": _EVICT,
    "evictionPressureTransitionPeriod": _EVICT, "evictionMaxPodGracePeriod": _EVICT,
    "evictionMinimumReclaim": _EVICT, "mergeDefaultEvictionSettings": _EVICT, "podsPerCore": "only maxPods caps pods",
    "protectKernelDefaults": "nodelet sets only the sysctls pod networking needs",
    "makeIPTablesUtilChains": "the service proxy owns its chains; no KUBE-IPTABLES-HINT",
    "iptablesMasqueradeBit": "deprecated upstream; no effect", "iptablesDropBit": "deprecated upstream; no effect",
    "featureGates": _GATES, "failSwapOn": "nodelet runs with or without swap",
    "memorySwap": "containers get no swap settings", "containerLogMaxWorkers": "log rotation runs in one task",
    "containerLogMonitorInterval": "log rotation checks on nodelet's own interval",
    "allowedUnsafeSysctls": "pod sysctls are validated by nodelet's own safe list",
    "kernelMemcgNotification": _EVICT, "logging": _LOG, "showHiddenMetricsForVersion": "no hidden metrics",
    "shutdownGracePeriod": "no graceful node shutdown (systemd inhibitor); stopping nodelet leaves pods running",
    "shutdownGracePeriodCriticalPods": "no graceful node shutdown",
    "shutdownGracePeriodByPodPriority": "no graceful node shutdown",
    "crashLoopBackOff": "the restart back-off uses the upstream fixed 10s..300s",
    "seccompDefault": "no node-wide default seccomp profile (RuntimeDefault only where a pod asks)",
    "tracing": "no OpenTelemetry tracing", "localStorageCapacityIsolation": "no ephemeral-storage accounting",
    "imageServiceEndpoint": "images go to containerRuntimeEndpoint", "failCgroupV1": "cgroup v1 and v2 both work",
    "userNamespaces": "no user-namespace ID mapping settings",
}

assert not HONOURED & IGNORED.keys()
assert ZERO_IS_DEFAULT <= HONOURED
