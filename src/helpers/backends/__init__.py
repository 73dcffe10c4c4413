"""How a model runs: exports, quantization, precision variants, the engine registry, ONNX Runtime
sessions, engine workers, and seq2seq generation engines. Backends know nothing of notebooks."""


def engine_registry():
    """helpers.backends.registry with every backend's engines in it: imports the modules that
    add them (engines, ov, generation) first, so a reader never sees it partly filled."""
    from helpers.backends import engines, generation, ov, registry  # noqa: F401 (each adds its engines)

    return registry
