"""Repository tooling (not shipped in the wheel)."""
