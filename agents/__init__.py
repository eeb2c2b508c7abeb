"""Agents: DQN, replay memory, schedules, Q-networks, SB3 adapter, scripted policies."""
