"""Cluster mode on etcd: nodes with leases, pod subnets, host-gw routes, Services, EndpointSlices, mirror pods.

keys.py (layout, parsing) · view.py (pure view of the keys) · allocate.py (subnet/ClusterIP pickers) ·
endpoints.py (this node's slices and mirror pods) · routes.py (proto-201 host-gw routes) · member.py (the loops).
"""
from .endpoints import compute_pod_infos, render_endpoint_slices
from .keys import ClusterError, Keys
from .member import ClusterConfig, ClusterMember
from .routes import ROUTE_PROTO, RouteTable, compute_routes

__all__ = ["ClusterConfig", "ClusterError", "ClusterMember", "Keys", "ROUTE_PROTO", "RouteTable", "compute_pod_infos",
           "compute_routes", "render_endpoint_slices"]
