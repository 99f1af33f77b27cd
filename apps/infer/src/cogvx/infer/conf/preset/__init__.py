"""Presets for the released CogVideoX models."""
