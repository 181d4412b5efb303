"""nodelet: cri package."""
