//! The plugin runtime with real compiled components: what each behaviour
//! does to a batch, and what each failure policy does when a plugin loops,
//! over-allocates, traps or fails. The runtime must keep working after
//! every failure.

#[path = "../../../tests/support/otlp.rs"]
mod otlp;
#[path = "../../../tests/support/plugins.rs"]
mod plugins;

use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use sluice_otlp::Batch;
use sluice_pipeline::config::{OnError, PluginConfig};
use sluice_pipeline::{LoadError, LoadedPlugin, PipelineMetrics, Runtime, run_chain};
use sluice_units::ByteSize;

fn runtime() -> Runtime {
    Runtime::new(Some(plugins::cache_dir())).unwrap()
}

fn spec(mode: &str, on_error: OnError) -> PluginConfig {
    let mut spec = PluginConfig::new(mode, plugins::plugin("behaviour.wasm"));
    spec.on_error = Some(on_error);
    spec.config.insert("mode".into(), mode.into());
    spec
}

fn load(rt: &Runtime, spec: &PluginConfig) -> Arc<LoadedPlugin> {
    Arc::new(rt.load(spec).unwrap_or_else(|e| panic!("{e}")))
}

fn batch(names: &[&str]) -> Batch {
    let spans = names
        .iter()
        .enumerate()
        .map(|(i, n)| otlp::good_span(i as u64, n))
        .collect();
    Batch::Traces(otlp::traces("checkout", spans))
}

fn names(b: &Batch) -> Vec<String> {
    let Batch::Traces(r) = b else {
        panic!("not traces")
    };
    r.resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .flat_map(|ss| ss.spans.iter().map(|s| s.name.clone()))
        .collect()
}

fn metrics() -> PipelineMetrics {
    PipelineMetrics::default()
}

/// The metrics as `/metrics` shows them.
fn exposition(m: &PipelineMetrics) -> String {
    let mut registry = prometheus_client::registry::Registry::with_prefix("sluice");
    m.register(&mut registry);
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
    out
}

#[test]
fn pass_through_leaves_the_batch_identical() {
    let rt = runtime();
    let plugin = load(&rt, &spec("pass", OnError::Reject));
    let input = batch(&["a", "b", "c"]);
    let out = run_chain(&[plugin], input.clone(), &metrics()).unwrap();
    assert_eq!(out.batch, input);
}

#[test]
fn drop_removes_only_the_named_items() {
    let rt = runtime();
    let mut s = spec("drop", OnError::Reject);
    s.config.insert("name".into(), "health".into());
    let out = run_chain(
        &[load(&rt, &s)],
        batch(&["a", "health", "b", "health"]),
        &metrics(),
    )
    .unwrap();
    assert_eq!(names(&out.batch), ["a", "b"]);

    // Dropping everything leaves an empty request, not empty resources.
    let all = load(&rt, &spec("drop", OnError::Reject));
    let out = run_chain(&[all], batch(&["a", "b"]), &metrics()).unwrap();
    assert_eq!(out.batch.item_count(), 0);
    let Batch::Traces(r) = &out.batch else {
        panic!()
    };
    assert!(r.resource_spans.is_empty());
}

#[test]
fn modify_changes_attributes_on_items_and_resources() {
    let rt = runtime();
    let out = run_chain(
        &[load(&rt, &spec("modify", OnError::Reject))],
        batch(&["a"]),
        &metrics(),
    )
    .unwrap();
    let Batch::Traces(r) = &out.batch else {
        panic!()
    };
    let rs = &r.resource_spans[0];
    let span = &rs.scope_spans[0].spans[0];
    let get = |key: &str| {
        span.attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.clone())
            .and_then(|v| v.value)
    };
    assert_eq!(get("plugin.touched"), Some(Any::BoolValue(true)));
    // The nested value arrives as the plugin built it.
    let Some(Any::KvlistValue(kv)) = get("plugin.nested") else {
        panic!("nested value missing: {:?}", span.attributes)
    };
    assert_eq!(kv.values[0].key, "list");
    let Some(Any::ArrayValue(list)) = kv.values[0].value.clone().and_then(|v| v.value) else {
        panic!()
    };
    assert_eq!(list.values.len(), 2);
    // The original attribute is still there.
    assert!(get("http.route").is_some());
    let resource = rs.resource.as_ref().unwrap();
    assert!(
        resource
            .attributes
            .iter()
            .any(|kv| kv.key == "plugin.resource"),
        "{:?}",
        resource.attributes
    );
}

#[test]
fn add_copies_items_into_the_same_resource_and_scope() {
    let rt = runtime();
    let out = run_chain(
        &[load(&rt, &spec("add", OnError::Reject))],
        batch(&["a", "b"]),
        &metrics(),
    )
    .unwrap();
    assert_eq!(names(&out.batch), ["a", "b", "a (copy)", "b (copy)"]);
}

#[test]
fn large_batches_are_split_at_max_batch_items() {
    let rt = runtime();
    let mut s = spec("add", OnError::Reject);
    s.max_batch_items = 3;
    let input: Vec<String> = (0..10).map(|i| format!("s{i}")).collect();
    let refs: Vec<&str> = input.iter().map(String::as_str).collect();
    let m = metrics();
    let out = run_chain(&[load(&rt, &s)], batch(&refs), &m).unwrap();
    assert_eq!(out.batch.item_count(), 20);
    // Four calls: 3 + 3 + 3 + 1.
    let text = exposition(&m);
    assert!(
        text.contains(r#"sluice_plugin_calls_total{plugin="add",signal="traces",outcome="ok"} 4"#),
        "{text}"
    );
}

/// Every failing behaviour under every policy: the outcome is exactly what
/// the policy says, and the same runtime then serves a good batch.
#[test]
fn failures_follow_the_policy_and_the_runtime_survives() {
    let rt = runtime();
    let healthy = load(&rt, &spec("pass", OnError::Reject));
    for mode in ["loop", "allocate", "trap", "error"] {
        for policy in [OnError::Pass, OnError::Drop, OnError::Reject] {
            let mut s = spec(mode, policy);
            s.timeout_ms = 200;
            s.memory_limit = ByteSize::mib(32);
            let plugin = load(&rt, &s);
            let input = batch(&["a", "b"]);
            let m = metrics();
            let started = Instant::now();
            let result = run_chain(&[plugin], input.clone(), &m);
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{mode} under {policy:?} was not stopped"
            );
            let expected_kind = match mode {
                "loop" => "timeout",
                "allocate" => "memory",
                "trap" => "trap",
                _ => "error",
            };
            let text = exposition(&m);
            assert!(
                text.contains(&format!(r#"outcome="{expected_kind}"}} 1"#)),
                "{mode}: {text}"
            );
            match policy {
                OnError::Pass => {
                    let out = result.unwrap_or_else(|e| panic!("{mode}/pass: {e}"));
                    assert_eq!(
                        out.batch, input,
                        "{mode}/pass must keep the batch as it was"
                    );
                }
                OnError::Drop => {
                    let out = result.unwrap_or_else(|e| panic!("{mode}/drop: {e}"));
                    assert_eq!(out.batch.item_count(), 0, "{mode}/drop");
                    assert_eq!(out.discarded, 2);
                }
                OnError::Reject => {
                    let err = result.expect_err("reject must refuse");
                    assert_eq!(err.plugin, mode);
                    let said = match mode {
                        "loop" => "ran out of time",
                        "allocate" => "ran out of memory",
                        "trap" => "trapped",
                        _ => "returned an error",
                    };
                    assert!(err.failure.starts_with(said), "{err}");
                }
            }
            let ok = run_chain(std::slice::from_ref(&healthy), batch(&["c"]), &m).unwrap();
            assert_eq!(names(&ok.batch), ["c"], "after {mode}/{policy:?}");
        }
    }
}

#[test]
fn error_messages_say_what_happened() {
    let rt = runtime();
    let m = metrics();
    let run = |mode: &str| {
        let mut s = spec(mode, OnError::Reject);
        s.timeout_ms = 150;
        s.memory_limit = ByteSize::mib(32);
        run_chain(&[load(&rt, &s)], batch(&["a"]), &m)
            .unwrap_err()
            .to_string()
    };
    let msg = run("loop");
    assert!(msg.contains("ran out of time (150 ms)"), "{msg}");
    let msg = run("allocate");
    assert!(msg.contains("memory limit of 33554432 bytes"), "{msg}");
    let msg = run("error");
    assert!(msg.contains("mode error: failing on purpose"), "{msg}");
    // A Rust panic's message reaches the failure (which is logged) through
    // the captured stderr; the client is shown only its first line.
    let msg = run("trap");
    assert!(msg.contains("unreachable"), "{msg}");
    let plugin = load(&rt, &spec("trap", OnError::Reject));
    let failure = plugin.process(Arc::new(batch(&["a"]))).unwrap_err();
    assert!(
        failure.to_string().contains("panicking on purpose"),
        "{failure}"
    );
}

#[test]
fn a_rejected_config_stops_loading_with_name_path_and_reason() {
    let rt = runtime();
    let err = match rt.load(&spec("reject-config", OnError::Pass)) {
        Err(e) => e,
        Ok(_) => panic!("the config should be rejected"),
    };
    assert!(matches!(err, LoadError::Config { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("reject-config"), "{msg}");
    assert!(msg.contains("behaviour.wasm"), "{msg}");
    assert!(msg.contains("refused on purpose"), "{msg}");

    let mut s = spec("pass", OnError::Pass);
    s.config.insert("mode".into(), "sideways".into());
    let msg = rt.load(&s).unwrap_err().to_string();
    assert!(msg.contains("sideways"), "{msg}");
}

#[test]
fn files_that_are_not_plugins_are_refused_clearly() {
    let rt = runtime();
    let dir = std::env::temp_dir().join(format!("sluice-not-plugins-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let junk = dir.join("junk.wasm");
    std::fs::write(&junk, b"not wasm at all").unwrap();
    let msg = rt
        .load(&PluginConfig::new("junk", &junk))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("junk") && msg.contains("not a loadable WebAssembly component"),
        "{msg}"
    );
    let missing = rt
        .load(&PluginConfig::new("gone", dir.join("gone.wasm")))
        .unwrap_err()
        .to_string();
    assert!(missing.contains("cannot read"), "{missing}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_chatty_plugin_cannot_flood_the_log() {
    let rt = runtime();
    let out = run_chain(
        &[load(&rt, &spec("chatty", OnError::Reject))],
        batch(&["a"]),
        &metrics(),
    )
    .unwrap();
    assert_eq!(out.batch.item_count(), 1);
}

#[test]
fn a_python_plugin_adds_its_attribute() {
    let rt = runtime();
    let mut s = PluginConfig::new("python", plugins::plugin("python_add_attribute.wasm"));
    s.on_error = Some(OnError::Reject);
    s.timeout_ms = 5_000;
    s.config.insert("value".into(), "from-python".into());
    let plugin = load(&rt, &s);
    let out = run_chain(&[plugin], batch(&["a", "b"]), &metrics()).unwrap();
    let Batch::Traces(r) = &out.batch else {
        panic!()
    };
    for span in &r.resource_spans[0].scope_spans[0].spans {
        let v = span.attributes.iter().find(|kv| kv.key == "enriched.by");
        assert_eq!(
            v.and_then(|kv| kv.value.clone()).and_then(|v| v.value),
            Some(Any::StringValue("from-python".into())),
            "{:?}",
            span.attributes
        );
    }
    // Its config check works too.
    let mut bad = s.clone();
    bad.config.remove("value");
    let msg = rt.load(&bad).unwrap_err().to_string();
    assert!(msg.contains("`value` must be a string"), "{msg}");
}

#[test]
fn the_sandbox_grants_no_files_environment_stdin_or_network() {
    let rt = runtime();
    let out = run_chain(
        &[load(&rt, &spec("probe", OnError::Reject))],
        batch(&["a"]),
        &metrics(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let Batch::Traces(r) = &out.batch else {
        panic!()
    };
    let span = &r.resource_spans[0].scope_spans[0].spans[0];
    assert!(
        span.attributes.iter().any(|kv| kv.key == "sandbox"),
        "the probe did not run"
    );
}

#[test]
fn compiled_components_are_cached_by_content_hash() {
    let dir = std::env::temp_dir().join(format!("sluice-cache-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cached = |dir: &std::path::Path| {
        std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "cwasm")
            })
            .count()
    };
    let rt = Runtime::new(Some(dir.clone())).unwrap();
    rt.load(&spec("pass", OnError::Pass)).unwrap();
    assert_eq!(cached(&dir), 1);
    // The same component under another name and config: the same artifact.
    rt.load(&spec("add", OnError::Pass)).unwrap();
    assert_eq!(cached(&dir), 1);
    // A new runtime (a restart) loads it from the cache and it still works.
    let again = Runtime::new(Some(dir.clone())).unwrap();
    let plugin = load(&again, &spec("add", OnError::Reject));
    let out = run_chain(&[plugin], batch(&["a"]), &metrics()).unwrap();
    assert_eq!(names(&out.batch), ["a", "a (copy)"]);
    // A corrupt artifact is ignored and replaced, not trusted.
    for entry in std::fs::read_dir(&dir).unwrap() {
        std::fs::write(entry.unwrap().path(), b"garbage").unwrap();
    }
    let fresh = Runtime::new(Some(dir.clone())).unwrap();
    let plugin = load(&fresh, &spec("pass", OnError::Reject));
    run_chain(&[plugin], batch(&["a"]), &metrics()).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_plugin_that_sleeps_fails_at_once_instead_of_holding_its_worker() {
    let rt = runtime();
    let mut s = spec("sleep", OnError::Reject);
    s.timeout_ms = 200;
    let started = Instant::now();
    let err = run_chain(&[load(&rt, &s)], batch(&["a"]), &metrics()).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(err.failure.starts_with("trapped"), "{err}");
}

#[test]
fn under_pass_a_plugin_that_fails_after_changing_the_batch_leaves_no_trace() {
    let rt = runtime();
    let input = batch(&["a", "b"]);
    let out = run_chain(
        &[load(&rt, &spec("modify-then-fail", OnError::Pass))],
        input.clone(),
        &metrics(),
    )
    .unwrap();
    assert_eq!(out.batch, input);
}
