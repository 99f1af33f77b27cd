"""CogVideoX training: Lightning modules, data modules and Hydra configs (see apps/train/README.md)."""

__all__: list[str] = []
