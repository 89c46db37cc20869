//! visage: a self-hosted face-recognition service.
//!
//! A photo is decoded ([`vision::decode`]), faces are found with YuNet
//! ([`vision::detect`]), aligned to the ArcFace template ([`vision::align`]) and
//! embedded on the unit hypersphere with SFace ([`vision::embed`]); a decision is
//! a cosine similarity compared with a threshold ([`vision::similarity`]).
//! [`model`] loads and verifies the ONNX files, [`eval`] measures accuracy.
pub mod cli;
pub mod eval;
pub mod model;
pub mod vision;
