//! OTLP receivers. Both transports decode a request into a [`Batch`](sluice_otlp::Batch), hand it
//! to [`Ingest`](crate::ingest::Ingest), and translate the outcome into their
//! protocol's status codes in one place each.

pub mod grpc;
pub mod http;
