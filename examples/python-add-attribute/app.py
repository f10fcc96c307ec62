"""A Sluice plugin in Python: adds one attribute to every span, log record
and data point.

Config (in Sluice's config file):

    [[pipelines.traces]]
    name = "python-add-attribute"
    path = "python_add_attribute.wasm"
    [pipelines.traces.config]
    key = "enriched.by"        # optional, this is the default
    value = "python"           # required

Build: scripts/build-plugins.sh (componentize-py -d wit -w plugin componentize app ...).
"""

import json

import wit_world
from componentize_py_types import Err
from wit_world.imports import telemetry
from wit_world.imports.types import AttributesOf_Item, ValueNode_Str

# Sluice creates a fresh instance for every batch and calls init, then
# process, so module state lives exactly one batch.
_settings = {}


class WitWorld(wit_world.WitWorld):
    def init(self, config: str) -> None:
        table = json.loads(config)
        value = table.get("value")
        if not isinstance(value, str):
            raise Err("`value` must be a string, e.g. value = \"python\"")
        key = table.get("key", "enriched.by")
        if not isinstance(key, str) or not key:
            raise Err("`key` must be a non-empty string")
        _settings["key"] = key
        _settings["value"] = [ValueNode_Str(value)]

    def process(self, batch: telemetry.Batch) -> None:
        key, value = _settings["key"], _settings["value"]
        for item in range(batch.len()):
            if not batch.is_dropped(item):
                batch.set_attribute(AttributesOf_Item(item), key, value)
