"""Image GC choices (pure): thresholds and the order images go in. Real-backed: tests/e2e/test_podspec_imagegc.py."""
from __future__ import annotations

from kubelet.kuberuntime.imagegc import ImageRecord, compute_amount_to_free, compute_images_to_remove


def test_amount_to_free_between_thresholds() -> None:
    assert compute_amount_to_free(capacity=1000, available=200, high=85, low=80) == 0  # 80 % used
    assert compute_amount_to_free(capacity=1000, available=150, high=85, low=80) == 50  # 85 %: down to 80 %
    assert compute_amount_to_free(capacity=1000, available=50, high=85, low=80) == 150
    assert compute_amount_to_free(capacity=0, available=0, high=85, low=80) == 0


def test_least_recently_used_first_never_in_use_pinned_or_young() -> None:
    recs = [
        ImageRecord(id="used", size=100, first_detected=0, last_used=50, in_use=True),
        ImageRecord(id="pinned", size=100, first_detected=0, last_used=0, pinned=True),
        ImageRecord(id="young", size=100, first_detected=990, last_used=0),
        ImageRecord(id="recent", size=100, first_detected=0, last_used=40),
        ImageRecord(id="old", size=100, first_detected=0, last_used=10),
        ImageRecord(id="never", size=100, first_detected=5, last_used=0),
    ]
    assert [r.id for r in compute_images_to_remove(recs, amount=150, now=1000, min_age=120)] == ["never", "old"]
    assert [r.id for r in compute_images_to_remove(recs, amount=10_000, now=1000, min_age=120)] == ["never", "old", "recent"]
    assert compute_images_to_remove(recs, amount=0, now=1000, min_age=0) == []
