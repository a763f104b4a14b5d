"""An emulator of Edgegap's deployment API with a real capacity model.

    from emulator import EmulatorConfig, create_app, load_world
    app = create_app(EmulatorConfig(world=load_world("my-world.toml"), time_scale=60))

The emulator never imports edgebench's traffic code: they meet over HTTP.
"""

from emulator._app import Emulator, EmulatorConfig, create_app
from emulator._distributions import Distribution
from emulator._errors import ConfigError, EmulatorError
from emulator._faults import Faults
from emulator._platform import Cause, DeployRequest, Platform, Status, StopOutcome
from emulator._ratelimit import RateLimiter, RateLimits, SlidingWindowLimiter
from emulator._server import BackgroundServer, serve
from emulator._world import World, default_world_path, load_world

__all__ = [
    "BackgroundServer",
    "Cause",
    "ConfigError",
    "DeployRequest",
    "Distribution",
    "Emulator",
    "EmulatorConfig",
    "EmulatorError",
    "Faults",
    "Platform",
    "RateLimiter",
    "RateLimits",
    "SlidingWindowLimiter",
    "Status",
    "StopOutcome",
    "World",
    "create_app",
    "default_world_path",
    "load_world",
    "serve",
]
