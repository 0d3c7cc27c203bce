"""The read side: views built from the event log, rebuildable at any time."""
