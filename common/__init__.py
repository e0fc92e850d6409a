"""Plumbing every layer shares (layer 0): atomic file writes, the mp4 writer, terminal tables, lazy exports,
rotations and poses (quaternions, rotation matrices, 4x4 transforms).

Nothing here knows about robots, learning or ROS; it may import only the standard library and
well-kept third-party libraries, never another package of this project.
"""
