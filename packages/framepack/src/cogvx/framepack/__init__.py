"""cogvx.framepack."""

__all__: list[str] = []
