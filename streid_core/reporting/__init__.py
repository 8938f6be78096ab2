"""Reports: executing the notebooks headless and indexing what they wrote."""
