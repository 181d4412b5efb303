"""nodelet: probes package."""
