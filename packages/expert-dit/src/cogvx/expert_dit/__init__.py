"""cogvx.expert_dit."""

__all__: list[str] = []
