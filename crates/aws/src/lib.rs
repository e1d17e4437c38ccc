//! [`Cloud`] implemented with the AWS SDK for Rust: one module per service, all from one shared
//! `SdkConfig` built by aws-config (profiles, SSO, environment credentials and
//! `AWS_ENDPOINT_URL` for emulators work unchanged).
//!
//! Each service module exposes, for the kinds it owns, `observe`, `create`, `update`, `delete`
//! and `poll` with the signatures of the [`Cloud`] methods; this file only dispatches by kind.
