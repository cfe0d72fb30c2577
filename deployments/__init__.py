"""One Ray Serve deployment per model, plus the shared model contract (`base`)."""
