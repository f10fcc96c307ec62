//! OTLP as Sluice holds it: the decoded [`Batch`] that flows from the
//! receivers through the plugins to the store, the decoders that make one
//! from a request body, the checks protobuf decoding cannot make, and the
//! partial-success answers.
//!
//! The bottom of the data flow: it depends on no other Sluice crate, and on
//! no runtime (no tokio), no database and no plugin engine.

mod batch;
pub mod decode;
mod response;
mod signal;
mod validate;

pub use batch::{Batch, data_point_count};
pub use decode::{DecodeError, Encoding};
pub use response::{Accepted, ExportResponse};
pub use signal::{Logs, Metrics, OtlpSignal, Signal, Traces};
pub use validate::{Rejected, validate};
