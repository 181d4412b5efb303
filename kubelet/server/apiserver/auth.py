"""Who is asking: the verified client certificate's CN is the user, its O entries the groups (as the API server's
x509 authenticator). `system:masters` may do anything; any other authenticated identity (e.g. `nodelet:viewers`)
may read (GET/HEAD/OPTIONS, watches included) and gets 403 on every write. No certificate → 401."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubelet.server.apiserver.certs import ADMIN_GROUP
from kubelet.server.apiserver.status import forbidden, unauthorized

__all__ = ["READ_METHODS", "USER_KEY", "UserInfo", "compute_user", "require_write"]

USER_KEY = "nodelet.user"
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: paths anyone may GET without credentials (the API server's system:public-info-viewer)
PUBLIC_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/version"})


@dataclass(frozen=True, kw_only=True)
class UserInfo:
    name: str
    groups: tuple[str, ...]

    @property
    def can_write(self) -> bool:
        return ADMIN_GROUP in self.groups


ANONYMOUS = UserInfo(name="system:anonymous", groups=("system:unauthenticated",))


def compute_user(peercert: dict[str, Any] | None) -> UserInfo | None:
    """ssl.SSLSocket.getpeercert() (a verified certificate, or {}/None) → the identity, None when there is none."""
    if not peercert:
        return None
    cn, orgs = "", []
    for rdn in peercert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                cn = value
            elif key == "organizationName":
                orgs.append(value)
    if not cn:
        return None
    return UserInfo(name=cn, groups=(*orgs, "system:authenticated"))


def require_write(user: UserInfo | None, *, verb: str, resource: str, group: str = "", name: str = "",
                  namespace: str = "") -> None:
    """Raise 403 (worded as RBAC's) unless the identity may write; 401 when there is none."""
    if user is None or user is ANONYMOUS:
        raise unauthorized()
    if not user.can_write:
        what = f"{resource}.{group}" if group else resource
        named = f'"{name}" ' if name else ""
        where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
        raise forbidden(f'{what} {named}is forbidden: User "{user.name}" cannot {verb} resource "{resource}" '
                        f'in API group "{group}"{where} (a read-only identity)', resource=resource, name=name, group=group)
