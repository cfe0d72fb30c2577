"""Geometry building blocks shared by the CPU models: mesh I/O, rendering, algorithms."""
