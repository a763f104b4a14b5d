"""Errors the emulator raises for bad configuration.

EmulatorError
 └── ConfigError   a world file or an option is wrong: names the key and the fix
"""

from __future__ import annotations


class EmulatorError(Exception):
    """EmulatorError is the base of every error the emulator reports to a user."""


class ConfigError(EmulatorError):
    """ConfigError names where a configuration problem is, what it is and how to fix it.

    >>> str(ConfigError("locations[2].capacity", "must be >= 0", "use a whole number"))
    'locations[2].capacity: must be >= 0; use a whole number'
    """

    def __init__(self, key: str, problem: str, fix: str, source: str | None = None) -> None:
        self.key, self.problem, self.fix, self.source = key, problem, fix, source
        super().__init__(str(self))

    def in_file(self, source: str) -> ConfigError:
        """in_file is the same error, now naming the file it came from."""
        return ConfigError(self.key, self.problem, self.fix, source)

    def __str__(self) -> str:
        where = f"{self.source}: {self.key}" if self.source else self.key
        return f"{where}: {self.problem}; {self.fix}"
