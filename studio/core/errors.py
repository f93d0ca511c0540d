"""Errors that carry a message meant for a person, not a traceback."""


class StudioError(Exception):
    """An error whose message can be shown to the user as is."""


class BadInputError(StudioError):
    """The user's file or parameters cannot be used; the message says why and what to do."""


class ModelFileError(StudioError):
    """A model file is missing, tampered with, or of the wrong architecture."""


class ExportDriftError(StudioError):
    """An exported graph does not reproduce torch's outputs within tolerance (the export is refused)."""


class DiskWriteError(StudioError):
    """A file could not be written (disk full, no permission); whatever was there before is left intact."""
