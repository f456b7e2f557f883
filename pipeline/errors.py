"""The one exception type for errors a user can cause (bad flag, missing file, ...)."""


class PipelineError(Exception):
    """A user-facing error: its message is one line and is printed without a traceback."""
