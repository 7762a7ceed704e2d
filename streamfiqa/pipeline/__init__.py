"""The stream runtime: stages built from config, the frame loop, the best-crop decision, the heavy tier,
enrolment, the cross-camera merge and the run's statistics."""
