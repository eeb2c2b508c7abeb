"""Supervised modules: datasets from the game, perception, sequence, imitation.

- :mod:`catchrl.supervised.datasets`: seeded labelled games (frames + true
  state, trajectories, expert actions) as ``.npz``, checked when loaded;
- :mod:`catchrl.supervised.perception`: CNNs from frames to the state, as
  observation wrappers and as encoders for the DQN;
- :mod:`catchrl.supervised.sequence`: recurrent landing-x and catch forecasters;
- :mod:`catchrl.supervised.imitation`: a classifier of the oracle's actions,
  playable as an agent, and expert games for the replay memory;
- :mod:`catchrl.supervised.train`: the tasks' config, data and models for Keras ``fit``
  (the trainer and its run directory: :mod:`catchrl.supervised_train`).

Nothing heavy is imported here; Keras and TensorFlow load with the submodules.
"""
