//! One segment file of the spool: a header, then records framed so that a
//! reader can tell a whole record from a torn or damaged one.
//!
//! ```text
//! header  "SLSPOOL1"                                   8 bytes
//! record  length u32 LE   (of what follows the crc)    4
//!         crc32  u32 LE   (of seq, signal, payload)    4
//!         seq    u64 LE                                8
//!         signal u8       (0 traces, 1 logs, 2 metrics) 1
//!         payload         (the request, protobuf)      length - 9
//! ```

use std::io::{self, Read};

use sluice_otlp::Signal;

pub(crate) const MAGIC: &[u8; 8] = b"SLSPOOL1";
/// Length and crc.
const FRAME: usize = 8;
/// Seq and signal, counted in the length.
const FIXED: usize = 9;
/// Larger than any request a receiver accepts, so a length past it means a
/// damaged frame rather than a huge record.
pub(crate) const MAX_RECORD: usize = 1 << 30;

/// One record as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawRecord {
    pub seq: u64,
    pub signal: Signal,
    pub payload: Vec<u8>,
}

fn signal_byte(signal: Signal) -> u8 {
    match signal {
        Signal::Traces => 0,
        Signal::Logs => 1,
        Signal::Metrics => 2,
    }
}

fn byte_signal(b: u8) -> Option<Signal> {
    match b {
        0 => Some(Signal::Traces),
        1 => Some(Signal::Logs),
        2 => Some(Signal::Metrics),
        _ => None,
    }
}

/// The bytes one record takes in a segment.
pub(crate) fn framed_len(payload: usize) -> u64 {
    (HEADER + payload) as u64
}

/// Bytes of a record's frame before its payload.
pub(crate) const HEADER: usize = FRAME + FIXED;

/// The frame that goes before `payload` in a segment: written separately,
/// so the payload is not copied into a scratch buffer first.
pub(crate) fn header(seq: u64, signal: Signal, payload: &[u8]) -> [u8; HEADER] {
    let mut crc = crc32fast::Hasher::new();
    let seq = seq.to_le_bytes();
    let sig = [signal_byte(signal)];
    crc.update(&seq);
    crc.update(&sig);
    crc.update(payload);
    let mut out = [0; HEADER];
    out[0..4].copy_from_slice(&((FIXED + payload.len()) as u32).to_le_bytes());
    out[4..8].copy_from_slice(&crc.finalize().to_le_bytes());
    out[8..16].copy_from_slice(&seq);
    out[16] = sig[0];
    out
}

/// What reading a segment from the start found.
#[derive(Debug)]
pub(crate) enum Next {
    Record(RawRecord),
    /// The segment ends cleanly here.
    End,
    /// From here on the bytes are not a whole, intact record: a write cut
    /// short by a crash, or damage. Everything from this offset is unusable.
    Damaged(String),
}

/// Reads records one after another, keeping the offset of the end of the
/// last good one.
#[derive(Debug)]
pub(crate) struct Reader<R> {
    inner: R,
    /// Bytes of header and whole records read so far.
    pub good_len: u64,
}

impl<R: Read> Reader<R> {
    /// Checks the header; a file too short for one (created, then the
    /// crash) reads as empty and damaged.
    pub fn new(mut inner: R) -> io::Result<(Self, Option<String>)> {
        let mut magic = [0u8; 8];
        match read_full(&mut inner, &mut magic)? {
            8 if &magic == MAGIC => Ok((Self { inner, good_len: 8 }, None)),
            8 => Ok((
                Self { inner, good_len: 0 },
                Some("not a spool segment (bad header)".into()),
            )),
            _ => Ok((
                Self { inner, good_len: 0 },
                Some("the header is incomplete".into()),
            )),
        }
    }

    pub fn next(&mut self) -> io::Result<Next> {
        let mut frame = [0u8; FRAME];
        match read_full(&mut self.inner, &mut frame)? {
            0 => return Ok(Next::End),
            FRAME => {}
            n => return Ok(Next::Damaged(format!("a record frame cut after {n} bytes"))),
        }
        let len = u32::from_le_bytes(frame[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(frame[4..].try_into().expect("4 bytes"));
        if !(FIXED..=MAX_RECORD).contains(&len) {
            return Ok(Next::Damaged(format!("a record length of {len} bytes")));
        }
        let mut body = vec![0u8; len];
        let got = read_full(&mut self.inner, &mut body)?;
        if got < len {
            return Ok(Next::Damaged(format!(
                "a record cut after {got} of {len} bytes"
            )));
        }
        if crc32fast::hash(&body) != crc {
            return Ok(Next::Damaged(
                "a record whose checksum does not match".into(),
            ));
        }
        let seq = u64::from_le_bytes(body[..8].try_into().expect("8 bytes"));
        let Some(signal) = byte_signal(body[8]) else {
            return Ok(Next::Damaged(format!("an unknown signal {}", body[8])));
        };
        body.drain(..FIXED);
        self.good_len += (FRAME + len) as u64;
        Ok(Next::Record(RawRecord {
            seq,
            signal,
            payload: body,
        }))
    }
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(records: &[(u64, Signal, &[u8])]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        for (seq, signal, payload) in records {
            out.extend_from_slice(&header(*seq, *signal, payload));
            out.extend_from_slice(payload);
        }
        out
    }

    fn read_all(bytes: &[u8]) -> (Vec<RawRecord>, Option<String>, u64) {
        let (mut r, bad) = Reader::new(bytes).unwrap();
        if let Some(bad) = bad {
            return (Vec::new(), Some(bad), r.good_len);
        }
        let mut out = Vec::new();
        loop {
            match r.next().unwrap() {
                Next::Record(rec) => out.push(rec),
                Next::End => return (out, None, r.good_len),
                Next::Damaged(why) => return (out, Some(why), r.good_len),
            }
        }
    }

    #[test]
    fn records_read_back_as_written() {
        let bytes = segment(&[(1, Signal::Traces, b"abc"), (2, Signal::Metrics, b"")]);
        let (recs, bad, good) = read_all(&bytes);
        assert_eq!(bad, None);
        assert_eq!(good, bytes.len() as u64);
        assert_eq!(recs.len(), 2);
        assert_eq!((recs[0].seq, recs[0].signal), (1, Signal::Traces));
        assert_eq!(recs[0].payload, b"abc");
        assert_eq!((recs[1].seq, recs[1].signal), (2, Signal::Metrics));
        assert_eq!(bytes.len() as u64, 8 + framed_len(3) + framed_len(0));
    }

    #[test]
    fn every_cut_keeps_exactly_the_whole_records_before_it() {
        let bytes = segment(&[(7, Signal::Logs, b"first"), (8, Signal::Logs, b"second")]);
        let first_end = 8 + framed_len(5) as usize;
        for cut in 0..bytes.len() {
            let (recs, bad, good) = read_all(&bytes[..cut]);
            let expect = if cut < 8 {
                0
            } else if cut < first_end {
                8
            } else {
                first_end
            };
            assert_eq!(good as usize, expect, "cut at {cut}");
            assert_eq!(recs.len(), usize::from(cut >= first_end), "cut at {cut}");
            // Only a cut exactly at a record boundary reads as a clean end.
            let clean = cut == 8 || cut == first_end;
            assert_eq!(bad.is_none(), clean, "cut at {cut}: {bad:?}");
        }
    }

    #[test]
    fn a_flipped_bit_anywhere_in_a_record_is_caught() {
        let bytes = segment(&[(1, Signal::Traces, b"payload")]);
        for at in 8..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x10;
            let (recs, bad, good) = read_all(&damaged);
            assert!(recs.is_empty(), "flip at {at}");
            assert!(bad.is_some(), "flip at {at}");
            assert_eq!(good, 8);
        }
    }
}
