//! A plugin's stderr: the first bytes are kept for its error message, the
//! rest discarded. Never full, because a full pipe makes Rust's `eprintln!`
//! panic and Python raise, which would turn chattiness into a failure.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

#[derive(Debug, Clone)]
pub struct StderrCapture {
    kept: Arc<Mutex<Vec<u8>>>,
    capacity: usize,
}

impl StderrCapture {
    pub fn new(capacity: usize) -> Self {
        Self {
            kept: Arc::new(Mutex::new(Vec::new())),
            capacity,
        }
    }

    /// What was kept, as text.
    pub fn contents(&self) -> String {
        let kept = self.kept.lock().map(|k| k.clone()).unwrap_or_default();
        String::from_utf8_lossy(&kept).into_owned()
    }

    fn keep(&self, bytes: &[u8]) {
        if let Ok(mut kept) = self.kept.lock() {
            let room = self.capacity.saturating_sub(kept.len());
            kept.extend_from_slice(&bytes[..bytes.len().min(room)]);
        }
    }
}

impl IsTerminal for StderrCapture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for StderrCapture {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        // Only the WASIp3 host asks for this; plugins get `p2_stream`.
        Box::new(tokio::io::sink())
    }
}

#[async_trait::async_trait]
impl OutputStream for StderrCapture {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.keep(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

#[async_trait::async_trait]
impl Pollable for StderrCapture {
    async fn ready(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_first_bytes_and_accepts_the_rest() {
        let mut s = StderrCapture::new(8);
        for _ in 0..100 {
            s.write(Bytes::from_static(b"abcdef")).unwrap();
            assert!(s.check_write().unwrap() > 0);
        }
        assert_eq!(s.contents(), "abcdefab");
    }
}
