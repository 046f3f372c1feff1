"""l4mon test suite; mirrors the package layout."""
