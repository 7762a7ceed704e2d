"""Face quality: tier-0 components and gates, the scorer registry, the classic image-statistics scorers, and the
one resolver of quality and recognition thresholds (a number or an ``eval`` calibration file)."""
