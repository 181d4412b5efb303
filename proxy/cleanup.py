"""``nodelet proxy cleanup``: remove everything nodelet's proxy created, and nothing else.

iptables: our jumps from the built-in chains (matched exactly, comment included) and every ``NODELET-`` chain in
nat and filter, in whichever backend (nft or legacy) holds them — a backend without our chains is only read, never
written. nftables: the ``ip nodelet`` table. The ClusterIP allocation state is kept (it is configuration, not rules).
"""
from __future__ import annotations

import asyncio
import logging
import shutil
from dataclasses import dataclass

from proxy.backend import CommandContext, IptablesBackend, NftBackend

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class CleanupSummary:
    iptables: dict[str, dict[str, int]]  # flavor -> {"jumps": n, "chains": n}
    nftables: dict[str, int]

    def __str__(self) -> str:
        parts = [f"iptables-{f}: {v['chains']} chains, {v['jumps']} jumps removed" for f, v in self.iptables.items()]
        if self.nftables:
            parts.append(f"nftables: {self.nftables.get('tables', 0)} table removed")
        return "; ".join(parts) if parts else "nothing to clean"


async def cleanup(mode: str | None = None, *, ctx: CommandContext = CommandContext()) -> CleanupSummary:
    """``mode``: "iptables", "nftables" or None for both."""
    ipt: dict[str, dict[str, int]] = {}
    nft: dict[str, int] = {}
    if mode in (None, "iptables"):
        for flavor in ("nft", "legacy"):
            if not ctx.prefix and shutil.which(f"iptables-{flavor}") is None:
                continue
            backend = IptablesBackend(ctx, flavor)
            if not await backend.list_chains("nat") and not await backend.list_chains("filter"):
                continue  # a jump needs its target chain: no chains, nothing of ours (and nothing gets created)
            ipt[flavor] = await backend.cleanup()
    if mode in (None, "nftables"):
        if ctx.prefix or shutil.which("nft") is not None:
            nft = await NftBackend(ctx).cleanup()
    summary = CleanupSummary(iptables=ipt, nftables=nft)
    log.info("proxy cleanup %s", summary)
    return summary


def cleanup_sync(mode: str | None = None, *, ctx: CommandContext = CommandContext()) -> CleanupSummary:
    """For the CLI: run :func:`cleanup` in a fresh event loop."""
    return asyncio.run(cleanup(mode, ctx=ctx))
