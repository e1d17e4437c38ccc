//! The stack file: its model (`model`), loading with source locations, validation, overrides and
//! the JSON Schema.
//!
//! `stack file (YAML) -> Stack (validated, defaults applied)` is the first step of moodlestack's
//! one-way data flow; everything after it works on [`Stack`].

pub mod instance_types;
pub mod model;
pub mod names;

pub use model::*;
pub use names::Names;

use std::path::Path;

/// How to load a stack file.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// `--name`: overrides the stack's `name`.
    pub name: Option<String>,
    /// `--set path=value` overrides, in order.
    pub set: Vec<String>,
}

/// Reads, parses and validates a stack file. On failure, the error's `Display` is the complete
/// report (every problem with `file:line:column`, snippet and fix).
// TODO(issue 2): replace with the span-aware loader and validation.
pub fn load_file(path: &Path, options: &LoadOptions) -> Result<Stack, LoadError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| LoadError(format!("{}: {e}", path.display())))?;
    let mut stack: Stack = serde_saphyr::from_str(&text)
        .map_err(|e| LoadError(format!("{}: {e}", path.display())))?;
    if let Some(name) = &options.name {
        stack.name = name.clone();
    }
    Ok(stack)
}

/// A stack file that could not be loaded; `Display` is the full report.
#[derive(Debug)]
pub struct LoadError(pub String);

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for LoadError {}
