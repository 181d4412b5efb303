"""Pure parts of the backend: error context around a rejected line, backend detection by rule counts."""
from __future__ import annotations

from proxy.backend import _count_rules, chains_in, error_context
from proxy.rules import missing_jumps

TEXT = "\n".join(f"line{i}" for i in range(1, 11))


def test_error_context_iptables_nft_and_legacy_messages() -> None:
    for stderr in ("iptables-restore: line 5 failed", "Error occurred at line: 5",
                   "/dev/stdin:5:3-7: Error: syntax error"):
        ctx = error_context(TEXT, stderr, around=2)
        assert ctx.splitlines() == ["      3: line3", "      4: line4", ">     5: line5", "      6: line6",
                                    "      7: line7"]
    assert error_context(TEXT, "no line number here") == ""
    assert error_context(TEXT, "line 1 failed", around=1).splitlines()[0] == ">     1: line1"


def test_count_rules_and_hint() -> None:
    saved = "*mangle\n:KUBE-IPTABLES-HINT - [0:0]\nCOMMIT\n*nat\n-A POSTROUTING -j MASQUERADE\n-A X -j Y\nCOMMIT\n"
    assert _count_rules(saved) == (2, True)
    assert _count_rules("*filter\nCOMMIT\n") == (0, False)


def test_chains_and_jumps_from_save_output() -> None:
    nat = ("*nat\n:PREROUTING ACCEPT [0:0]\n:NODELET-SERVICES - [0:0]\n:KUBE-SERVICES - [0:0]\n"
           '-A PREROUTING -m comment --comment "nodelet service portals" -j NODELET-SERVICES\nCOMMIT\n')
    assert chains_in(nat) == ["NODELET-SERVICES"]
    missing = missing_jumps({"nat": nat, "filter": ""})
    assert 0 not in missing and len(missing) == 7
