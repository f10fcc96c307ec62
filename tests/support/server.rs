//! Runs the real `sluice` binary for end-to-end tests: on 127.0.0.1 with
//! port 0 everywhere, in a temporary directory, stopped by the test.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// reqwest is built without a default TLS provider (its own, aws-lc-rs,
/// needs cmake); Sluice uses ring. Every client built after this works.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A temporary directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        install_tls_provider();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir =
            std::env::temp_dir().join(format!("sluice-test-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `sluice serve` on loopback with free ports and its database at `db`;
/// `extra` are more flags.
pub fn serve_command(db: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
    command
        .arg("serve")
        .arg("--db")
        .arg(db)
        .args([
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
            "--api-addr",
            "127.0.0.1:0",
        ])
        .args(extra);
    command
}

pub struct ServerProcess {
    child: Option<Child>,
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    pub api: SocketAddr,
    pub db: PathBuf,
    log: Arc<Mutex<Vec<String>>>,
}

impl ServerProcess {
    /// Starts `sluice serve` with its database in `dir`; `extra` are more flags.
    pub fn start(dir: &Path, extra: &[&str]) -> Self {
        install_tls_provider();
        let db = dir.join("sluice.duckdb");
        let mut child = serve_command(&db, extra)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the sluice binary starts");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.contains("sluice listening") {
                    let _ = tx.send(line.clone());
                }
                sink.lock().unwrap().push(line);
            }
        });
        let line = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "server did not start; log:\n{}",
                    log.lock().unwrap().join("\n")
                );
            }
        };
        let field = |name: &str| -> SocketAddr {
            let start = line.find(&format!("{name}=")).unwrap() + name.len() + 1;
            let rest = &line[start..];
            rest.split_whitespace().next().unwrap().parse().unwrap()
        };
        Self {
            grpc: field("grpc"),
            http: field("http"),
            api: field("api"),
            child: Some(child),
            db,
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn http_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    /// POSTs an OTLP/HTTP protobuf body to `path`: the status and the reply.
    pub fn post_protobuf(&self, path: &str, body: Vec<u8>) -> (u16, String) {
        let reply = reqwest::blocking::Client::new()
            .post(self.http_url(path))
            .header("content-type", "application/x-protobuf")
            .body(body)
            .send()
            .unwrap();
        (reply.status().as_u16(), reply.text().unwrap())
    }

    pub fn grpc_url(&self) -> String {
        format!("http://{}", self.grpc)
    }

    pub fn api_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.api)
    }

    /// The Prometheus text of `/metrics`.
    pub fn metrics(&self) -> String {
        reqwest::blocking::get(self.api_url("/metrics"))
            .and_then(|r| r.text())
            .expect("/metrics answers")
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// SIGTERM, then waits for a clean exit (drain, commit, close).
    pub fn stop(mut self) {
        let mut child = self.child.take().unwrap();
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(
                    status.success(),
                    "server exited with {status}; log:\n{}",
                    self.log()
                );
                return;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("server did not stop within 60 s; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then waits up to `within` for the process to end, however
    /// it ends; returns its exit code, how long it took, and its log.
    pub fn terminate(mut self, within: Duration) -> (Option<i32>, Duration, String) {
        let mut child = self.child.take().unwrap();
        let started = Instant::now();
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                let took = started.elapsed();
                // The log thread reads the last lines after the exit.
                std::thread::sleep(Duration::from_millis(100));
                return (status.code(), took, self.log());
            }
            if started.elapsed() > within {
                let _ = child.kill();
                panic!(
                    "server did not stop within {within:?}; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no drain, no checkpoint.
    pub fn kill9(mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Opens the database a stopped server left behind.
pub fn open_db(path: &Path) -> duckdb::Connection {
    duckdb::Connection::open(path).expect("the database opens")
}

pub fn count(conn: &duckdb::Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}
