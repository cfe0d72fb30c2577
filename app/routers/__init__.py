"""One router per route prefix of the spec."""
