"""The research toolkit's evaluation wing (never imported by the runtime): EDC on identities, degradations,
synthetic clips and scenes, face data sets, tracking metrics."""
