"""Scale-out on Ray: workers that run the pipeline, a fan-in that publishes, fail-over from checkpoints."""
