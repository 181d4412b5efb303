"""The cni package's one error tree: every failure is a `CNIError` carrying a spec error code.

Codes 1-99 are the CNI spec's (SPEC.md "Error"); 100 and up are nodelet-cni's own. The dispatcher turns any
`CNIError` into the spec's error JSON `{cniVersion, code, msg, details}` and a non-zero exit; anything else that
escapes is reported as code 999 ("internal error", the code libcni's skel uses for untyped errors).
"""
from __future__ import annotations


class CNIError(Exception):
    """A failure with a CNI error code, a message naming the field or resource, and optional details."""

    code: int = 999

    def __init__(self, msg: str, details: str = "", *, code: int | None = None) -> None:
        super().__init__(msg)
        self.msg = msg
        self.details = details
        if code is not None:
            self.code = code

    def to_json(self, cni_version: str) -> dict[str, object]:
        out: dict[str, object] = {"cniVersion": cni_version, "code": self.code, "msg": self.msg}
        if self.details:
            out["details"] = self.details
        return out


# --- spec codes ----------------------------------------------------------------------------------------------
class IncompatibleVersion(CNIError):
    code = 1


class UnsupportedField(CNIError):
    code = 2


class UnknownContainer(CNIError):
    code = 3


class InvalidEnvironment(CNIError):
    code = 4


class IOFailure(CNIError):
    code = 5


class DecodeFailure(CNIError):
    code = 6


class InvalidConfig(CNIError):
    code = 7


class TryAgainLater(CNIError):
    """Retryable: the runtime should call again (e.g. the allocation lock is busy for too long)."""

    code = 11


class NotAvailable(CNIError):
    """STATUS: the plugin cannot serve ADD right now (data dir or bridge unusable)."""

    code = 50


class LimitedConnectivity(CNIError):
    code = 51


# --- nodelet-cni codes (>= 100) ------------------------------------------------------------------------------
class NoAddressesAvailable(CNIError):
    """The range set is exhausted (host-local: "no IP addresses available in range set")."""

    code = 100


class AddressUnavailable(CNIError):
    """A requested IP (CNI_ARGS IP= or runtimeConfig.ips) is outside every range or already allocated."""

    code = 101


class InterfaceExists(CNIError):
    """ADD: CNI_IFNAME already exists in the container's netns (or the host veth name is taken)."""

    code = 102


class NetlinkFailure(CNIError):
    """A netlink request failed (link/address/route creation)."""

    code = 103


class FirewallFailure(CNIError):
    """The ipMasq rules could not be applied (nft failed)."""

    code = 104


class CheckFailed(CNIError):
    """CHECK: the container's networking does not match prevResult."""

    code = 105


class BridgeConflict(CNIError):
    """The configured bridge name is taken by a non-bridge link, or holds an incompatible address."""

    code = 106
