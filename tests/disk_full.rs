//! A full disk under the database and the spool: the server stops
//! acknowledging (503 with Retry-After), says so on /readyz and in
//! /metrics, loses nothing it acknowledged, and takes data again by itself
//! once space returns.
//!
//! The disk is a small tmpfs the test mounts, which needs root (or
//! CAP_SYS_ADMIN). Where mounting is not allowed the test says so and
//! skips.

#[path = "support/otlp.rs"]
mod otlp;
#[path = "support/server.rs"]
mod server;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use otlp::{good_span, traces};
use prost::Message;
use server::{ServerProcess, TempDir, count, open_db};

/// A tmpfs mounted for the test, unmounted when dropped.
struct Mounted(PathBuf);

impl Mounted {
    fn new(at: &Path, size: &str) -> Result<Self, String> {
        std::fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(Self(at.to_path_buf()))
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes zeroes to `path` until the filesystem refuses.
fn fill(path: &Path) {
    let mut file = std::fs::File::create(path).unwrap();
    let block = vec![0u8; 64 * 1024];
    loop {
        if let Err(e) = file.write_all(&block) {
            assert_eq!(e.raw_os_error(), Some(28), "expected ENOSPC: {e}");
            break;
        }
    }
    // What did fit stays; fsync may report ENOSPC too.
    let _ = file.sync_all();
}

fn get(url: &str) -> (u16, String) {
    let resp = reqwest::blocking::get(url).unwrap();
    (resp.status().as_u16(), resp.text().unwrap())
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn a_full_disk_under_the_spool_stops_acknowledging_loses_nothing_and_recovers() {
    full_disk("disk-full-spool", false);
}

/// The database alone on the full disk: the spool still works, but loads
/// fail, so ingest stops acknowledging rather than pile up the spool.
#[test]
fn a_full_disk_under_the_database_stops_acknowledging_and_recovers() {
    full_disk("disk-full-db", true);
}

fn full_disk(name: &str, spool_elsewhere: bool) {
    let dir = TempDir::new(name);
    let mount = match Mounted::new(&dir.path().join("disk"), "64m") {
        Ok(m) => m,
        Err(why) => {
            eprintln!("SKIPPED: cannot mount a tmpfs to fill (needs root or CAP_SYS_ADMIN): {why}");
            return;
        }
    };
    let disk = mount.0.clone();
    let config = dir.path().join("sluice.toml");
    // Loads every 100 ms, so the database is written while the disk fills.
    let mut toml = "[store]\nload_interval = \"100ms\"\n".to_string();
    if spool_elsewhere {
        let spool = dir.path().join("spool");
        toml.push_str(&format!("spool_dir = {:?}\n", spool.to_str().unwrap()));
    }
    std::fs::write(&config, toml).unwrap();
    let server = ServerProcess::start(&disk, &["--config", config.to_str().unwrap()]);
    let client = reqwest::blocking::Client::new();
    let send = |first: u64, n: u64| -> reqwest::blocking::Response {
        let spans = (first..first + n)
            .map(|i| good_span(i, "disk-full"))
            .collect();
        client
            .post(server.http_url("/v1/traces"))
            .header("content-type", "application/x-protobuf")
            .body(traces("svc", spans).encode_to_vec())
            .send()
            .unwrap()
    };
    let mut acknowledged = 0u64;
    let mut next = 0u64;
    const PER_REQUEST: u64 = 200;
    for _ in 0..10 {
        assert_eq!(send(next, PER_REQUEST).status(), 200);
        acknowledged += PER_REQUEST;
        next += PER_REQUEST;
    }

    fill(&disk.join("filler"));
    // Requests now fail: either the spool cannot be written or the load
    // into DuckDB fails, and then new requests are refused up front.
    let mut refused = None;
    for _ in 0..100 {
        let resp = send(next, PER_REQUEST);
        next += PER_REQUEST;
        match resp.status().as_u16() {
            200 => acknowledged += PER_REQUEST,
            503 => {
                refused = Some(resp);
                break;
            }
            other => panic!("unexpected status {other}: {}", resp.text().unwrap()),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let refused = refused.expect("a full disk leads to 503");
    assert!(
        refused.headers().contains_key("retry-after"),
        "{:?}",
        refused.headers()
    );
    let (status, body) = get(&server.api_url("/readyz"));
    assert_eq!(status, 503, "{body}");
    eprintln!("while full, /readyz said: {body}");
    assert!(body.contains("disk is full"), "{body}");
    assert!(body.contains("Nothing acknowledged is lost"), "{body}");
    let metrics = server.metrics();
    let stage = if spool_elsewhere { "database" } else { "spool" };
    assert_eq!(
        metric(
            &metrics,
            &format!("sluice_store_failing{{stage=\"{stage}\"}}")
        ),
        1.0,
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("sluice_store_write_errors_total") && l.contains("disk_full")),
        "{metrics}"
    );
    assert!(server.log().contains("free space"), "{}", server.log());

    // Space returns: ready again by itself, and data is taken again.
    std::fs::remove_file(disk.join("filler")).unwrap();
    let started = Instant::now();
    loop {
        let (status, body) = get(&server.api_url("/readyz"));
        if status == 200 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "still not ready after space returned: {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    for _ in 0..5 {
        let resp = send(next, PER_REQUEST);
        next += PER_REQUEST;
        assert_eq!(resp.status(), 200, "{}", resp.text().unwrap());
        acknowledged += PER_REQUEST;
    }

    let db = server.db.clone();
    server.stop();
    let conn = open_db(&db);
    let stored = count(
        &conn,
        "SELECT count(*) FROM otel_traces WHERE SpanName = 'disk-full'",
    );
    let distinct = count(
        &conn,
        "SELECT count(DISTINCT SpanId) FROM otel_traces WHERE SpanName = 'disk-full'",
    );
    // Every acknowledged span is there once; a refused request left
    // nothing behind (the spool cut what it had half-written).
    assert_eq!(distinct, stored, "no span twice");
    assert_eq!(stored as u64, acknowledged);
    eprintln!(
        "{acknowledged} spans acknowledged and stored, {} refused",
        next - acknowledged
    );
    drop(conn);
}
