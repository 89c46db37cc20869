//! The whole application over HTTP: every endpoint, its errors, persistence.
//! Each test starts the real app on port 0 with a fresh database.
//! Needs `make models test-data` (the README's test command runs it).
mod auth;
mod calibration;
mod concurrency;
mod crops;
mod helpers;
mod hostile;
mod images;
mod index;
mod limits;
mod metrics;
mod models;
mod mqtt;
mod openapi;
mod persons;
mod pg;
mod router;
mod sealing;
mod store;
mod story;
mod unassigned;
mod unassigned_store;
mod webhook_delivery;
mod webhook_load;
mod webhooks;
mod webhooks_store;
