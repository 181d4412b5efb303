"""nodelet: proxy package."""
