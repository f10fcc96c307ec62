//! A plugin for the host's tests: what it does is chosen by `mode` in its
//! config, so one component covers every behaviour the runtime must handle.

use sluice_sdk::prelude::*;

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    mode: Mode,
    /// For `drop`: only items with this name (else every item).
    #[serde(default)]
    name: Option<String>,
    /// For `allocate`: bytes to allocate.
    #[serde(default)]
    bytes: Option<usize>,
}

#[derive(Debug, serde::Deserialize, Clone, Copy, PartialEq)]
#[serde(rename_all = "kebab-case")]
enum Mode {
    /// Leaves the batch alone.
    Pass,
    /// Drops items (those named `name`, or all).
    Drop,
    /// Adds, changes and removes attributes on items and resources.
    Modify,
    /// Adds a copy of every item, renamed.
    Add,
    /// Never returns.
    Loop,
    /// Allocates `bytes` (default 1 GiB) and touches every page.
    Allocate,
    /// Panics, which traps.
    Trap,
    /// Returns an error.
    Error,
    /// Changes every item, then returns an error.
    ModifyThenFail,
    /// Sleeps for 30 s (long enough to see, short enough not to hang a
    /// test run if waiting were ever allowed again).
    Sleep,
    /// Rejects its config.
    RejectConfig,
    /// Logs more lines than the host keeps, and writes ~100 KiB to each of
    /// stdout and stderr.
    Chatty,
    /// Tries to reach the filesystem, environment, arguments, stdin and
    /// network, and fails naming whatever it could reach.
    Probe,
    /// Reads every attribute of every item and writes nothing (benchmarks:
    /// the cost of reading a batch through the contract).
    Read,
    /// The same, in one `packed-attributes` call for the batch.
    ReadPacked,
    /// Sets one attribute on every item (benchmarks: a write per item).
    Tag,
    /// Reads every attribute of every item and writes them all back
    /// (benchmarks: what copying the whole batch through a plugin costs).
    Rewrite,
}

#[derive(Debug)]
pub struct Behaviour {
    settings: Settings,
}

impl Plugin for Behaviour {
    fn new(config: Config) -> Result<Self, Error> {
        let settings: Settings = config.parse()?;
        if settings.mode == Mode::RejectConfig {
            return Err(Error::new(
                "mode reject-config: this config is refused on purpose",
            ));
        }
        Ok(Self { settings })
    }

    fn process_traces(&mut self, batch: &Batch) -> Result<(), Error> {
        self.run(batch)
    }

    fn process_logs(&mut self, batch: &Batch) -> Result<(), Error> {
        self.run(batch)
    }

    fn process_metrics(&mut self, batch: &Batch) -> Result<(), Error> {
        self.run(batch)
    }
}

impl Behaviour {
    fn run(&self, batch: &Batch) -> Result<(), Error> {
        match self.settings.mode {
            Mode::Pass | Mode::RejectConfig => {}
            Mode::Drop => {
                for item in batch.items() {
                    if self
                        .settings
                        .name
                        .as_ref()
                        .is_none_or(|n| *n == item.name())
                    {
                        item.drop();
                    }
                }
            }
            Mode::Modify => {
                for item in batch.items() {
                    item.set_attribute("plugin.touched", true);
                    item.set_attribute(
                        "plugin.nested",
                        Value::KvList(vec![
                            ("list".into(), Value::from(vec![1, 2])),
                            ("name".into(), Value::from(item.name())),
                        ]),
                    );
                    item.remove_attribute("secret");
                    if let Some(Value::Str(s)) = item.attribute("user") {
                        item.set_attribute("user", s.to_uppercase());
                    }
                    item.resource().set_attribute("plugin.resource", "yes");
                }
            }
            Mode::Add => {
                for item in batch.items() {
                    let copy = item.copy();
                    copy.set_name(&format!("{} (copy)", item.name()));
                }
            }
            Mode::Loop => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            Mode::Allocate => {
                let bytes = self.settings.bytes.unwrap_or(1 << 30);
                let mut v: Vec<u8> = Vec::with_capacity(bytes);
                v.resize(bytes, 1);
                std::hint::black_box(&v);
            }
            Mode::Trap => panic!("mode trap: panicking on purpose"),
            Mode::Error => return Err(Error::new("mode error: failing on purpose")),
            Mode::ModifyThenFail => {
                for item in batch.items() {
                    item.set_name("changed");
                    item.set_attribute("half-done", true);
                    item.drop();
                }
                return Err(Error::new("mode modify-then-fail: failing after changes"));
            }
            Mode::Sleep => std::thread::sleep(std::time::Duration::from_secs(30)),
            Mode::Probe => {
                let mut reached = Vec::new();
                for path in ["/", ".", "/etc/passwd", "/tmp"] {
                    if std::fs::metadata(path).is_ok() || std::fs::read_dir(path).is_ok() {
                        reached.push(format!("file {path}"));
                    }
                }
                if std::fs::write("escape.txt", b"x").is_ok() {
                    reached.push("file write".into());
                }
                if std::env::vars().next().is_some() {
                    reached.push("environment".into());
                }
                if std::env::args().next().is_some() {
                    reached.push("arguments".into());
                }
                let mut buf = [0u8; 1];
                if std::io::Read::read(&mut std::io::stdin(), &mut buf).is_ok_and(|n| n > 0) {
                    reached.push("stdin".into());
                }
                if std::net::TcpStream::connect("127.0.0.1:1").is_ok()
                    || std::net::TcpListener::bind("127.0.0.1:0").is_ok()
                {
                    reached.push("network".into());
                }
                if !reached.is_empty() {
                    return Err(Error::new(format!(
                        "the sandbox let me reach: {}",
                        reached.join(", ")
                    )));
                }
                for item in batch.items() {
                    item.set_attribute("sandbox", "closed");
                }
            }
            Mode::Tag => {
                for item in batch.items() {
                    item.set_attribute("tagged", true);
                }
            }
            Mode::Read => {
                let mut bytes = 0;
                for item in batch.items() {
                    bytes += item.attributes().len();
                }
                if bytes == usize::MAX {
                    return Err(Error::new("unreachable: keeps the reads"));
                }
            }
            Mode::ReadPacked => {
                let all = batch.read_all_attributes();
                let count: usize = batch.items().map(|i| all.of(i.index()).count()).sum();
                if count == usize::MAX {
                    return Err(Error::new("unreachable: keeps the reads"));
                }
            }
            Mode::Rewrite => {
                for item in batch.items() {
                    for (key, value) in item.attributes() {
                        item.set_attribute(&key, value);
                    }
                }
            }
            Mode::Chatty => {
                for i in 0..1000 {
                    sluice_sdk::log::info(&format!("line {i}"));
                    // Far past the 16 KiB of stderr the host keeps.
                    eprintln!("stderr line {i}: {}", "x".repeat(100));
                    println!("stdout line {i}");
                }
            }
        }
        Ok(())
    }
}

sluice_sdk::export_plugin!(Behaviour);

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::testing::{TestBatch, TestSpan};

    #[test]
    fn modify_changes_what_it_says() {
        let batch = TestBatch::traces();
        batch.add_span(TestSpan::named("a").attr("secret", "x").attr("user", "bob"));
        batch.run::<Behaviour>(r#"{"mode": "modify"}"#).unwrap();
        let span = batch.batch().item(0);
        assert_eq!(span.attribute("secret"), None);
        assert_eq!(span.attribute("user"), Some(Value::from("BOB")));
        assert_eq!(span.attribute("plugin.touched"), Some(Value::Bool(true)));
        assert_eq!(
            span.resource().attribute("plugin.resource"),
            Some(Value::from("yes"))
        );
    }

    #[test]
    fn drop_by_name_and_add() {
        let batch = TestBatch::traces();
        batch.add_span(TestSpan::named("keep"));
        batch.add_span(TestSpan::named("health"));
        batch
            .run::<Behaviour>(r#"{"mode": "drop", "name": "health"}"#)
            .unwrap();
        assert_eq!(
            batch.batch().spans().map(|s| s.name()).collect::<Vec<_>>(),
            ["keep"]
        );
        batch.run::<Behaviour>(r#"{"mode": "add"}"#).unwrap();
        assert_eq!(
            batch.batch().spans().map(|s| s.name()).collect::<Vec<_>>(),
            ["keep", "keep (copy)"]
        );
    }

    #[test]
    fn bad_configs_are_refused() {
        let batch = TestBatch::traces();
        assert!(
            batch
                .run::<Behaviour>(r#"{"mode": "reject-config"}"#)
                .is_err()
        );
        let err = batch
            .run::<Behaviour>(r#"{"mode": "sideways"}"#)
            .unwrap_err();
        assert!(err.to_string().contains("sideways"), "{err}");
    }
}
