import warnings

import numpy as np
import pytest
import torch as th
from sb3_contrib import RecurrentPPO
from sb3_contrib.common.recurrent.type_aliases import RNNStates

from sb3_equivariant import GRIDWORLD_ID, MASKED_CARTPOLE_ID, make_symmetric_vec_env
from sb3_equivariant.group import flip_group
from sb3_equivariant.nn import BasisLayer
from sb3_equivariant.policies import EquivariantCnnLstmPolicy, EquivariantLSTM, EquivariantMlpLstmPolicy
from sb3_equivariant.representation import copies, regular, signed_permutation

ATOL = 1e-5
SMALL = dict(lstm_hidden_size=4, net_arch=[8])
GRID_CNN = dict(channels=(4, 4), kernel_sizes=(7, 5), strides=(2, 1), pooling="max", features_channels=8)

CASES = {
    "masked CartPole": (EquivariantMlpLstmPolicy, MASKED_CARTPOLE_ID, SMALL),
    "Pendulum (Box actions)": (EquivariantMlpLstmPolicy, "Pendulum-v1", SMALL),
    "two layers": (EquivariantMlpLstmPolicy, MASKED_CARTPOLE_ID, dict(SMALL, n_lstm_layers=2)),
    "shared LSTM": (EquivariantMlpLstmPolicy, MASKED_CARTPOLE_ID, dict(SMALL, shared_lstm=True, enable_critic_lstm=False)),
    "linear critic": (EquivariantMlpLstmPolicy, MASKED_CARTPOLE_ID, dict(SMALL, enable_critic_lstm=False)),
    "GridWorld CNN": (EquivariantCnnLstmPolicy, GRIDWORLD_ID, dict(lstm_hidden_size=4, features_extractor_kwargs=GRID_CNN)),
}
N_SEQ, LENGTH = 3, 6


def _model(case: str) -> RecurrentPPO:
    policy, env_id, kwargs = CASES[case]
    env = make_symmetric_vec_env(env_id, n_envs=2, seed=0)
    return RecurrentPPO(policy, env, n_steps=16, batch_size=16, n_epochs=1, policy_kwargs=dict(kwargs), seed=0)


def _sequences(model: RecurrentPPO) -> tuple[np.ndarray, np.ndarray]:
    """``N_SEQ`` observation sequences of ``LENGTH`` steps from random play, batch-major as RecurrentPPO trains on them
    (sequence 0's steps, then sequence 1's...), and episode starts: at the first step and in the middle of some."""
    env = model.get_env()
    env.action_space.seed(0)
    steps = [env.reset()]
    while len(steps) < LENGTH * N_SEQ:
        steps.append(env.step(np.array([env.action_space.sample() for _ in range(env.num_envs)]))[0])
    obs = np.stack(steps)[:, 0].reshape(N_SEQ, LENGTH, *steps[0].shape[1:]).reshape(N_SEQ * LENGTH, *steps[0].shape[1:])
    starts = np.zeros((N_SEQ, LENGTH), dtype=np.float32)
    starts[:, 0] = 1.0
    starts[1, 3] = starts[2, 2] = 1.0  # episodes ending inside a sequence: the states are reset there
    return obs, starts.reshape(-1)


def _zero_states(model: RecurrentPPO) -> RNNStates:
    lstm = model.policy.lstm_actor
    zeros = th.zeros(lstm.num_layers, N_SEQ, lstm.hidden_size)
    return RNNStates((zeros, zeros), (zeros, zeros))


def assert_recurrent_equivariant(model: RecurrentPPO) -> None:
    """Over every group element: per-step distributions, values, log-probs, entropies and LSTM states of whole
    sequences with episode starts (sb3-contrib's training path), and predict() stepped through the sequences."""
    policy, sym = model.policy, model.policy.symmetry
    obs_np, starts_np = _sequences(model)
    obs, starts, states = policy.obs_to_tensor(obs_np)[0], th.as_tensor(starts_np), _zero_states(model)
    actions_np = np.stack([model.action_space.sample() for _ in range(len(obs_np))])
    hidden = copies(regular(sym.group), policy.lstm_channels)
    with th.no_grad():
        dist, pi_states = policy.get_distribution(obs, states.pi, starts)
        params = dist.distribution.probs if sym.discrete else dist.distribution.mean
        std = None if sym.discrete else dist.distribution.stddev
        values = policy.predict_values(obs, states.vf, starts)
        evaluated = policy.evaluate_actions(obs, th.as_tensor(actions_np), states, starts)
        for g in range(len(sym)):
            g_obs = policy.obs_to_tensor(sym.transform_obs(obs_np, g))[0]
            g_dist, g_pi_states = policy.get_distribution(g_obs, states.pi, starts)
            g_params = g_dist.distribution.probs if sym.discrete else g_dist.distribution.mean
            th.testing.assert_close(g_params, sym.action_rep.apply(params, g), atol=ATOL, rtol=0)
            if std is not None:
                th.testing.assert_close(g_dist.distribution.stddev, sym.action_rep.apply(std, g).abs(), atol=ATOL, rtol=0)
            for g_state, state in zip(g_pi_states, pi_states):  # the states carry the regular representation
                th.testing.assert_close(g_state, hidden.apply(state, g), atol=ATOL, rtol=0)
            th.testing.assert_close(policy.predict_values(g_obs, states.vf, starts), values, atol=ATOL, rtol=0)
            g_actions = th.as_tensor(sym.transform_action(actions_np, g))
            for g_out, out in zip(policy.evaluate_actions(g_obs, g_actions, states, starts), evaluated):
                th.testing.assert_close(g_out, out, atol=ATOL, rtol=1e-6)
    # predict(), one step at a time for N_SEQ envs, as when acting.
    steps = obs_np.reshape(N_SEQ, LENGTH, *obs_np.shape[1:]).swapaxes(0, 1)
    step_starts = starts_np.reshape(N_SEQ, LENGTH).T
    for g in range(len(sym)):
        state = g_state = None
        for step, start in zip(steps, step_starts):
            action, state = model.predict(step, state, start, deterministic=True)
            g_action, g_state = model.predict(sym.transform_obs(step, g), g_state, start, deterministic=True)
            np.testing.assert_allclose(g_action, sym.transform_action(action, g), atol=ATOL)


@pytest.mark.parametrize("case", CASES)
def test_recurrent_policy_equivariant_train_eval_and_after_learning(case: str) -> None:
    model = _model(case)
    for training in (True, False):
        model.policy.set_training_mode(training)
        assert_recurrent_equivariant(model)
    model.learn(64)
    assert_recurrent_equivariant(model)


def test_history_matters() -> None:
    """The recurrence is used (so the sequence tests are not vacuous): one observation after two different
    histories gets two different action distributions."""
    model = _model("masked CartPole")
    obs_np, _ = _sequences(model)
    last = obs_np[LENGTH - 1]
    batch = np.concatenate([obs_np[:LENGTH], obs_np[LENGTH : 2 * LENGTH - 1], last[None]])  # 2 sequences, same last obs
    starts = th.zeros(2 * LENGTH)
    starts[0] = starts[LENGTH] = 1.0
    zeros = th.zeros(1, 2, model.policy.lstm_actor.hidden_size)
    with th.no_grad():
        dist = model.policy.get_distribution(model.policy.obs_to_tensor(batch)[0], (zeros, zeros), starts)[0]
    logits = dist.distribution.logits  # small at init (the action head's gain is 0.01), but not equal
    assert (logits[LENGTH - 1] - logits[-1]).abs().max() > 1e-5


def _outputs(model: RecurrentPPO, obs_np: np.ndarray, starts_np: np.ndarray) -> th.Tensor:
    obs, starts, states = model.policy.obs_to_tensor(obs_np)[0], th.as_tensor(starts_np), _zero_states(model)
    with th.no_grad():
        dist, _ = model.policy.get_distribution(obs, states.pi, starts)
        return th.cat([dist.distribution.logits, model.policy.predict_values(obs, states.vf, starts)], dim=1)


@pytest.mark.parametrize("training", [True, False])
def test_save_load_strict_identical(training: bool, tmp_path) -> None:
    model = _model("two layers")
    model.learn(64)
    model.policy.set_training_mode(training)
    sequences = _sequences(model)
    before = _outputs(model, *sequences)
    model.save(tmp_path / "model")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # sb3 warns when it falls back to non-strict loading
        loaded = RecurrentPPO.load(tmp_path / "model", env=model.get_env(), device="cpu")
    loaded.policy.set_training_mode(not training)
    th.testing.assert_close(_outputs(loaded, *sequences), before, atol=0, rtol=0)
    assert type(loaded.policy) is type(model.policy)
    assert isinstance(loaded.policy.lstm_actor, EquivariantLSTM) and loaded.policy.lstm_actor.num_layers == 2
    assert_recurrent_equivariant(loaded)


def test_lstm_layer_matches_its_export_and_is_equivariant() -> None:
    rep = signed_permutation(flip_group(), {1: [1, 0, 2]}, {1: [1, 1, -1]})
    lstm = EquivariantLSTM(rep, 2, 3, num_layers=2)
    inputs, state = th.randn(5, 4, 6), (th.randn(2, 4, 6), th.randn(2, 4, 6))
    out, (h, c) = lstm(inputs, state)
    dense_out, (dense_h, dense_c) = lstm.export()(inputs, state)
    for ours, dense in ((out, dense_out), (h, dense_h), (c, dense_c)):
        th.testing.assert_close(ours, dense, atol=1e-5, rtol=1e-5)
    field, hidden = copies(rep, 2), copies(regular(rep.group), 3)
    g_out, (g_h, g_c) = lstm(field.apply(inputs, 1), (hidden.apply(state[0], 1), hidden.apply(state[1], 1)))
    for transformed, original in ((g_out, out), (g_h, h), (g_c, c)):
        th.testing.assert_close(transformed, hidden.apply(original, 1), atol=ATOL, rtol=0)


def test_export_steps_like_the_policy() -> None:
    model = _model("masked CartPole")
    model.learn(64)
    exported = model.policy.export()
    assert not any(isinstance(m, BasisLayer) for m in exported.modules())
    obs_np, _ = _sequences(model)
    zeros = th.zeros(1, N_SEQ, model.policy.lstm_actor.hidden_size)
    state = dense_state = (zeros, zeros)
    with th.no_grad():
        for step in obs_np.reshape(N_SEQ, LENGTH, -1).swapaxes(0, 1):
            obs = th.as_tensor(step)
            dist, state = model.policy.get_distribution(obs, state, th.zeros(N_SEQ))
            logits, dense_state = exported(obs, dense_state)
            th.testing.assert_close(th.log_softmax(logits, -1), dist.distribution.logits, atol=1e-5, rtol=1e-5)
            th.testing.assert_close(dense_state[0], state[0], atol=1e-5, rtol=1e-5)


def test_lstm_kwargs_refused() -> None:
    with pytest.raises(ValueError, match="EquivariantLSTM takes none"):
        env = make_symmetric_vec_env(MASKED_CARTPOLE_ID, n_envs=1)
        RecurrentPPO(EquivariantMlpLstmPolicy, env, policy_kwargs=dict(lstm_kwargs=dict(dropout=0.1)))


def test_ablation_basis_breaks_the_symmetry() -> None:
    env = make_symmetric_vec_env(MASKED_CARTPOLE_ID, n_envs=2, seed=0)
    model = RecurrentPPO(EquivariantMlpLstmPolicy, env, n_steps=16, batch_size=16, policy_kwargs=dict(SMALL, basis="random"))
    with pytest.raises(AssertionError):
        assert_recurrent_equivariant(model)
