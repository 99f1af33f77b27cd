"""Tiny model folders (cogvx.testing) for the tests that need a task the shipped model lacks."""

from __future__ import annotations

from cogvx.testing.fixtures import make_folder, model_root, tiny_writer

__all__ = ["make_folder", "model_root", "tiny_writer"]
