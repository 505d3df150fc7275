"""Scripts that print measured figures (speed, accuracy). Not tests: they take minutes."""
