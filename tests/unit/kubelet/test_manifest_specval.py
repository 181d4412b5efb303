"""Issue 15, validation side: integer and quantity bounds, API references (kubelet >= 1.34), security settings that
nodelet does not honour, the downward API, and error quality. Each case: the exact ``file:line: field: reason`` lines."""
from __future__ import annotations

import textwrap

import pytest

from kubelet.manifest.parse import parse_manifest_bytes

F = "/m/pod.yaml"
C = "containers:\n- name: c\n  image: x\n"
APPARMOR = "{name: web, annotations: {container.apparmor.security.beta.kubernetes.io/c: runtime/default}}"


def errors_of(spec_yaml: str, meta: str = "{name: web}") -> list[str]:
    text = ("apiVersion: v1\nkind: Pod\nmetadata: " + meta + "\nspec:\n"
            + textwrap.indent(textwrap.dedent(spec_yaml).strip("\n"), "  ") + "\n")
    pods, _, errors = parse_manifest_bytes(text.encode(), file=F, node_name="node1")
    assert not (pods and errors)
    return [str(e) for e in errors]


CASES = [
    pytest.param('terminationGracePeriodSeconds: 9223372036854775808\n' + C, "{name: web}",
      [f'{F}:5: spec.terminationGracePeriodSeconds: Invalid value: 9223372036854775808: must be a 64-bit integer (between -9223372036854775808 and 9223372036854775807, inclusive): the field is an int64 in the Pod API'],
      id='grace'),
    pytest.param(C + '  resources: {limits: {memory: 9223372036854775808}}\n', "{name: web}",
      [f'{F}:8: spec.containers[0].resources.limits.memory: Invalid value: 9223372036854775808: must be less than or equal to 9223372036854775807 in its base unit (2^63-1: the kubelet and the runtime hold quantities as 64-bit integers)'],
      id='mem'),
    pytest.param(C + '  resources: {limits: {cpu: 1e99999999999}}\n', "{name: web}",
      [f'{F}:8: spec.containers[0].resources.limits.cpu: Invalid value: "1e99999999999": unable to parse quantity\'s suffix (the exponent must fit in 32 bits)'],
      id='cpu'),
    pytest.param(C + "  resources: {limits: {cpu: '9223372036854776'}}\n", "{name: web}",
      [f'{F}:8: spec.containers[0].resources.limits.cpu: Invalid value: "9223372036854776": must be less than or equal to 9223372036854775807m: the runtime gets cpu in millicores as a 64-bit integer'],
      id='cpu-milli'),
    pytest.param(C + '  ports: [{containerPort: 2147483648}]\n', "{name: web}",
      [f'{F}:8: spec.containers[0].ports[0].containerPort: Invalid value: 2147483648: must be a 32-bit integer (between -2147483648 and 2147483647, inclusive): the field is an int32 in the Pod API'],
      id='port'),
    pytest.param(C + '  livenessProbe: {tcpSocket: {port: 80}, periodSeconds: 2147483648}\n', "{name: web}",
      [f'{F}:8: spec.containers[0].livenessProbe.periodSeconds: Invalid value: 2147483648: must be a 32-bit integer'],
      id='probe'),
    pytest.param(C + '  livenessProbe: {tcpSocket: {port: 80}, terminationGracePeriodSeconds: 9223372036854775807}\n', "{name: web}",
      [],
      id='probe-grace'),
    pytest.param('tolerations: [{key: k, operator: Exists, effect: NoExecute, tolerationSeconds: 9223372036854775808}]\n' + C, "{name: web}",
      [f'{F}:5: spec.tolerations[0].tolerationSeconds: Invalid value: 9223372036854775808: must be a 64-bit integer (between -9223372036854775808 and 9223372036854775807, inclusive): the field is an int64 in the Pod API'],
      id='toleration'),
    pytest.param('topologySpreadConstraints: [{maxSkew: 2147483648, topologyKey: k, whenUnsatisfiable: DoNotSchedule}]\n' + C, "{name: web}",
      [f'{F}:5: spec.topologySpreadConstraints[0].maxSkew: Invalid value: 2147483648: must be a 32-bit integer (between -2147483648 and 2147483647, inclusive): the field is an int32 in the Pod API'],
      id='tsc'),
    pytest.param('affinity: {nodeAffinity: {preferredDuringSchedulingIgnoredDuringExecution: [{weight: 99999999999999999999, preference: {}}]}}\n' + C, "{name: web}",
      [f'{F}:5: spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight: Invalid value: 99999999999999999999: must be a 32-bit integer (between -2147483648 and 2147483647, inclusive): the field is an int32 in the Pod API'],
      id='affinity-int64'),
    pytest.param('serviceAccountName: default\nserviceAccount: default\nimagePullSecrets: [{name: reg}]\n' + C, "{name: web}",
      [f'{F}:5: spec.serviceAccountName: Forbidden: static pods may not reference serviceaccounts',
      f'{F}:6: spec.serviceAccount: Forbidden: static pods may not reference serviceaccounts',
      f'{F}:7: spec.imagePullSecrets: Forbidden: static pods may not reference secrets'],
      id='sa'),
    pytest.param(C + 'ephemeralContainers: [{name: debug, image: busybox}]\n', "{name: web}",
      [f'{F}:8: spec.ephemeralContainers: Forbidden: cannot be set on create'],
      id='ephemeral'),
    pytest.param(C + "volumes:\n- {name: a, persistentVolumeClaim: {claimName: x}}\n- {name: b, csi: {driver: d, nodePublishSecretRef: {name: s}}}\n- {name: c, csi: {driver: d}}\n- {name: d, projected: {sources: [{serviceAccountToken: {path: t}}, {configMap: {name: x}}]}}\n- {name: e, image: {reference: 'quay.io/crio/artifact:v2'}}\n- {name: f, configMap: {name: local}}\n", "{name: web}",
      [f'{F}:9: spec.volumes[0].persistentVolumeClaim: Forbidden: static pods may not reference persistentvolumeclaims',
      f'{F}:10: spec.volumes[1].csi.nodePublishSecretRef: Forbidden: static pods may not reference secrets',
      f'{F}:11: spec.volumes[2].csi: Forbidden: static pods may not reference csidrivers (via CSI volumes)',
      f'{F}:12: spec.volumes[3].projected.sources[0].serviceAccountToken: Forbidden: static pods may not reference serviceaccounts (via projected volumes)',
      f"{F}:13: spec.volumes[4].image: Forbidden: image volumes are not supported by nodelet's runtime: they need the CRI image mount (Mount.image), which containerd implements from 2.1 on; containerd 1.6 has none, and nodelet does not fake it"],
      id='vol-refs'),
    pytest.param(C + '  env:\n  - {name: A, valueFrom: {secretKeyRef: {name: s, key: k}}}\n  envFrom:\n  - configMapRef: {name: x}\n  - {secretRef: {name: y}, prefix: P_}\n', "{name: web}",
      [f'{F}:9: spec.containers[0].env[0].valueFrom.secretKeyRef: Forbidden: static pods may not reference secrets',
      f'{F}:11: spec.containers[0].envFrom[0].configMapRef: Forbidden: static pods may not reference configmaps',
      f'{F}:12: spec.containers[0].envFrom[1].secretRef: Forbidden: static pods may not reference secrets'],
      id='env-refs'),
    pytest.param('hostUsers: false\n' + C, "{name: web}",
      [f"{F}:5: spec.hostUsers: Forbidden: user namespaces are not supported by nodelet's runtime: `hostUsers: false` needs the CRI user-namespace option (NamespaceOption.userns_options), which containerd implements from 2.0 on (with runc >= 1.2 and Linux >= 6.3 for idmapped mounts); containerd 1.6 would silently run the pod in the node's user namespace"],
      id='hostusers'),
    pytest.param("securityContext: {seLinuxOptions: {level: 's0:c1'}, supplementalGroupsPolicy: Strict, windowsOptions: {runAsUserName: u}}\nruntimeClassName: gvisor\n" + C + '  securityContext: {appArmorProfile: {type: RuntimeDefault}, seLinuxOptions: {}}\n', "{name: web}",
      [f"{F}:5: spec.securityContext.supplementalGroupsPolicy: Forbidden: Strict is not supported by nodelet's runtime: containerd 1.6 always adds the groups of the image's /etc/group (the CRI SupplementalGroupsPolicy needs containerd >= 2.0)",
      f"{F}:5: spec.securityContext.seLinuxOptions: Forbidden: SELinux labels are not applied by nodelet (it passes none to the runtime, so the container would run with the runtime's default label)",
      f'{F}:5: spec.securityContext.windowsOptions: Forbidden: Windows-only settings: nodelet runs Linux containers, where they would have no effect',
      f'{F}:6: spec.runtimeClassName: Forbidden: not supported by nodelet: it passes no runtime handler to the runtime, so the pod would run with the default one (runc) instead of the isolation the RuntimeClass names',
      f'{F}:10: spec.containers[0].securityContext.appArmorProfile: Forbidden: AppArmor profiles are not applied by nodelet (it passes none to the runtime, so the profile would be ignored)'],
      id='security'),
    pytest.param(C, APPARMOR,
      [f'{F}:3: metadata.annotations[container.apparmor.security.beta.kubernetes.io/c]: Forbidden: AppArmor profiles are not applied by nodelet (it does not pass them to the runtime); remove the annotation rather than have it ignored'],
      id='apparmor-ann'),
    pytest.param(C + 'volumes:\n- name: d\n  downwardAPI:\n    defaultMode: 0644\n    items:\n    - {path: ../x, fieldRef: {fieldPath: metadata.name}}\n    - {path: ip, fieldRef: {fieldPath: status.podIP}}\n    - {path: cpu, resourceFieldRef: {resource: limits.cpu, divisor: 2}}\n    - {path: labels, fieldRef: {fieldPath: metadata.labels}}\n    - {path: both}\n', "{name: web}",
      [f'{F}:13: spec.volumes[0].downwardAPI.items[0].path: Invalid value: "../x": must not contain \'..\'',
      f'{F}:14: spec.volumes[0].downwardAPI.items[1].fieldRef.fieldPath: Unsupported value: "status.podIP": supported values: "metadata.annotations", "metadata.annotations[\'<key>\']", "metadata.labels", "metadata.labels[\'<key>\']", "metadata.name", "metadata.namespace", "metadata.uid"',
      f'{F}:15: spec.volumes[0].downwardAPI.items[2].resourceFieldRef.containerName: Required value',
      f"{F}:15: spec.volumes[0].downwardAPI.items[2].resourceFieldRef.divisor: Invalid value: 2: only divisor's values 1m and 1 are supported with the cpu resource",
      f'{F}:17: spec.volumes[0].downwardAPI.items[4]: Required value: one of fieldRef and resourceFieldRef is required'],
      id='downward'),
    pytest.param(C + '  env:\n  - {name: A, valueFrom: {resourceFieldRef: {resource: limits.gpu}}}\n  - {name: B, valueFrom: {resourceFieldRef: {resource: requests.memory, divisor: 1m}}}\n  - {name: C, valueFrom: {resourceFieldRef: {resource: limits.cpu, divisor: 1m}}}\n  - {name: D, valueFrom: {fieldRef: {fieldPath: status.hostIPs}}}\n', "{name: web}",
      [f'{F}:9: spec.containers[0].env[0].valueFrom.resourceFieldRef.resource: Unsupported value: "limits.gpu": supported values: "limits.cpu", "limits.ephemeral-storage", "limits.memory", "requests.cpu", "requests.ephemeral-storage", "requests.memory"',
      f'{F}:10: spec.containers[0].env[1].valueFrom.resourceFieldRef.divisor: Invalid value: "1m": only divisor\'s values 1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, 1Ti, 1Pi, 1Ei are supported with the memory resource'],
      id='resfield'),
    pytest.param(C + '  readinessProbe: {httpGet: {prot: 80, path: /}, periodSeconds: 5, timeout: 1}\n', "{name: web}",
      [f'{F}:8: spec.containers[0].readinessProbe.timeout: Forbidden: unknown field',
      f'{F}:8: spec.containers[0].readinessProbe.httpGet.prot: Forbidden: unknown field',
      f'{F}:8: spec.containers[0].readinessProbe.httpGet.port: Required value'],
      id='probe-typo'),
    pytest.param(C + '  readinessProbe: {tcpSocket: [80]}\n', "{name: web}",
      [f'{F}:8: spec.containers[0].readinessProbe.tcpSocket: Invalid value: a list: must be an object'],
      id='probe-list'),
]


@pytest.mark.parametrize("spec,meta,expected", CASES)
def test_exact_errors(spec: str, meta: str, expected: list[str]) -> None:
    assert errors_of(spec, meta) == expected


def test_accepted_without_errors() -> None:
    """What stays valid: the local ConfigMap/Secret extension, hostUsers: true, empty option objects, every env
    downward-API path and resourceFieldRef, int64 values at their maximum."""
    assert errors_of("""
    containers:
    - name: c
      image: x
      env:
      - {name: A, valueFrom: {fieldRef: {fieldPath: spec.serviceAccountName}}}
      - {name: B, valueFrom: {fieldRef: {fieldPath: status.podIPs}}}
      - {name: C, valueFrom: {fieldRef: {fieldPath: status.hostIPs}}}
      - {name: D, valueFrom: {fieldRef: {fieldPath: "metadata.annotations['x.io/y']"}}}
      - {name: E, valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Mi}}}
      - {name: F, valueFrom: {resourceFieldRef: {containerName: c, resource: requests.cpu, divisor: 1m}}}
      - {name: G, valueFrom: {resourceFieldRef: {resource: limits.ephemeral-storage, divisor: 1Gi}}}
      securityContext: {seLinuxOptions: {}, windowsOptions: {}}
      resources: {limits: {memory: 9223372036854775807, cpu: '9223372036854775'}}
    hostUsers: true
    terminationGracePeriodSeconds: 9223372036854775807
    securityContext: {supplementalGroupsPolicy: Merge, fsGroupChangePolicy: Always}
    volumes:
    - {name: cm, configMap: {name: local-config}}
    - {name: s, secret: {secretName: local-secret}}
    """) == []


@pytest.mark.parametrize("data,expected", [
    (b"", "/m/a.yaml: empty file: no object in it (the kubelet refuses it too: couldn't parse as pod(Object 'Kind' "
          "is missing in 'null'))"),
    (b"# only a comment\n---\n", "/m/a.yaml: empty file: no object in it (the kubelet refuses it too: couldn't "
                                 "parse as pod(Object 'Kind' is missing in 'null'))"),
    (b"apiVersion: v1\nkind: Pod\nmetadata: {name: a\x00b}\n",
     "/m/a.yaml:3: invalid YAML: unacceptable character #x0000 (column 19): control characters are not allowed"),
])
def test_empty_file_and_nul_byte(data: bytes, expected: str) -> None:
    pods, others, errors = parse_manifest_bytes(data, file="/m/a.yaml", node_name="n")
    assert (pods, others, [str(e) for e in errors]) == ([], [], [expected])
    assert "\n" not in expected


def test_resource_field_ref_env_values() -> None:
    from kubelet.kuberuntime.podconfig import compute_env

    pods, _, errors = parse_manifest_bytes(textwrap.dedent("""
        apiVersion: v1
        kind: Pod
        metadata: {name: p}
        spec:
          containers:
          - name: a
            image: x
            resources: {limits: {cpu: 1500m, memory: 64Mi}, requests: {cpu: 250m}}
            env:
            - {name: CPU_LIMIT, valueFrom: {resourceFieldRef: {resource: limits.cpu}}}
            - {name: CPU_REQUEST_M, valueFrom: {resourceFieldRef: {resource: requests.cpu, divisor: 1m}}}
            - {name: MEM_MI, valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Mi}}}
            - {name: MEM_REQUEST, valueFrom: {resourceFieldRef: {resource: requests.memory}}}
            - {name: B_MEM, valueFrom: {resourceFieldRef: {containerName: b, resource: limits.memory}}}
            - {name: B_CPU, valueFrom: {resourceFieldRef: {containerName: b, resource: limits.cpu, divisor: 1m}}}
            - {name: B_DISK_GI, valueFrom: {resourceFieldRef: {containerName: b, resource: limits.ephemeral-storage,
                                                               divisor: 1Gi}}}
            - {name: IPS, valueFrom: {fieldRef: {fieldPath: status.podIPs}}}
            - {name: HOST_IPS, valueFrom: {fieldRef: {fieldPath: status.hostIPs}}}
            - {name: SA, valueFrom: {fieldRef: {fieldPath: spec.serviceAccountName}}}
          - name: b
            image: x
        """).encode(), file="f.yaml", node_name="n")
    assert errors == []
    pod = pods[0]
    env = compute_env(pod.spec.containers[0], pod, pod_ip="10.0.0.5", host_ip="192.168.1.2",
                      allocatable={"cpu": 4000, "memory": 8 << 30, "ephemeral-storage": 100 << 30})
    assert env == [
        ("CPU_LIMIT", "2"),  # 1500m rounded up to whole cores, as upstream
        ("CPU_REQUEST_M", "250"), ("MEM_MI", "64"),
        ("MEM_REQUEST", str(64 << 20)),  # a request defaults to its limit
        ("B_MEM", str(8 << 30)), ("B_CPU", "4000"), ("B_DISK_GI", "100"),  # no limit: the node's allocatable
        ("IPS", "10.0.0.5"), ("HOST_IPS", "192.168.1.2"), ("SA", ""),
    ]


def test_quantities_never_overflow() -> None:
    from kubelet.kuberuntime.resources import MAX_QUANTITY, QuantityError, compute_pod_resources, parse_quantity

    assert parse_quantity("9223372036854775807") == MAX_QUANTITY
    assert parse_quantity("7Ei") == 7 * 2**60 and parse_quantity("1e-99") > 0
    for bad in ("1e99999999999", "1e-99999999999", "1e9999", "9223372036854775808", "8Ei1", "100Ei"):
        with pytest.raises(QuantityError):
            parse_quantity(bad)
    # two limits within bounds whose sum is not: the pod cgroup gets the largest value a CRI int64 can hold
    from kubelet.kuberuntime.resources import parse_resource_requirements

    big = parse_resource_requirements({"limits": {"memory": str(MAX_QUANTITY), "cpu": "9223372036854775"}})
    r = compute_pod_resources([big, big])
    assert r.memory_limit_in_bytes == MAX_QUANTITY and r.cpu_quota == MAX_QUANTITY


@pytest.mark.parametrize("file", ["/m/a.yaml", "/m/a.json"])
def test_deep_nesting_is_an_error_not_a_recursion_error(file: str) -> None:
    for depth in (150, 5000, 100_000):
        data = b"[" * depth + b"]" * depth
        pods, _, errors = parse_manifest_bytes(data, file=file, node_name="n")
        assert pods == [] and len(errors) == 1
        assert "nested too deeply (more than 100 levels" in errors[0].reason and errors[0].line == 1


def test_downward_api_volume_files() -> None:
    from kubelet.kuberuntime.downward import compute_projection_files, parse_downward_api_volume
    from kubelet.kuberuntime.podconfig import resource_field_value

    pods, _, errors = parse_manifest_bytes(textwrap.dedent("""
        apiVersion: v1
        kind: Pod
        metadata: {name: p, labels: {zone: us-east, app: web}, annotations: {build: two}}
        spec:
          containers:
          - name: c
            image: x
            resources: {limits: {cpu: 500m}}
          volumes:
          - name: info
            downwardAPI:
              defaultMode: 0640
              items:
              - {path: labels, fieldRef: {fieldPath: metadata.labels}}
              - {path: build, fieldRef: {fieldPath: "metadata.annotations['build']"}}
              - {path: name, fieldRef: {fieldPath: metadata.name}, mode: 0600}
              - {path: sub/cpu, resourceFieldRef: {containerName: c, resource: limits.cpu, divisor: 1m}}
              - {path: mem, resourceFieldRef: {containerName: c, resource: limits.memory, divisor: 1Mi}}
        """).encode(), file="/m/p.yaml", node_name="node1")
    assert errors == []
    pod = pods[0]
    source = parse_downward_api_volume(pod.manifest["spec"]["volumes"][0]["downwardAPI"])
    allocatable = {"cpu": 2000, "memory": 1 << 30}
    files = compute_projection_files(source, pod, resource_value=lambda r, c: resource_field_value(r, c, pod,
                                                                                                    allocatable))
    assert files == {
        "labels": (b'app="web"\nzone="us-east"', 0o640),  # fieldpath.FormatMap: sorted, quoted, no final newline
        "build": (b"two", 0o640),
        "name": (b"p-node1", 0o600),
        "sub/cpu": (b"500", 0o640),
        "mem": (b"1024", 0o640),  # no limit: the node's allocatable
    }
    from kubelet.kuberuntime.downward import format_map
    assert format_map({"x": 'say "hi"\n'}) == 'x="say \\"hi\\"\\n"'  # Go's %q
