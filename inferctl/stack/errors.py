"""What a stack operation raises when something other than a bug stops it. The command line turns each into
one line that says what is wrong and what to do: exit 2 when the user must change something (ConfigError,
TargetError, UsageError), exit 1 when the operation itself did not succeed (OperationFailed)."""

from inferctl.stack.target import TargetError
from lambdas.contract.rules import ConfigError


class UsageError(ValueError):
    """A command was given something it cannot use; the message says what, and how to put it right."""


class OperationFailed(RuntimeError):
    """The stack did not do what was asked (an update failed, a change raced another, a wait ran out); the
    message says what happened and what to look at."""


__all__ = ["ConfigError", "OperationFailed", "TargetError", "UsageError"]
