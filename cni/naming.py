"""Names nodelet-cni gives host objects, pure and import-light (the no-server DEL path uses them without netlink)."""
from __future__ import annotations

import hashlib
import re

from .config import Attachment, ContainerId

HOST_VETH_RE = re.compile(r"^veth[0-9a-f]{8}$")


def compute_host_veth_name(network: str, container_id: str, ifname: str) -> str:
    """`veth` + 8 hex like the reference, but derived from the attachment so DEL/GC can find it."""
    return "veth" + hashlib.sha256(f"{network}/{container_id}/{ifname}".encode()).hexdigest()[:8]


def render_alias(network: str, owner: Attachment) -> str:
    return f"nodelet-cni net={network} id={owner.container_id} if={owner.ifname}"


def parse_alias(alias: str) -> tuple[str, Attachment] | None:
    if not alias.startswith("nodelet-cni "):
        return None
    parts = dict(p.split("=", 1) for p in alias.split()[1:] if "=" in p)
    if "net" not in parts or "id" not in parts:
        return None
    return parts["net"], Attachment(container_id=ContainerId(parts["id"]), ifname=parts.get("if", ""))
