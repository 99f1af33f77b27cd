"""cogvx.vae3d."""

__all__: list[str] = []
