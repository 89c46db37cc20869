//! visage: a self-hosted face-recognition service.
//!
//! A photo is decoded ([`vision::decode`]), faces are found with YuNet
//! ([`vision::detect`]), aligned to the ArcFace template ([`vision::align`]) and
//! embedded on the unit hypersphere with SFace ([`vision::embed`]); a decision is
//! a cosine similarity compared with a threshold ([`domain::similarity`]).
//!
//! Around the pipeline: the `visage-model` crate loads and runs the ONNX
//! files, [`engine`] runs inference on dedicated threads behind a bounded
//! queue, [`store`] keeps persons and embeddings in SQLite or PostgreSQL,
//! [`gallery`] searches them in memory, [`service`] holds the use cases,
//! [`http`] the API, [`server`] start-up and shutdown. Measurement lives in
//! the `visage-eval` crate and the command line in the `visage` binary.
// No request path may panic on input: unwrap/expect only in tests.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod admin;
pub mod calibration;
pub mod clusters;
pub mod domain;
pub mod engine;
pub mod events;
pub mod gallery;
pub mod http;
#[cfg(feature = "otel")]
pub mod otel;
pub mod sealing;
pub mod server;
pub mod service;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod vision;
