"""nodelet: cni package."""
