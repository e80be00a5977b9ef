"""evaluation stage of the darkaction data path (see docs/design.md)."""
