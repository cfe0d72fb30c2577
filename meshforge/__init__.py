"""MeshForge: 3D generative models behind one REST API, scheduled on Ray Serve."""

__version__ = "0.1.0"
