"""An emulator of Edgegap's deployment API with a real capacity model.

    from emulator import EmulatorConfig, create_app, load_world
    app = create_app(EmulatorConfig(world=load_world("my-world.toml"), time_scale=60))

The emulator never imports edgebench's traffic code: they meet over HTTP. Names load
on first use, so `emulator._errors` (which the CLI catches) costs no Starlette.
"""

from importlib import import_module

_EXPORTS = {
    "BackgroundServer": "emulator._server",
    "Cause": "emulator._platform",
    "ConfigError": "emulator._errors",
    "DeployRequest": "emulator._platform",
    "Deployment": "emulator._platform",
    "DEPLOY_GROUP": "emulator._ratelimit",
    "FLEET_DEPLOY_GROUP": "emulator._ratelimit",
    "NO_ANSWER": "emulator._model",
    "Distribution": "emulator._distributions",
    "distribution_option": "emulator._distributions",
    "inline_table": "emulator._distributions",
    "parse_distribution": "emulator._distributions",
    "ALGORITHMS": "emulator._ratelimit",
    "DEFAULT_ORGANISATION": "emulator._model",
    "Emulator": "emulator._app",
    "ApiModel": "emulator._model",
    "EmulatorConfig": "emulator._model",
    "EmulatorError": "emulator._errors",
    "Faults": "emulator._faults",
    "Platform": "emulator._platform",
    "FleetLog": "emulator._platform",
    "RateLimiter": "emulator._ratelimit",
    "RateLimits": "emulator._ratelimit",
    "SlidingWindowLimiter": "emulator._ratelimit",
    "Status": "emulator._platform",
    "StopOutcome": "emulator._platform",
    "World": "emulator._world",
    "create_app": "emulator._app",
    "default_world_path": "emulator._world",
    "load_world": "emulator._world",
    "world_table": "emulator._world",
    "locate_user": "emulator._model",
    "parse_deploy": "emulator._validation",
    "parse_preload": "emulator._model",
    "Preloaded": "emulator._model",
    "parse_fleet_deploy": "emulator._validation",
    "BadRequest": "emulator._validation",
    "serve": "emulator._server",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'emulator' has no attribute {name!r}")
