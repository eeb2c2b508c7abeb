"""Supervised modules: datasets from the game, perception, sequence, imitation.

- :mod:`catchrl.supervised.datasets`: seeded labelled games (frames + true
  state, trajectories, expert actions) as ``.npz``, fed through ``tf.data``;
- :mod:`catchrl.supervised.perception`: CNNs from frames to the state,
  :class:`~catchrl.supervised.perception.PerceptionWrapper` (pixels -> state
  env) and pretrained encoders for the DQN;
- :mod:`catchrl.supervised.sequence`: LSTM/GRU/bidirectional landing-x and
  catch forecasters, as observation features or an auxiliary Q-network head;
- :mod:`catchrl.supervised.imitation`: a classifier of the oracle's actions,
  playable as an agent, and expert games for the replay memory;
- :mod:`catchrl.supervised.train`: Keras ``fit`` training into run directories.

Nothing heavy is imported here; Keras and TensorFlow load with the submodules.
"""
