"""What a stack operation raises when the user, not the stack, must change something: the command line turns it
into one line and exit 2."""

from inferctl.stack.target import TargetError
from lambdas.inference.core.rules import ConfigError

__all__ = ["ConfigError", "TargetError"]
