"""cogvx.captioner."""

__all__: list[str] = []
