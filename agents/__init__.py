"""Agents: DQN, replay, augmentation, schedules, Q-networks, SB3 adapter, scripted policies."""
