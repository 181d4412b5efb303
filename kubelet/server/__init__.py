"""Serving: the node API, its client, metrics and the kubectl-shaped printers."""
