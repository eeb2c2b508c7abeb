"""catchrl: the Catch game, a Keras DQN, SB3 baselines and supervised modules.

The game lives in :mod:`catchrl.envs` (light: numpy, gymnasium, pygame), the
agents in :mod:`catchrl.agents`, supervised models in
:mod:`catchrl.supervised`, and the ``catchrl`` command in :mod:`catchrl.cli`.
"""

__version__ = "0.1.0"
