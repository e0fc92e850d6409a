"""The shipped model zoo: small trained artifacts (skills, segmenter) with provenance and
figures, rebuilt from scratch by `skillstack zoo build` and installed by `skillstack zoo install`.

Layer 7 (beside `ros_bridge/`): may import every layer up to planning and segmentation.
"""
