"""stable-baselines3's HerReplayBuffer works with the envs unchanged."""

import numpy as np
from stable_baselines3 import SAC, HerReplayBuffer

import envs


def test_sac_with_her_runs_and_relabelled_rewards_match_compute_reward():
    # Goal term only, so every stored reward (real or relabelled) is a function of the goals.
    env = envs.make("skillstack/PandaReach-v0", reward_weights={"safety": 0.0})
    model = SAC(
        "MultiInputPolicy",
        env,
        replay_buffer_class=HerReplayBuffer,
        replay_buffer_kwargs={"n_sampled_goal": 4, "goal_selection_strategy": "future"},
        learning_starts=50,
        batch_size=64,
        policy_kwargs={"net_arch": [64, 64]},
        seed=0,
        verbose=0,
    )
    model.learn(total_timesteps=200)
    buffer = model.replay_buffer
    assert buffer.size() >= 200
    batch = buffer.sample(256)
    obs = {k: v.cpu().numpy() for k, v in batch.next_observations.items()}
    expected = env.unwrapped.compute_reward(obs["achieved_goal"], obs["desired_goal"], [{}] * 256)
    np.testing.assert_allclose(batch.rewards.cpu().numpy().ravel(), expected, atol=1e-6)
    # Relabelling produced some successes even though a random-ish policy rarely reaches its goal.
    assert (batch.rewards.cpu().numpy() == 0.0).any()


def test_her_with_copied_infos_relabels_all_terms():
    """With copy_info_dict=True, compute_reward sees each step's reward terms (safety included)."""
    env = envs.make("skillstack/PandaReachDense-v0")
    model = SAC(
        "MultiInputPolicy",
        env,
        replay_buffer_class=HerReplayBuffer,
        replay_buffer_kwargs={"copy_info_dict": True},
        learning_starts=60,
        batch_size=32,
        policy_kwargs={"net_arch": [32]},
        seed=1,
    )
    model.learn(total_timesteps=80)
    batch = model.replay_buffer.sample(64)
    assert np.isfinite(batch.rewards.cpu().numpy()).all()
