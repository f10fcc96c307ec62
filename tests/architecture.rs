//! The workspace's crates depend on each other one way only, along the data
//! flow (docs/architecture.md): `cargo metadata` lists what each crate
//! depends on, and this test fails on a dependency the layering does not
//! allow and on any cycle, dev-dependencies included (Cargo itself only
//! refuses cycles of normal dependencies).

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// Each Sluice crate and the Sluice crates it may depend on. A crate not
/// listed here (a plugin, a tool) may depend on the SDK and nothing else.
const LAYERS: &[(&str, &[&str])] = &[
    ("sluice-units", &[]),
    ("sluice-otlp", &[]),
    (
        "sluice-pipeline",
        &["sluice-otlp", "sluice-units", "sluice-sdk"],
    ),
    ("sluice-store", &["sluice-otlp", "sluice-units"]),
    ("sluice-query", &["sluice-store", "sluice-units"]),
    (
        "sluice",
        &[
            "sluice-otlp",
            "sluice-pipeline",
            "sluice-query",
            "sluice-store",
            "sluice-units",
        ],
    ),
    ("sluice-sdk", &[]),
    // Seeds benchmark databases and measures retention through the store.
    ("sluice-loadgen", &["sluice-store"]),
];

/// Every workspace member and the workspace members it depends on, of any
/// kind (normal, dev, build).
fn workspace_graph() -> BTreeMap<String, BTreeSet<String>> {
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml");
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .args(["--manifest-path", manifest])
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let packages = meta["packages"].as_array().unwrap();
    let members: BTreeSet<String> = packages
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    packages
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["name"].as_str().unwrap().to_string())
                .filter(|d| members.contains(d))
                .collect();
            (p["name"].as_str().unwrap().to_string(), deps)
        })
        .collect()
}

/// A cycle in `graph`, as the crates along it, if there is one.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn crates_depend_on_each_other_one_way_only() {
    let graph = workspace_graph();
    assert!(
        graph.contains_key("sluice-pipeline") && graph.contains_key("sluice"),
        "cargo metadata did not list the workspace: {graph:?}"
    );
    if let Some(cycle) = find_cycle(&graph) {
        panic!(
            "the crates depend on each other in a circle: {}",
            cycle.join(" -> ")
        );
    }
    let allowed: BTreeMap<&str, &[&str]> = LAYERS.iter().copied().collect();
    let mut wrong = Vec::new();
    for (name, deps) in &graph {
        let may: &[&str] = allowed
            .get(name.as_str())
            .copied()
            .unwrap_or(&["sluice-sdk"]);
        for dep in deps {
            if !may.contains(&dep.as_str()) {
                wrong.push(format!("{name} -> {dep}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "dependencies the layering in docs/architecture.md does not allow: {}",
        wrong.join(", ")
    );
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let graph = |edges: &[(&str, &str)]| {
        let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, b) in edges {
            g.entry(a.to_string()).or_default().insert(b.to_string());
            g.entry(b.to_string()).or_default();
        }
        g
    };
    assert_eq!(
        find_cycle(&graph(&[("a", "b"), ("b", "c"), ("a", "c")])),
        None
    );
    assert_eq!(
        find_cycle(&graph(&[("a", "b"), ("b", "c"), ("c", "a")])),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
}
