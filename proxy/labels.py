"""Kubernetes names and labels, the one copy for kubelet and proxy: the DNS-1123/1035 name formats of
apimachinery's pkg/util/validation and label-selector parsing and matching (pkg/labels).

Pure and stdlib only. Services (`spec.selector`, a map) match with `match_labels`; `-l` / labelSelector strings go
through `parse_label_selector` then `compute_selector_match`.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from proxy.errors import ProxyError

DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN_FMT = DNS1123_LABEL_FMT + "(\\." + DNS1123_LABEL_FMT + ")*"
DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
DNS1123_LABEL_RE = re.compile(f"^{DNS1123_LABEL_FMT}$")
DNS1123_SUBDOMAIN_RE = re.compile(f"^{DNS1123_SUBDOMAIN_FMT}$")
DNS1035_LABEL_RE = re.compile(f"^{DNS1035_LABEL_FMT}$")


def is_dns1123_label(value: str) -> bool:
    return len(value) <= DNS1123_LABEL_MAX and DNS1123_LABEL_RE.match(value) is not None


def is_dns1123_subdomain(value: str) -> bool:
    return len(value) <= DNS1123_SUBDOMAIN_MAX and DNS1123_SUBDOMAIN_RE.match(value) is not None


def is_dns1035_label(value: str) -> bool:
    return len(value) <= DNS1123_LABEL_MAX and DNS1035_LABEL_RE.match(value) is not None


def match_labels(selector: Iterable[tuple[str, str]], labels: Mapping[str, str] | None) -> bool:
    """A map selector (Service spec.selector, matchLabels) as (key, value) pairs: every pair present and equal."""
    labels = labels or {}
    return all(labels.get(k) == v for k, v in selector)


# ---- label selectors (equality- and set-based, as apimachinery's labels.Parse) ----

class SelectorError(ProxyError, ValueError):
    """A label selector that does not parse (`nodelet get -l`, the API's labelSelector)."""


@dataclass(frozen=True, kw_only=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()


_NAME_RE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$")
_TERM_RE = re.compile(r"^\s*(?P<key>[^\s=!(),]+)\s*(?:(?P<op>==|=|!=)\s*(?P<val>[^\s=!(),]*)|\s+(?P<setop>in|notin)\s*\((?P<set>[^()]*)\))?\s*$")


def _check_key(key: str) -> None:
    prefix, _, name = key.rpartition("/")
    if "/" in key and (not prefix or len(prefix) > 253 or not DNS1123_SUBDOMAIN_RE.match(prefix)):
        raise SelectorError(f"invalid label key {key!r}: prefix part must be a lowercase DNS subdomain")
    if not name or len(name) > 63 or not _NAME_RE.match(name):
        raise SelectorError(
            f"invalid label key {key!r}: name part must be 63 characters or less, consist of alphanumeric characters, "
            "'-', '_' or '.', and must start and end with an alphanumeric character")


def _check_value(value: str) -> None:
    if value and (len(value) > 63 or not _NAME_RE.match(value)):
        raise SelectorError(
            f"invalid label value {value!r}: must be 63 characters or less, empty or consist of alphanumeric "
            "characters, '-', '_' or '.', and must start and end with an alphanumeric character")


def _split_terms(s: str) -> list[str]:
    terms: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise SelectorError("unbalanced ')'")
        if ch == "," and depth == 0:
            terms.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if depth:
        raise SelectorError("unbalanced '('")
    terms.append("".join(cur))
    return terms


def parse_label_selector(selector: str) -> tuple[Requirement, ...]:
    """`a=b,c!=d,e,!f,g in (x,y),h notin (z)` → requirements (all must hold). An empty selector matches everything."""
    if not selector.strip():
        return ()
    reqs: list[Requirement] = []
    for term in _split_terms(selector):
        t = term.strip()
        if not t:
            raise SelectorError(f"unable to parse requirement: empty term in {selector!r}")
        if t.startswith("!"):
            key = t[1:].strip()
            _check_key(key)
            reqs.append(Requirement(key=key, op="!"))
            continue
        m = _TERM_RE.match(t)
        if not m:
            raise SelectorError(f"unable to parse requirement: {t!r} (expected key, !key, key=value, key!=value, key in (…), key notin (…))")
        key = m["key"]
        _check_key(key)
        if m["op"]:
            _check_value(m["val"])
            reqs.append(Requirement(key=key, op="!=" if m["op"] == "!=" else "=", values=(m["val"],)))
        elif m["setop"]:
            values = tuple(v.strip() for v in m["set"].split(","))
            if m["set"].strip() == "":
                raise SelectorError(f"unable to parse requirement: {t!r}: for 'in', 'notin' operators, values set can't be empty")
            for v in values:
                _check_value(v)
            reqs.append(Requirement(key=key, op=m["setop"], values=tuple(sorted(set(values)))))
        else:
            reqs.append(Requirement(key=key, op="exists"))
    return tuple(reqs)


def compute_selector_match(reqs: Iterable[Requirement], labels: Mapping[str, str] | None) -> bool:
    labels = labels or {}
    for r in reqs:
        has = r.key in labels
        v = labels.get(r.key)
        if r.op == "=":
            ok = has and v == r.values[0]
        elif r.op == "!=":
            ok = not has or v != r.values[0]
        elif r.op == "in":
            ok = has and v in r.values
        elif r.op == "notin":
            ok = not has or v not in r.values
        elif r.op == "exists":
            ok = has
        else:  # "!"
            ok = not has
        if not ok:
            return False
    return True


__all__ = ["DNS1035_LABEL_RE", "DNS1123_LABEL_FMT", "DNS1123_LABEL_RE", "DNS1123_SUBDOMAIN_FMT", "DNS1123_SUBDOMAIN_RE",
           "Requirement", "SelectorError", "compute_selector_match", "is_dns1035_label", "is_dns1123_label",
           "is_dns1123_subdomain", "match_labels", "parse_label_selector"]
