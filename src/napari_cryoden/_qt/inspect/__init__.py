"""Parts of the Inspect widget (`_qt/inspect_widget.py`): table, checklist chips, overlays."""
