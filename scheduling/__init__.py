"""Pure-Python scheduling core: no Ray imports, so every decision is unit-testable."""
