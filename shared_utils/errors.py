"""The one exception type for mistakes a user can fix (bad flag, missing file, no network).

Library code raises :class:`UserError`; :func:`shared_utils.cli.run` turns it into
exit code 2 and a single line on stderr, never a traceback.
"""


class UserError(Exception):
    """An error the user caused and can fix; its message says what to do."""


class TrialsFailed(Exception):
    """Some trials of a study failed; each one's error is in the study's manifest.json (exit code 1)."""
