"""nodelet: kubelet package."""
