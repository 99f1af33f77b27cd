"""Test environment for cogvx-expert-dit.

Triton kernels are checked on CPU through Triton's interpreter, which reads ``TRITON_INTERPRET``
when triton is first imported, so it is set here before any test module imports the kernels.
"""

import os

os.environ.setdefault("TRITON_INTERPRET", "1")

from hypothesis import settings  # noqa: E402

settings.register_profile("dev", max_examples=25, deadline=None)
settings.register_profile("ci", max_examples=25, deadline=None, derandomize=True, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))
