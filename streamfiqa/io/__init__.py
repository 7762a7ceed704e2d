"""Frames in, events out: sources (PyAV and image folders), shot cuts, sinks, the ``listen`` receiver, metrics."""
