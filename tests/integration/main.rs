//! The integration suite: one test binary (each extra binary would link the AWS SDK again).
//! Every test starts its own emulator (moto server on 127.0.0.1, a free port) and stops it.

mod aws_special;
mod ci_envs;
mod cli;
mod contract;
mod cost;
mod e2e;
mod faults;
mod harness;
mod moodle;
mod node_code;
mod status_logs;
mod workflow;
