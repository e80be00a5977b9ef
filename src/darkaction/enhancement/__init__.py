"""enhance stage of the darkaction data path (see DESIGN.md)."""
