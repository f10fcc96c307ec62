//! The spool: an append-only, checksummed log of accepted batches, in
//! segment files in a directory of its own. It is the durability step that
//! lets a request be acknowledged before its rows are in DuckDB: append,
//! [`Spool::sync`] once for a whole group, acknowledge; a loader then moves
//! what the spool holds into DuckDB in large transactions and
//! [`Spool::release`]s it.
//!
//! Records carry a sequence number that never goes back, so the loader can
//! record "loaded through N" inside its own DuckDB transaction and a restart
//! replays exactly what is after it. A record cut short or damaged (a crash
//! mid-write) ends its segment: it and everything after it in that segment
//! are cut off and counted, never fatal. Only unacknowledged writes can be
//! there, since an acknowledgement waits for the sync.
//!
//! The [writer](crate::Writer) is its only user: it appends and syncs on
//! one thread and loads and releases on another.

mod segment;

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Seek, Write};
use std::path::{Path, PathBuf};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use sluice_otlp::{Batch, Signal};

use segment::{MAGIC, Next, RawRecord, Reader, framed_len, header};

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// Appending would take the spool past its size: refuse the request
    /// with a retryable error until the loader releases room.
    #[error("the spool is full ({used} of {max} bytes); retry once it has been loaded")]
    Full { used: u64, max: u64 },
    #[error("spool {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    /// The directory holds another database's acknowledged requests.
    #[error(
        "the spool {dir} belongs to another database (its id is {found}, this database's is \
         {expected}) and holds requests that database acknowledged: restore it beside its own \
         database, or move it away (its requests are then not stored) or set store.spool_dir \
         to another directory"
    )]
    Foreign {
        dir: String,
        found: String,
        expected: String,
    },
    /// Intact on disk (its checksum matched) but not a request: written by
    /// something else, or a bug.
    #[error("spool record {seq} is not a valid {signal} request: {message}")]
    Decode {
        seq: u64,
        signal: &'static str,
        message: String,
    },
}

/// Sizes of the spool; `max_bytes` comes from `store.spool_max_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpoolOptions {
    /// Most bytes on disk, records and headers; past it appends are refused.
    pub max_bytes: u64,
    /// A segment past this size is closed and a new one started; released
    /// room comes back a whole segment at a time.
    pub segment_bytes: u64,
}

impl Default for SpoolOptions {
    fn default() -> Self {
        Self {
            max_bytes: 512 << 20,
            segment_bytes: 64 << 20,
        }
    }
}

/// What opening found and mended.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Opened {
    /// Records kept: after `loaded_through`, intact.
    pub records: u64,
    /// Bytes cut from segment ends: torn or damaged writes.
    pub cut_bytes: u64,
    /// Why, for each segment that was cut.
    pub cuts: Vec<String>,
}

impl SpoolError {
    /// Whether the disk (or a quota) is full: an operator frees space and
    /// the spool recovers by itself.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, SpoolError::Io { source, .. }
            if matches!(source.kind(), io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded))
    }
}

/// Turns an I/O error at `path` into a [`SpoolError`]; the path's text is
/// made only when there is an error.
fn io_error(path: &Path) -> impl Fn(io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The segment files in `dir`, in no particular order.
fn segment_paths(dir: &Path) -> Result<Vec<PathBuf>, SpoolError> {
    Ok(std::fs::read_dir(dir)
        .map_err(io_error(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "spool"))
        .collect())
}

/// The file in a spool directory that names the database it belongs to.
const OWNER_FILE: &str = "database-id";

/// Ties the spool in `dir` to the database whose spool id is `owner`,
/// before it is opened: a spool restored beside the wrong database must not
/// be loaded into it, nor released because that database's numbers are
/// higher. A spool of another database that holds no records is taken over.
pub fn claim(dir: &Path, owner: &str) -> Result<(), SpoolError> {
    std::fs::create_dir_all(dir).map_err(io_error(dir))?;
    let file = dir.join(OWNER_FILE);
    match std::fs::read_to_string(&file) {
        Ok(found) if found.trim() == owner => return Ok(()),
        Ok(found) => {
            let holds_records = segment_paths(dir)?
                .iter()
                .any(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > MAGIC.len() as u64));
            if holds_records {
                return Err(SpoolError::Foreign {
                    dir: dir.display().to_string(),
                    found: found.trim().to_string(),
                    expected: owner.to_string(),
                });
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_error(&file)(e)),
    }
    std::fs::write(&file, owner).map_err(io_error(&file))?;
    File::open(&file)
        .and_then(|f| f.sync_all())
        .and_then(|()| File::open(dir))
        .and_then(|d| d.sync_all())
        .map_err(io_error(&file))
}

/// A batch as the spool stores it: its signal and its protobuf encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    signal: Signal,
    bytes: Vec<u8>,
}

impl Payload {
    pub fn of(batch: &Batch) -> Self {
        let bytes = match batch {
            Batch::Traces(r) => r.encode_to_vec(),
            Batch::Logs(r) => r.encode_to_vec(),
            Batch::Metrics(r) => r.encode_to_vec(),
        };
        Self {
            signal: batch.signal(),
            bytes,
        }
    }

    /// Bytes of the encoding.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// One accepted batch, back from the spool.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub seq: u64,
    pub batch: Batch,
}

#[derive(Debug)]
struct SegmentInfo {
    path: PathBuf,
    /// Sequence numbers of its records, first and last; `last < first`
    /// while it holds none.
    first: u64,
    last: u64,
    bytes: u64,
}

/// The current segment as of its last successful sync: what a failed write
/// is rolled back to.
#[derive(Debug, Clone, Copy)]
struct Synced {
    first: u64,
    last: u64,
    bytes: u64,
}

impl Synced {
    fn of(info: &SegmentInfo) -> Self {
        Self {
            first: info.first,
            last: info.last,
            bytes: info.bytes,
        }
    }
}

#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    options: SpoolOptions,
    /// Oldest first; the last one is written to.
    segments: VecDeque<SegmentInfo>,
    current: BufWriter<File>,
    synced: Synced,
    /// Set when a write or sync failed (a full disk, an I/O error): the
    /// current segment may end in a torn record, and appending after it
    /// would hide every later record from replay. Cleared by rolling the
    /// segment back to `synced` before the next append.
    broken: bool,
    next_seq: u64,
    used: u64,
}

impl Spool {
    /// Opens the spool in `dir` (made if missing). Records at or before
    /// `loaded_through` (what the database says it has loaded) are released;
    /// the rest are kept for [`Spool::replay`]. Sequence numbers continue
    /// after both.
    pub fn open(
        dir: &Path,
        options: SpoolOptions,
        loaded_through: u64,
    ) -> Result<(Self, Opened), SpoolError> {
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        let mut names = segment_paths(dir)?;
        names.sort();
        let mut opened = Opened::default();
        let mut segments = VecDeque::new();
        let mut last_seq = loaded_through;
        for path in names {
            let Scanned { info, kept, cut } = scan(&path, loaded_through)?;
            if let Some((bytes, why)) = cut {
                opened.cut_bytes += bytes;
                opened.cuts.push(format!("{}: {why}", path.display()));
            }
            opened.records += kept;
            if info.last >= info.first {
                last_seq = last_seq.max(info.last);
            }
            if info.last < info.first || info.last <= loaded_through {
                std::fs::remove_file(&path).map_err(io_error(&path))?;
            } else {
                segments.push_back(info);
            }
        }
        let next_seq = last_seq + 1;
        let (current, info) = create_segment(dir, next_seq)?;
        let synced = Synced::of(&info);
        segments.push_back(info);
        let used = segments.iter().map(|s| s.bytes).sum();
        let spool = Self {
            dir: dir.to_path_buf(),
            options,
            segments,
            current,
            synced,
            broken: false,
            next_seq,
            used,
        };
        Ok((spool, opened))
    }

    /// Bytes on disk.
    pub fn used(&self) -> u64 {
        self.used
    }

    /// The sequence number the next append gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Writes `batch` (not yet durable: see [`Spool::sync`]) and returns its
    /// sequence number, or refuses it when the spool is full.
    pub fn append(&mut self, batch: &Batch) -> Result<u64, SpoolError> {
        let payload = Payload::of(batch);
        self.append_payload(&payload)
    }

    /// [`Spool::append`] for a batch already encoded, so that the encoding
    /// can be done by whoever holds the batch rather than by the one thread
    /// that writes the spool.
    pub fn append_payload(&mut self, payload: &Payload) -> Result<u64, SpoolError> {
        if self.broken {
            self.roll_back()?;
        }
        let result = self.write_record(payload);
        if matches!(result, Err(SpoolError::Io { .. })) {
            self.broken = true;
        }
        result
    }

    fn write_record(&mut self, payload: &Payload) -> Result<u64, SpoolError> {
        let Payload { signal, bytes } = payload;
        let len = framed_len(bytes.len());
        let current = self
            .segments
            .back()
            .expect("there is always a current segment");
        let rotate =
            current.bytes > MAGIC.len() as u64 && current.bytes + len > self.options.segment_bytes;
        // A new segment's header takes room too.
        let needed = len + if rotate { MAGIC.len() as u64 } else { 0 };
        if self.used + needed > self.options.max_bytes {
            return Err(SpoolError::Full {
                used: self.used,
                max: self.options.max_bytes,
            });
        }
        if rotate {
            self.rotate()?;
        }
        let seq = self.next_seq;
        let current = self.segments.back_mut().expect("a current segment");
        let err = io_error(&current.path);
        self.current
            .write_all(&header(seq, *signal, bytes))
            .and_then(|()| self.current.write_all(bytes))
            .map_err(&err)?;
        if current.last < current.first {
            current.first = seq;
        }
        current.last = seq;
        current.bytes += len;
        self.used += len;
        self.next_seq += 1;
        Ok(seq)
    }

    /// Makes every record appended so far durable: one fsync for however
    /// many appends came before it (group commit).
    ///
    /// If it fails, nothing appended since the last successful sync may be
    /// acknowledged: those records are cut before the next append (see
    /// [`Spool::roll_back`]), so that a retry does not store them twice
    /// and a torn one does not hide the records after it.
    pub fn sync(&mut self) -> Result<(), SpoolError> {
        if self.broken {
            self.roll_back()?;
        }
        let current = self.segments.back().expect("a current segment");
        let err = io_error(&current.path);
        let synced = self
            .current
            .flush()
            .and_then(|()| self.current.get_ref().sync_data())
            .map_err(&err);
        match synced {
            Ok(()) => {
                self.synced = Synced::of(current);
                Ok(())
            }
            Err(e) => {
                self.broken = true;
                Err(e)
            }
        }
    }

    /// Whether the last write or sync failed and has not been rolled back.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Cuts the current segment back to its last successful sync, dropping
    /// whatever was buffered or half-written since, and checks that the
    /// disk takes writes again by writing, syncing and removing a small
    /// probe file beside the segments. Fails, leaving the spool broken,
    /// while the disk still refuses. Cheap and harmless on a sound spool.
    pub fn roll_back(&mut self) -> Result<(), SpoolError> {
        let path = self
            .segments
            .back()
            .expect("a current segment")
            .path
            .clone();
        let err = io_error(&path);
        let file = OpenOptions::new().write(true).open(&path).map_err(&err)?;
        file.set_len(self.synced.bytes).map_err(&err)?;
        file.sync_data().map_err(&err)?;
        let mut file = file;
        file.seek(std::io::SeekFrom::End(0)).map_err(&err)?;
        probe(&self.dir)?;
        // Not dropped: dropping a BufWriter writes out its buffer, which
        // holds exactly the records being rolled back.
        let old = std::mem::replace(&mut self.current, BufWriter::with_capacity(1 << 20, file));
        let _ = old.into_parts();
        let current = self.segments.back_mut().expect("a current segment");
        self.used -= current.bytes - self.synced.bytes;
        current.first = self.synced.first;
        current.last = self.synced.last;
        current.bytes = self.synced.bytes;
        self.broken = false;
        Ok(())
    }

    /// Frees the room of every record up to `through` (the loader has
    /// committed them to the database), a whole segment at a time.
    pub fn release(&mut self, through: u64) -> Result<(), SpoolError> {
        let current_done = self
            .segments
            .back()
            .is_some_and(|s| s.last >= s.first && s.last <= through);
        if current_done {
            // Start a new current segment so that the old one can go.
            self.rotate()?;
        }
        while self.segments.len() > 1 {
            let oldest = &self.segments[0];
            if oldest.last >= oldest.first && oldest.last > through {
                break;
            }
            let oldest = self.segments.pop_front().expect("more than one");
            std::fs::remove_file(&oldest.path).map_err(io_error(&oldest.path))?;
            self.used -= oldest.bytes;
        }
        Ok(())
    }

    /// Every record after `after`, oldest first, read from disk as the
    /// iterator goes (the spool may hold far more than memory). Reads what
    /// has been synced or flushed; call [`Spool::sync`] first.
    pub fn replay(&self, after: u64) -> impl Iterator<Item = Result<Record, SpoolError>> + '_ {
        self.segments
            .iter()
            .filter(move |s| s.last >= s.first && s.last > after)
            .flat_map(move |s| SegmentRecords::open(&s.path, after))
    }

    /// Closes the current segment durably and starts a new one.
    fn rotate(&mut self) -> Result<(), SpoolError> {
        self.sync()?;
        let (current, info) = create_segment(&self.dir, self.next_seq)?;
        self.current = current;
        self.synced = Synced::of(&info);
        self.used += info.bytes;
        self.segments.push_back(info);
        Ok(())
    }
}

/// Bytes the disk must take for [`Spool::roll_back`] to call it writable
/// again: about one request's worth, so that recovery is not declared on a
/// disk with a few blocks free.
const PROBE_BYTES: usize = 1 << 20;

fn probe(dir: &Path) -> Result<(), SpoolError> {
    let path = dir.join("probe.tmp");
    let err = io_error(&path);
    let written = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .and_then(|mut f| {
            f.write_all(&vec![0u8; PROBE_BYTES])?;
            f.sync_data()
        });
    let removed = std::fs::remove_file(&path);
    written.map_err(&err)?;
    removed.map_err(&err)
}

/// Makes a new, empty segment whose name sorts after every older one, and
/// makes its directory entry durable.
fn create_segment(
    dir: &Path,
    first_seq: u64,
) -> Result<(BufWriter<File>, SegmentInfo), SpoolError> {
    let path = dir.join(format!("{first_seq:020}.spool"));
    let err = io_error(&path);
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .map_err(&err)?;
    file.write_all(MAGIC).map_err(&err)?;
    file.sync_data().map_err(&err)?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(&err)?;
    let info = SegmentInfo {
        path: path.clone(),
        first: first_seq,
        last: first_seq - 1,
        bytes: MAGIC.len() as u64,
    };
    Ok((BufWriter::with_capacity(1 << 20, file), info))
}

/// What [`scan`] found in a segment.
struct Scanned {
    info: SegmentInfo,
    /// Records after `loaded_through`.
    kept: u64,
    /// Bytes cut off the end, and why.
    cut: Option<(u64, String)>,
}

/// Reads a segment through; cuts it after its last intact record if it
/// ends in a torn or damaged one.
fn scan(path: &Path, loaded_through: u64) -> Result<Scanned, SpoolError> {
    let err = io_error(path);
    let file = File::open(path).map_err(&err)?;
    let size = file.metadata().map_err(&err)?.len();
    let (mut reader, bad_header) = Reader::new(BufReader::new(file)).map_err(&err)?;
    let (mut first, mut last, mut kept) = (0u64, 0u64, 0u64);
    let mut damaged = bad_header;
    while damaged.is_none() {
        match reader.next().map_err(&err)? {
            Next::Record(RawRecord { seq, .. }) => {
                if first == 0 {
                    first = seq;
                }
                last = seq;
                kept += u64::from(seq > loaded_through);
            }
            Next::End => break,
            Next::Damaged(why) => damaged = Some(why),
        }
    }
    let good = reader.good_len;
    let cut = match damaged {
        Some(why) => {
            let file = OpenOptions::new().write(true).open(path).map_err(&err)?;
            file.set_len(good).map_err(&err)?;
            file.sync_all().map_err(&err)?;
            Some((size - good, why))
        }
        None => None,
    };
    let (first, last) = if first == 0 { (1, 0) } else { (first, last) };
    let info = SegmentInfo {
        path: path.to_path_buf(),
        first,
        last,
        bytes: good,
    };
    Ok(Scanned { info, kept, cut })
}

/// The records of one segment after a sequence number, read lazily.
struct SegmentRecords {
    reader: Option<Reader<BufReader<File>>>,
    path: PathBuf,
    after: u64,
    error: Option<SpoolError>,
}

impl SegmentRecords {
    fn open(path: &Path, after: u64) -> Self {
        let opened = File::open(path)
            .and_then(|f| Reader::new(BufReader::new(f)))
            .and_then(|(reader, bad_header)| match bad_header {
                None => Ok(reader),
                Some(why) => Err(io::Error::new(io::ErrorKind::InvalidData, why)),
            });
        let (reader, error) = match opened {
            Ok(reader) => (Some(reader), None),
            Err(e) => (None, Some(io_error(path)(e))),
        };
        Self {
            reader,
            path: path.to_path_buf(),
            after,
            error,
        }
    }
}

impl Iterator for SegmentRecords {
    type Item = Result<Record, SpoolError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.error.take() {
            return Some(Err(e));
        }
        loop {
            let next = match self.reader.as_mut()?.next() {
                Ok(next) => next,
                Err(source) => {
                    self.reader = None;
                    return Some(Err(io_error(&self.path)(source)));
                }
            };
            match next {
                Next::Record(raw) if raw.seq <= self.after => continue,
                Next::Record(raw) => return Some(decode(raw)),
                // Opening cut damage off; what is past the end now is a
                // write still being made.
                Next::End | Next::Damaged(_) => {
                    self.reader = None;
                    return None;
                }
            }
        }
    }
}

fn decode(raw: RawRecord) -> Result<Record, SpoolError> {
    let bad = |e: prost::DecodeError| SpoolError::Decode {
        seq: raw.seq,
        signal: raw.signal.name(),
        message: e.to_string(),
    };
    let bytes = raw.payload.as_slice();
    let batch = match raw.signal {
        Signal::Traces => Batch::Traces(ExportTraceServiceRequest::decode(bytes).map_err(bad)?),
        Signal::Logs => Batch::Logs(ExportLogsServiceRequest::decode(bytes).map_err(bad)?),
        Signal::Metrics => Batch::Metrics(ExportMetricsServiceRequest::decode(bytes).map_err(bad)?),
    };
    Ok(Record {
        seq: raw.seq,
        batch,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    fn dir(name: &str) -> PathBuf {
        crate::test_path(&format!("spool-{name}"))
    }

    fn batch(name: &str) -> Batch {
        Batch::Traces(ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![Span {
                        trace_id: vec![1; 16],
                        span_id: vec![2; 8],
                        name: name.into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        })
    }

    /// Appends a batch per name and syncs.
    fn append_synced(spool: &mut Spool, names: &[&str]) {
        for n in names {
            spool.append(&batch(n)).unwrap();
        }
        spool.sync().unwrap();
    }

    /// The bytes a batch's record takes.
    fn framed(b: &Batch) -> u64 {
        let Batch::Traces(t) = b else { panic!() };
        framed_len(t.encoded_len())
    }

    fn names(spool: &Spool, after: u64) -> Vec<(u64, String)> {
        spool
            .replay(after)
            .map(|r| {
                let r = r.unwrap();
                let Batch::Traces(t) = r.batch else { panic!() };
                (
                    r.seq,
                    t.resource_spans[0].scope_spans[0].spans[0].name.clone(),
                )
            })
            .collect()
    }

    fn segment_files(d: &Path) -> Vec<PathBuf> {
        let mut v: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_failed_write_is_rolled_back_so_later_records_are_not_hidden() {
        let d = dir("roll-back");
        let (mut spool, _) = Spool::open(&d, SpoolOptions::default(), 0).unwrap();
        append_synced(&mut spool, &["a", "b"]);
        let used = spool.used();
        // What a full disk leaves: a record buffered, and half of another
        // written out before the write failed.
        spool.append(&batch("never-acknowledged")).unwrap();
        let current = spool.segments.back().unwrap().path.clone();
        let mut torn = OpenOptions::new().append(true).open(&current).unwrap();
        torn.write_all(&header(99, Signal::Traces, b"0123456789")[..10])
            .unwrap();
        spool.broken = true;

        append_synced(&mut spool, &["c"]);
        assert!(!spool.is_broken());
        assert_eq!(spool.used(), used + framed(&batch("c")));
        let seen: Vec<String> = names(&spool, 0).into_iter().map(|(_, n)| n).collect();
        assert_eq!(seen, ["a", "b", "c"]);
        drop(spool);

        // After a restart, nothing is cut and "c" is not lost behind a
        // torn record.
        let (spool, opened) = Spool::open(&d, SpoolOptions::default(), 0).unwrap();
        assert_eq!(opened.cut_bytes, 0, "{:?}", opened.cuts);
        let seen: Vec<String> = names(&spool, 0).into_iter().map(|(_, n)| n).collect();
        assert_eq!(seen, ["a", "b", "c"]);
        // The probe left nothing behind.
        assert!(!d.join("probe.tmp").exists());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn disk_full_is_told_apart() {
        let full = SpoolError::Io {
            path: "x".into(),
            source: io::Error::from_raw_os_error(28),
        };
        assert!(full.is_disk_full());
        let other = SpoolError::Io {
            path: "x".into(),
            source: io::Error::from_raw_os_error(5),
        };
        assert!(!other.is_disk_full());
    }

    #[test]
    fn what_was_synced_is_replayed_after_a_restart_in_order() {
        let d = dir("replay");
        let (mut spool, opened) = Spool::open(&d, SpoolOptions::default(), 0).unwrap();
        assert_eq!(opened, Opened::default());
        append_synced(&mut spool, &["a", "b", "c"]);
        drop(spool);
        let (spool, opened) = Spool::open(&d, SpoolOptions::default(), 0).unwrap();
        assert_eq!(opened.records, 3);
        assert_eq!(opened.cut_bytes, 0);
        assert_eq!(
            names(&spool, 0),
            [(1, "a".into()), (2, "b".into()), (3, "c".into())]
        );
        assert_eq!(names(&spool, 2), [(3, "c".into())]);
        assert_eq!(spool.next_seq(), 4);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_torn_tail_is_cut_and_counted_and_the_spool_goes_on() {
        let d = dir("torn");
        let (mut spool, _) = Spool::open(&d, SpoolOptions::default(), 0).unwrap();
        append_synced(&mut spool, &["a", "b"]);
        drop(spool);
        let file = segment_files(&d).pop().unwrap();
        let len = std::fs::metadata(&file).unwrap().len();
        // The crash came in the middle of writing "b".
        OpenOptions::new()
            .write(true)
            .open(&file)
            .unwrap()
            .set_len(len - 3)
            .unwrap();
        let (mut spool, opened) = Spool::open(&d, SpoolOptions::default(), 0).unwrap();
        assert_eq!(opened.records, 1);
        assert_eq!(opened.cut_bytes, len - 3 - 8 - framed(&batch("a")));
        assert_eq!(opened.cuts.len(), 1, "{:?}", opened.cuts);
        assert_eq!(names(&spool, 0), [(1, "a".into())]);
        // The lost write's number is given again: it was never acknowledged.
        assert_eq!(spool.append(&batch("c")).unwrap(), 2);
        spool.sync().unwrap();
        drop(spool);
        let (spool, opened) = Spool::open(&d, SpoolOptions::default(), 0).unwrap();
        assert_eq!(opened.cut_bytes, 0);
        assert_eq!(names(&spool, 0), [(1, "a".into()), (2, "c".into())]);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn loaded_records_are_released_and_numbers_never_go_back() {
        let d = dir("release");
        let options = SpoolOptions {
            max_bytes: 1 << 20,
            // About two records a segment.
            segment_bytes: 8 + 2 * framed(&batch("x")),
        };
        let (mut spool, _) = Spool::open(&d, options, 0).unwrap();
        append_synced(&mut spool, &["a", "b", "c", "d", "e"]);
        assert_eq!(segment_files(&d).len(), 3);
        spool.release(3).unwrap();
        // The segment holding 3 and 4 stays until 4 is loaded too.
        assert_eq!(names(&spool, 0)[0].0, 3);
        spool.release(5).unwrap();
        assert!(names(&spool, 0).is_empty());
        assert_eq!(segment_files(&d).len(), 1, "only a fresh current segment");
        assert_eq!(spool.used(), 8);
        drop(spool);
        // The database says 5 is loaded; the spool is empty: go on at 6.
        let (spool, opened) = Spool::open(&d, options, 5).unwrap();
        assert_eq!(opened.records, 0);
        assert_eq!(spool.next_seq(), 6);
        drop(spool);
        // Records already loaded that a crash left in the spool are not kept.
        let d2 = dir("release-after-crash");
        let (mut spool, _) = Spool::open(&d2, SpoolOptions::default(), 0).unwrap();
        append_synced(&mut spool, &["a", "b", "c"]);
        drop(spool);
        let (spool, opened) = Spool::open(&d2, SpoolOptions::default(), 2).unwrap();
        assert_eq!(opened.records, 1);
        assert_eq!(names(&spool, 2), [(3, "c".into())]);
        let _ = std::fs::remove_dir_all(&d);
        let _ = std::fs::remove_dir_all(&d2);
    }

    #[test]
    fn a_full_spool_refuses_until_room_is_released() {
        let d = dir("full");
        let one = framed(&batch("x"));
        let options = SpoolOptions {
            max_bytes: 8 + 2 * one,
            segment_bytes: 8 + one,
        };
        let (mut spool, _) = Spool::open(&d, options, 0).unwrap();
        spool.append(&batch("a")).unwrap();
        // A new segment's header counts too: the second record does not fit.
        let e = spool.append(&batch("b")).unwrap_err();
        assert!(matches!(e, SpoolError::Full { .. }), "{e}");
        assert!(e.to_string().contains("spool is full"), "{e}");
        spool.sync().unwrap();
        spool.release(1).unwrap();
        spool.append(&batch("b")).unwrap();
        let _ = std::fs::remove_dir_all(&d);
    }
}
