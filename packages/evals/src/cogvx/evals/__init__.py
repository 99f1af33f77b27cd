"""cogvx.evals."""

__all__: list[str] = []
