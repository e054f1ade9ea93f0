"""warmpool-svc: owns warm pools and the atomic claim."""
