"""`skillstack record --perception` (issue 25): demonstrations keep both the true and the perceived poses."""

from __future__ import annotations

import json

import h5py
import numpy as np

from demos import record_demos
from demos.format import DemoFile


def test_recording_with_perception_stores_true_and_perceived_poses(tmp_path):
    out = tmp_path / "perceived.hdf5"
    result = record_demos("skillstack/PandaPickPlace-v0", "expert", episodes=1, out=out, max_steps=3,
                          perception=True, progress=False)
    assert result.episodes == 1 and result.steps == 3
    with DemoFile(out) as demos:  # the layout validates
        assert "object_poses_perceived" in demos.obs_keys(0) and demos.num_samples(0) == 3
    with h5py.File(out) as f:
        assert json.loads(f.attrs["perception"]) == {"camera": "scene", "width": 640, "height": 480, "objects": ["red"]}
        obs = f["data/demo_0/obs"]
        true, seen = obs["object_poses_true"][:], obs["object_poses_perceived"][:]
        assert true.shape == seen.shape == (3, 1, 7)
        err = np.linalg.norm(true[:, 0, :3] - seen[:, 0, :3], axis=1)
        assert np.all(err < 0.004) and np.all(err > 0)  # from pixels: close to the truth, never equal to it
        # the policy saw the perceived pose; the env's own vector is kept beside it
        assert np.allclose(obs["observation"][:, 0:3], obs["true_observation"][:, 0:3])  # the TCP is not perceived
        assert not np.array_equal(obs["observation"][:], obs["true_observation"][:])
        assert np.all(obs["object_pose_age"][:] == 0.0)
