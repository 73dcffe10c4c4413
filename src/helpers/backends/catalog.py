"""Every backend's engines in one registry: imports the modules that add them (engines, ov,
generation) before returning it, so a reader never sees it partly filled. It sits at the top of
the backends layer; nothing in it is imported by the modules it loads."""

from helpers.backends import engines, generation, ov, registry  # noqa: F401 (each adds its engines)


def engine_registry():
    """helpers.backends.registry, filled by every backend module."""
    return registry
