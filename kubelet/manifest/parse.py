"""The manifest directory → one :class:`~kubelet.types.ManifestSet` (pure apart from reading the files).

Rules (upstream ``pkg/kubelet/config/file.go``; where nodelet differs it is said):

- The directory is listed non-recursively in name order; only ``*.yaml``, ``*.yml`` and ``*.json`` are read (upstream
  reads every name, editor backups included); dotfiles, other names, subdirectories and non-regular files are skipped.
  A path naming a single file makes it the only manifest (whatever its name). A missing path is an empty set.
- Files over 10 MiB are errors. YAML files may hold several documents (``---``); a JSON file holds one object. In both,
  a ``v1 List`` stands for its ``items``.
- ``v1 Pod`` documents are validated (:mod:`kubelet.manifest.validation`) and defaulted (:mod:`kubelet.manifest.defaults`). Service,
  Endpoints, EndpointSlice, ConfigMap, Secret and Node documents become :class:`OtherObject` for their owners. Any
  other kind is an error.
- Two pods with the same namespace/name (in two files, or twice in one file): the first in file-name order wins, the
  later one is an error naming both places. Other objects conflict the same way per kind.
- A file with any error contributes nothing and is listed in ``broken_files``: the agent keeps that file's last good
  pods running until it is fixed or removed (upstream tears them down).

Every error is a :class:`ManifestError` with the file, the 1-based line of the offending YAML/JSON node (or of the
nearest enclosing node that exists), the Kubernetes field path and the API server's phrasing of the reason.
"""
from __future__ import annotations

import base64
import datetime
import errno
import json
import os
import stat
import time
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from kubelet.manifest.defaults import compute_pod, generate_pod_name
from kubelet.types import ManifestError, ManifestSet, OtherObject, Pod, PodUID
from kubelet.manifest.validation import (
    FieldProblem, Path, duplicate, invalid, parse_path, render_path, required, type_error, unsupported,
    validate_pod,
)
from kubelet.errors import PermanentError

__all__ = ["MAX_FILE_SIZE", "MANIFEST_EXTENSIONS", "OTHER_KINDS", "compute_manifest_set", "list_manifest_files",
           "parse_manifest_bytes"]

MAX_FILE_SIZE = 10 * 1024 * 1024
MANIFEST_EXTENSIONS = (".yaml", ".yml", ".json")
#: kinds handed to other owners, with their accepted apiVersions
OTHER_KINDS: Mapping[str, tuple[str, ...]] = {
    "Service": ("v1",), "Endpoints": ("v1",), "EndpointSlice": ("discovery.k8s.io/v1",), "ConfigMap": ("v1",),
    "Secret": ("v1",), "Node": ("v1",),
}
_CLUSTER_SCOPED = frozenset({"Node"})
_MAX_NODES = 250_000  # alias expansion guard ("billion laughs"): no sane manifest comes close
_MAX_DEPTH = 100  # nesting guard (a Pod is ~15 levels deep): deeper input must be an error, not a RecursionError
_TOO_DEEP = f"document nested too deeply (more than {_MAX_DEPTH} levels; a Pod needs about 15)"

try:
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML without libyaml
    _Loader = yaml.SafeLoader


# ---------------------------------------------------------------------------------------------------------------------
# listing

def is_manifest_name(name: str) -> bool:
    return not name.startswith(".") and name.endswith(MANIFEST_EXTENSIONS)


def list_manifest_files(path: str) -> list[str] | None:
    """The manifest files under ``path`` in name order; None when ``path`` does not exist. Other failures (EACCES,
    EIO) raise OSError: the caller must not mistake an unreadable directory for an empty one."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return None
    if not stat.S_ISDIR(st.st_mode):
        return [path]
    try:
        names = sorted(os.listdir(path))
    except (FileNotFoundError, NotADirectoryError):
        return None
    return [os.path.join(path, n) for n in names if is_manifest_name(n)]


# ---------------------------------------------------------------------------------------------------------------------
# documents with line numbers

@dataclass(kw_only=True)
class _Document:
    index: int
    obj: Any
    lines: dict[Path, int]
    broken: bool = False  # a YAML-level problem (duplicate key): the document yields errors, never objects


class _DocumentError(PermanentError):
    def __init__(self, line: int, path: Path, reason: str) -> None:
        super().__init__(reason)
        self.line, self.path, self.reason = line, path, reason


class _Builder:
    """Plain Python values from a composed YAML node, recording each node's line by field path."""

    def __init__(self) -> None:
        self.constructor = yaml.constructor.SafeConstructor()
        self.lines: dict[Path, int] = {}
        self.problems: list[tuple[int, Path, str]] = []  # duplicate keys
        self.count = 0
        self.stack: set[int] = set()

    def build(self, node: yaml.Node, path: Path) -> Any:
        if len(path) > _MAX_DEPTH:
            raise _DocumentError(node.start_mark.line + 1, path[:_MAX_DEPTH], _TOO_DEEP)
        self.count += 1
        if self.count > _MAX_NODES:
            raise _DocumentError(node.start_mark.line + 1, path, f"document too large (more than {_MAX_NODES} "
                                                                 "YAML nodes, aliases expanded)")
        if isinstance(node, yaml.ScalarNode):
            try:
                return _plain(self.constructor.construct_object(node))
            except yaml.YAMLError as e:
                raise _DocumentError(node.start_mark.line + 1, path,
                                     f"invalid YAML: {getattr(e, 'problem', None) or e}") from None
        if id(node) in self.stack:
            raise _DocumentError(node.start_mark.line + 1, path, "invalid YAML: recursive alias")
        self.stack.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                out = []
                for i, item in enumerate(node.value):
                    self.lines.setdefault(path + (i,), item.start_mark.line + 1)
                    out.append(self.build(item, path + (i,)))
                return out
            return self._mapping(node, path)
        finally:
            self.stack.discard(id(node))

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[str, Any]:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self._key(key_node, path)
            if key in seen:
                self.problems.append((key_node.start_mark.line + 1, path + (key,), duplicate(key) +
                                      ": duplicate key in a YAML/JSON mapping"))
            seen.add(key)
        try:
            self.constructor.flatten_mapping(node)
        except yaml.YAMLError as e:
            raise _DocumentError(node.start_mark.line + 1, path,
                                 f"invalid YAML: {getattr(e, 'problem', None) or e}") from None
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self._key(key_node, path)
            self.lines[path + (key,)] = key_node.start_mark.line + 1
            out[key] = self.build(value_node, path + (key,))
        return out

    def _key(self, key_node: yaml.Node, path: Path) -> str:
        if not isinstance(key_node, yaml.ScalarNode):
            raise _DocumentError(key_node.start_mark.line + 1, path, "invalid YAML: a mapping key must be a scalar")
        key = self.constructor.construct_object(key_node)
        if isinstance(key, bool):
            return "true" if key else "false"
        return "null" if key is None else str(key)


def _plain(value: Any) -> Any:
    """JSON-compatible scalars (YAML timestamps become their text, binary becomes base64 as in the API)."""
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value


def _too_deep_line(text: str, limit: int) -> int:
    """The line where collections first nest deeper than ``limit``, or 0. libyaml's parser is iterative but the
    composer recurses in C, so such input must never reach ``compose`` (it would crash the process); the event
    stream is safe to walk. A YAML error is left for ``compose`` to report."""
    depth = 0
    try:
        for event in yaml.parse(text, Loader=_Loader):
            if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                depth += 1
                if depth > limit:
                    return event.start_mark.line + 1
            elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                depth -= 1
    except yaml.YAMLError as e:
        # PyYAML >= 6.0.4 has a nesting limit of its own in the parser: the same input, the same answer as ours
        mark = getattr(e, "problem_mark", None)
        if "nesting depth" in str(getattr(e, "problem", "") or "") and mark is not None:
            return int(mark.line) + 1
        return 0
    return 0


def _load_yaml(text: str, file: str, errors: list[ManifestError]) -> list[_Document]:
    docs: list[_Document] = []
    index = 0
    line = _too_deep_line(text, _MAX_DEPTH)
    if line:
        errors.append(ManifestError(file=file, line=line, reason=f"invalid YAML: {_TOO_DEEP}"))
        return docs
    try:
        for node in yaml.compose_all(text, Loader=_Loader):
            builder = _Builder()
            try:
                obj = None if node is None else builder.build(node, ())
            except _DocumentError as e:
                errors.append(ManifestError(file=file, line=e.line, field=render_path(e.path), reason=e.reason,
                                            document=index))
                index += 1
                continue
            for line, path, reason in builder.problems:
                errors.append(ManifestError(file=file, line=line, field=render_path(path), reason=reason,
                                            document=index))
            docs.append(_Document(index=index, obj=obj, lines=builder.lines, broken=bool(builder.problems)))
            index += 1
    except yaml.reader.ReaderError as e:  # a character YAML forbids (NUL, other controls): no mark, a position
        before = text[:e.position]
        line, column = before.count("\n") + 1, e.position - (before.rfind("\n") + 1) + 1
        what = f"#x{e.character:04x}" if isinstance(e.character, int) else repr(e.character)
        errors.append(ManifestError(file=file, line=line, document=index,
                                    reason=f"invalid YAML: unacceptable character {what} (column {column}): "
                                           "control characters are not allowed"))
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        reason = f"invalid YAML: {e.problem or e.context}"
        if e.context and e.problem:
            reason += f" ({e.context})"
        errors.append(ManifestError(file=file, line=mark.line + 1 if mark else 0, reason=reason, document=index))
    except yaml.YAMLError as e:
        errors.append(ManifestError(file=file, reason=f"invalid YAML: {e}", document=index))
    return docs


def _depth_exceeds(obj: Any, limit: int) -> bool:
    """Whether lists/objects nest deeper than ``limit`` (iterative: safe on any input)."""
    stack = [(obj, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
    return False


def _load_json(text: str, file: str, errors: list[ManifestError]) -> list[_Document]:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        errors.append(ManifestError(file=file, line=e.lineno, reason=f"invalid JSON: {e.msg} (column {e.colno})"))
        return []
    except RecursionError:
        obj = None
    if obj is None and text.strip() != "null" or _depth_exceeds(obj, _MAX_DEPTH):
        errors.append(ManifestError(file=file, line=1, reason=f"invalid JSON: {_TOO_DEEP}"))
        return []
    # Line numbers (and duplicate keys) from YAML's view of the same text; values from the JSON parser.
    lines: dict[Path, int] = {}
    broken = False
    try:
        node = yaml.compose(text, Loader=_Loader)
        if node is not None:
            builder = _Builder()
            builder.build(node, ())
            lines = builder.lines
            for line, path, reason in builder.problems:
                errors.append(ManifestError(file=file, line=line, field=render_path(path), reason=reason))
            broken = bool(builder.problems)
    except (yaml.YAMLError, _DocumentError):
        pass
    return [_Document(index=0, obj=obj, lines=lines, broken=broken)]


# ---------------------------------------------------------------------------------------------------------------------
# one file

@dataclass(kw_only=True)
class _Found:
    """A valid object of a file, with where its name is (for conflict errors)."""

    key: str
    what: str  # "pod default/web-node1"
    item: Pod | OtherObject
    file: str
    line: int
    document: int
    field: str


@dataclass(kw_only=True)
class _FileResult:
    found: list[_Found] = field(default_factory=list)
    errors: list[ManifestError] = field(default_factory=list)
    object_errors: list[ManifestError] = field(default_factory=list)


#: nodePorts are checked against the configured range by the proxy; at read time only against the port space
ANY_NODE_PORT = (1, 65535)


def compute_owner_parse(obj: Mapping[str, Any], *, kind: str, file: str,
                        node_port_range: tuple[int, int]) -> tuple[Any, tuple[str, str] | None]:
    """Service / EndpointSlice / Endpoints through the proxy's own parser, once, when the manifest is read:
    (parsed, None) or (None, (field path, reason))."""
    from proxy.errors import ServiceSpecError
    from proxy.model import parse_endpoint_doc, parse_service

    try:
        if kind == "Service":
            return parse_service(obj, source=file, node_port_range=node_port_range), None
        return parse_endpoint_doc(obj, source=file), None
    except ServiceSpecError as e:
        return None, (e.field, f"{e.obj}: {e.reason}" if e.obj else e.reason)


_OWNER_PARSED = frozenset({"Service", "EndpointSlice", "Endpoints"})


def _line(lines: Mapping[Path, int], path: Path) -> int:
    while True:
        if path in lines:
            return lines[path]
        if not path:
            return 1
        path = path[:-1]


EMPTY_FILE_REASON = ("empty file: no object in it (the kubelet refuses it too: couldn't parse as pod(Object 'Kind' is "
                     "missing in 'null'))")


def _only_comments(text: str) -> bool:
    return all(not line.strip() or line.lstrip().startswith("#") for line in text.splitlines())


def _parse(data: bytes, *, file: str, node_name: str, first_seen: MutableMapping[PodUID, str] | None,
           clock_ns: Callable[[], int], node_port_range: tuple[int, int] = ANY_NODE_PORT) -> _FileResult:
    result = _FileResult()
    if len(data) > MAX_FILE_SIZE:
        result.errors.append(ManifestError(file=file, reason=f"file is larger than the maximum of {MAX_FILE_SIZE} "
                                                             f"bytes (10 MiB): {len(data)} bytes"))
        return result
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        result.errors.append(ManifestError(file=file, line=line, reason=f"not UTF-8 text (byte 0x{data[e.start]:02x} "
                                                                        f"at offset {e.start})"))
        return result
    if not text.strip() or (not file.endswith(".json") and _only_comments(text)):
        result.errors.append(ManifestError(file=file, reason=EMPTY_FILE_REASON))
        return result
    docs = (_load_json if file.endswith(".json") else _load_yaml)(text, file, result.errors)
    if not result.errors and all(doc.obj is None for doc in docs):
        result.errors.append(ManifestError(file=file, reason=EMPTY_FILE_REASON))
        return result
    for doc in docs:
        if doc.obj is None:
            continue  # an empty document (a trailing ---)
        found_before = len(result.found)
        _document(doc, doc.obj, (), result, file=file, node_name=node_name, first_seen=first_seen, clock_ns=clock_ns,
                  node_port_range=node_port_range)
        if doc.broken:
            del result.found[found_before:]
    return result


def _document(doc: _Document, obj: Any, prefix: Path, result: _FileResult, *, file: str, node_name: str,
              first_seen: MutableMapping[PodUID, str] | None, clock_ns: Callable[[], int],
              node_port_range: tuple[int, int] = ANY_NODE_PORT) -> None:
    def error(path: Path, reason: str) -> None:
        full = prefix + path
        result.errors.append(ManifestError(file=file, line=_line(doc.lines, full), field=render_path(full),
                                           reason=reason, document=doc.index))

    if not isinstance(obj, Mapping):
        error((), type_error(obj, "an object (a Kubernetes resource with apiVersion and kind)"))
        return
    kind, api_version = obj.get("kind"), obj.get("apiVersion")
    if kind in (None, ""):
        error(("kind",), required())
        return
    if not isinstance(kind, str):
        error(("kind",), type_error(kind, "a string"))
        return
    if api_version in (None, ""):
        error(("apiVersion",), required())
        return
    if kind == "List" and prefix == ():
        if api_version != "v1":
            error(("apiVersion",), unsupported(api_version, ("v1",)))
            return
        items = obj.get("items")
        if not isinstance(items, list):
            error(("items",), type_error(items, "a list") if items is not None else required())
            return
        for i, item in enumerate(items):
            _document(doc, item, ("items", i), result, file=file, node_name=node_name, first_seen=first_seen,
                      clock_ns=clock_ns, node_port_range=node_port_range)
        return
    if kind == "Pod":
        if api_version != "v1":
            error(("apiVersion",), unsupported(api_version, ("v1",)))
            return
        problems = validate_pod(obj)
        if not problems:
            full_name = generate_pod_name(obj["metadata"]["name"], node_name)
            if len(full_name) > 253:
                problems.append(FieldProblem(path=("metadata", "name"), reason=invalid(
                    full_name, "must be no more than 253 characters (the name with the node name appended)")))
        for p in problems:
            error(p.path, p.reason)
        if problems:
            return
        pod = compute_pod(obj, file=file, node_name=node_name, prefix=prefix, first_seen=first_seen,
                          clock_ns=clock_ns)
        name_path = prefix + ("metadata", "name")
        result.found.append(_Found(key=f"Pod/{pod.key}", what=f"pod {pod.key}", item=pod, file=file,
                                   line=_line(doc.lines, name_path), document=doc.index,
                                   field=render_path(name_path)))
        return
    if kind not in OTHER_KINDS:
        error(("kind",), f'Unsupported value: "{kind}": unknown kind (nodelet reads Pod, '
                         + ", ".join(OTHER_KINDS) + " and List)")
        return
    if api_version not in OTHER_KINDS[kind]:
        error(("apiVersion",), unsupported(api_version, OTHER_KINDS[kind]))
        return
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping):
        error(("metadata",), required() if meta is None else type_error(meta, "an object"))
        return
    name, namespace = meta.get("name"), meta.get("namespace")
    if name in (None, ""):
        error(("metadata", "name"), required())
        return
    if not isinstance(name, str):
        error(("metadata", "name"), type_error(name, "a string"))
        return
    if namespace is not None and not isinstance(namespace, str):
        error(("metadata", "namespace"), type_error(namespace, "a string"))
        return
    namespace = "" if kind in _CLUSTER_SCOPED else (namespace or "default")
    parsed = None
    if kind in _OWNER_PARSED:
        parsed, problem = compute_owner_parse(obj, kind=kind, file=file, node_port_range=node_port_range)
        if problem is not None:
            full = prefix + parse_path(problem[0])
            result.object_errors.append(ManifestError(file=file, line=_line(doc.lines, full), field=render_path(full),
                                                      reason=problem[1], document=doc.index))
    other = OtherObject(kind=kind, api_version=str(api_version), name=name, namespace=namespace, source=file,
                        body=obj, parsed=parsed)
    key = f"{namespace}/{name}" if namespace else name
    name_path = prefix + ("metadata", "name")
    result.found.append(_Found(key=f"{kind}/{key}", what=f"{kind} {key}", item=other, file=file,
                               line=_line(doc.lines, name_path), document=doc.index, field=render_path(name_path)))


def _claim(found: _Found, claimed: dict[str, _Found]) -> ManifestError | None:
    first = claimed.get(found.key)
    if first is None:
        claimed[found.key] = found
        return None
    where = (f"earlier in this file (line {first.line})" if first.file == found.file
             else f"in {first.file}:{first.line} (the first file in name order wins)")
    name = found.item.manifest["metadata"]["name"] if isinstance(found.item, Pod) else found.item.name
    return ManifestError(file=found.file, line=found.line, field=found.field, document=found.document,
                         reason=f"{duplicate(name)}: {found.what} is already declared {where}")


def parse_manifest_bytes(data: bytes, *, file: str, node_name: str,
                         first_seen: MutableMapping[PodUID, str] | None = None,
                         clock_ns: Callable[[], int] = time.time_ns,
                         ) -> tuple[list[Pod], list[OtherObject], list[ManifestError]]:
    """The valid pods and other objects of one file's content, and its errors (duplicates within the file included).

    A caller that follows the directory rules drops the pods and objects of a file with errors
    (:func:`compute_manifest_set` does)."""
    result = _parse(data, file=file, node_name=node_name, first_seen=first_seen, clock_ns=clock_ns)
    claimed: dict[str, _Found] = {}
    pods: list[Pod] = []
    others: list[OtherObject] = []
    for found in result.found:
        err = _claim(found, claimed)
        if err is not None:
            result.errors.append(err)
        elif isinstance(found.item, Pod):
            pods.append(found.item)
        else:
            others.append(found.item)
    return pods, others, sorted(result.errors, key=_error_order)


def _error_order(e: ManifestError) -> tuple[int, int]:
    return (e.document, e.line)


_RACY_S = 2.0  # a file changed this recently is never served from the cache (timestamps are coarse: "racy git")


@dataclass(frozen=True)
class _Stamp:
    dev: int
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int


def _read(file: str, cache: MutableMapping[str, tuple[_Stamp, Any]] | None) -> tuple[bytes | None, _Stamp | None]:
    """The file's bytes (at most MAX_FILE_SIZE + 1) and its stamp; (None, None) if it vanished or is not a regular
    file; (None, stamp) when ``cache`` holds a result for exactly this stamp."""
    try:
        fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            return None, None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None, None
        stamp = _Stamp(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        if cache is not None and file in cache and cache[file][0] == stamp:
            return None, stamp
        chunks = []
        remaining = MAX_FILE_SIZE + 1
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks), stamp
    finally:
        os.close(fd)


def compute_manifest_set(path: str, *, node_name: str, first_seen: MutableMapping[PodUID, str] | None = None,
                         clock_ns: Callable[[], int] = time.time_ns,
                         cache: MutableMapping[str, tuple[Any, Any]] | None = None,
                         node_port_range: tuple[int, int] = ANY_NODE_PORT) -> ManifestSet:
    """Everything ``path`` (a directory or one file) declares right now, as one snapshot.

    ``first_seen`` maps UIDs to their ``kubernetes.io/config.seen`` time: read for known UIDs, recorded for new ones,
    so the annotation stays stable across relists. ``cache`` (owned by the caller, one per path and node name) keeps
    each file's parse result by (device, inode, size, mtime, ctime), so a periodic relist of unchanged files only
    stats them; files modified in the last 2 s are always read again. Services, EndpointSlices and Endpoints are
    parsed by the proxy's parser here (nodePorts checked against ``node_port_range``); their problems are
    ``object_errors`` (file:line), which leave the rest of the file alone."""
    files = list_manifest_files(path)
    if cache is not None:
        for stale in set(cache) - set(files or ()):
            del cache[stale]
    if not files:
        return ManifestSet()
    claimed: dict[str, _Found] = {}
    pods: list[Pod] = []
    others: list[OtherObject] = []
    errors: list[ManifestError] = []
    object_errors: list[ManifestError] = []
    broken: set[str] = set()
    for file in files:
        try:
            data, stamp = _read(file, cache)
        except OSError as e:
            errors.append(ManifestError(file=file, reason=f"cannot read: {e.strerror or e}"))
            broken.add(file)
            continue
        if stamp is None:
            continue
        if data is None:
            assert cache is not None
            result = cache[file][1]
        else:
            try:
                result = _parse(data, file=file, node_name=node_name, first_seen=first_seen, clock_ns=clock_ns,
                                node_port_range=node_port_range)
            except Exception as e:  # a parser bug must cost one file, never the whole relist
                result = _FileResult(errors=[ManifestError(
                    file=file, reason=f"internal error while parsing (a nodelet bug, please report): {e!r}")])
            if cache is not None:
                if clock_ns() - max(stamp.mtime_ns, stamp.ctime_ns) > _RACY_S * 1e9:
                    cache[file] = (stamp, result)
                else:
                    cache.pop(file, None)
        file_errors = list(result.errors)
        for found in result.found:  # every valid object claims its name, even in a file that is broken otherwise
            err = _claim(found, claimed)
            if err is not None:
                file_errors.append(err)
        if file_errors:
            errors.extend(sorted(file_errors, key=_error_order))
            broken.add(file)
            continue
        for found in result.found:
            (pods if isinstance(found.item, Pod) else others).append(found.item)
        object_errors.extend(sorted(result.object_errors, key=_error_order))
    return ManifestSet(pods=tuple(pods), others=tuple(others), errors=tuple(errors), broken_files=frozenset(broken),
                       object_errors=tuple(object_errors))
