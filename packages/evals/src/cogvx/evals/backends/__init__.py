"""Model backends: protocols the evaluators call, and real loaders from local folders/files.

Nothing here downloads anything. Loaders take a local path (a ``save_pretrained`` folder for
transformers models, a file for heads and TorchScript exports) and raise FileNotFoundError or
:class:`BackendUnavailableError` with what is missing.
"""
