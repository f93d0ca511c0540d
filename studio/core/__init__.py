"""Pure-Python core: no Qt, no torch. Job types, settings, paths and file formats."""
