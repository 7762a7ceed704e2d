"""Tracking: one track per face across frames (Kalman motion, IoU and appearance matching, re-identification)."""
