"""Hydra configs of ``cogvx generate`` (a package so Hydra can find them as a config module)."""
