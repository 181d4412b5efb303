"""proxy/labels.py: the one copy of DNS-1123 names and label-selector matching (kubelet and proxy import it)."""
from __future__ import annotations

import pytest

from proxy.labels import (compute_selector_match, is_dns1035_label, is_dns1123_label, is_dns1123_subdomain, match_labels,
                          parse_label_selector)


@pytest.mark.parametrize("value,label,subdomain,dns1035", [
    ("web", True, True, True), ("web-1", True, True, True), ("1web", True, True, False), ("a.b", False, True, False),
    ("Web", False, False, False), ("-a", False, False, False), ("a" * 64, False, True, False), ("a..b", False, False, False),
])
def test_names(value: str, label: bool, subdomain: bool, dns1035: bool) -> None:
    assert (is_dns1123_label(value), is_dns1123_subdomain(value), is_dns1035_label(value)) == (label, subdomain, dns1035)


def test_map_selector_and_parsed_equality_selector_agree() -> None:
    labels = {"app": "web", "tier": "front"}
    for sel, want in ((("app", "web"),), True), ((("app", "web"), ("tier", "back")), False), ((), True):
        assert match_labels(sel, labels) is want
        text = ",".join(f"{k}={v}" for k, v in sel)
        assert compute_selector_match(parse_label_selector(text), labels) is want


def test_kubelet_and_proxy_use_the_same_functions() -> None:
    import kubelet.server.api as api
    import proxy.labels as labels

    assert api.compute_selector_match is labels.compute_selector_match and api.SelectorError is labels.SelectorError
