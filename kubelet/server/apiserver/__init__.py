"""A Kubernetes API on the node that unmodified kubectl (1.32) drives: HTTPS with client certificates, discovery,
OpenAPI, server-side Tables, lists/watches with resourceVersions, pod logs, and writes that land in staticPodPath.

Modules (each a few hundred lines):

    app.py        make_api_app(view, ...) -> aiohttp.web.Application; ApiServer (TLS site start/stop)
    certs.py      the CA, serving and client certificates under rootDir/pki, kubeconfig rendering
    auth.py       identity from the client certificate (CN = user, O = groups), 401 / 403
    status.py     v1 Status error bodies (the one place HTTP errors are shaped)
    resources.py  the resource registry (names, kinds, verbs, short names, categories) and the APIView protocol
    discovery.py  /version, /api, /apis, /api/v1, /apis/<g>/<v> (legacy and aggregated v2)
    openapi.py    /openapi/v3 (+ per group-version documents) for apply/create --validate=strict and explain
    tables.py     meta.k8s.io/v1 Table columns and cells, as the API server's printers
    store.py      resourceVersions over the view's snapshots, watch history, 410 Gone
    handlers.py   get / list (selectors, limit/continue) / watch (chunked NDJSON)
    logs.py       GET pods/{name}/log (follow, previous, tailLines, sinceSeconds, sinceTime, timestamps, limitBytes)
    writes.py     POST / PUT / PATCH / DELETE → files in staticPodPath named nodelet-api-<ns>-<kind>-<name>.yaml

## Plugging in more handlers (the streaming verbs: exec, attach, portforward)

``make_api_app`` returns a plain ``aiohttp.web.Application`` whose middlewares already authenticate every request
(401 without a valid client certificate) and authorize it (403 for an identity without write access on anything but
GET/HEAD/OPTIONS). Add routes to it *before* the application starts (aiohttp freezes the router then)::

    app = make_api_app(view, runtime=cri_client, ...)
    app.router.add_get("/api/v1/namespaces/{namespace}/pods/{name}/exec", exec_handler)     # WebSocket upgrade
    app.router.add_post("/api/v1/namespaces/{namespace}/pods/{name}/exec", exec_handler)    # SPDY fallback
    app.router.add_get("/api/v1/namespaces/{namespace}/pods/{name}/attach", attach_handler)
    app.router.add_post("/api/v1/namespaces/{namespace}/pods/{name}/attach", attach_handler)
    app.router.add_get("/api/v1/namespaces/{namespace}/pods/{name}/portforward", portforward_handler)
    app.router.add_post("/api/v1/namespaces/{namespace}/pods/{name}/portforward", portforward_handler)

or pass them in: ``make_api_app(view, ..., extra_routes=[("GET", path, handler), ...])`` (what app.py wiring uses,
through ``ApiServer(extra_routes=...)``). A handler is ``async def handler(request: web.Request) ->
web.StreamResponse`` and finds its collaborators on the application:

- ``request.app[VIEW_KEY]`` (the string ``"nodelet.view"``): the :class:`~kubelet.server.apiserver.resources.APIView`.
  ``view.pods()`` is the list of v1 Pod dicts (status included: ``status.containerStatuses[].containerID`` is
  ``containerd://<id>``); :func:`~kubelet.server.apiserver.handlers.find_pod` (``find_pod(view, namespace, name)``)
  does the lookup the read handlers do (exact name, else ``<name>-<nodeName>``, the static pod's name) and raises
  ``ApiError`` (a 404 Status) when there is none.
- ``request.app[RUNTIME_KEY]`` (``"nodelet.runtime"``): the agent's ``cri.RuntimeClient`` (or None in unit tests).
- ``request["nodelet.user"]``: the :class:`~kubelet.server.apiserver.auth.UserInfo` (name, groups, can_write).
  Exec/attach/portforward are writes in RBAC terms (``create`` on ``pods/exec``): the middleware already answers 403
  for read-only identities on POST; for the WebSocket GET upgrade check ``request["nodelet.user"].can_write`` and
  ``raise status.forbidden(...)`` yourself (helpers: ``kubelet.server.apiserver.status``).
- Errors: raise :class:`~kubelet.server.apiserver.status.ApiError` (``not_found``, ``bad_request``, ``forbidden``…);
  the error middleware turns it into a v1 Status body kubectl prints as ``Error from server (<Reason>): <message>``.

Discovery already lists ``pods/exec``, ``pods/attach`` and ``pods/portforward`` (so kubectl tries them); until a
handler is registered they answer 404 Status.
"""
from __future__ import annotations

from kubelet.server.apiserver.app import RUNTIME_KEY, VIEW_KEY, ApiServer, make_api_app

__all__ = ["ApiServer", "RUNTIME_KEY", "VIEW_KEY", "make_api_app"]
