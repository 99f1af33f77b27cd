"""cogvx.infer."""

__all__: list[str] = []
