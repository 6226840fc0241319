"""The one exception type the engine raises; modules turn it into fail_json."""


class GitOpsError(Exception):
    """A failure a user can act on.

    ``details`` holds structured context (file, object, server message, rejected objects...)
    that modules return next to the message so it can be queried with json_query.
    """

    def __init__(self, message, **details):
        super().__init__(message)
        self.details = details
