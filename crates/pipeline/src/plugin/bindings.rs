//! Host bindings generated from `wit/plugin.wit`.

wasmtime::component::bindgen!({
    world: "plugin",
    path: "../../wit",
    // Every host function may trap: a plugin that passes an item number out
    // of range, or adds more than it may, is stopped rather than answered.
    imports: { default: trappable },
    with: {
        "sluice:plugin/telemetry.batch": super::view::BatchView,
    },
});
