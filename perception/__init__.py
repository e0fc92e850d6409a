"""Object poses from camera images: fiducial markers on the objects (OpenCV ArUco), camera
models from the MJCF or a CameraInfo, PnP with several markers fused per object, hand–eye
calibration, and an observation wrapper that puts the perceived poses into an env.

Layer 3 (beside `policies/`): may import common, sim_assets and envs; no torch.
"""
