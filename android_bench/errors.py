"""The one exception type for problems a user can cause or fix.

`python -m android_bench` prints these as a single `error: <message>` line and
exits 2, so every message must be one line that says what to do next.
"""


class AndroidBenchError(Exception):
    """A failure with a one-line, user-facing explanation."""

    def __init__(self, message: str):
        # Collapse accidental newlines so the CLI contract (one line) holds even
        # when a message embeds output captured from adb or the device.
        lines = [line.strip() for line in str(message).splitlines()]
        super().__init__(" | ".join(line for line in lines if line))

    @property
    def message(self) -> str:
        return self.args[0]
