"""The records the store keeps: alerts with their transitions, commands with their steps.

Below the store and the engines that make them, so the store persists them without importing
the alert engine or the command service (no package cycle: tests/test_layers.py).
"""
