//! The stack file: its model (`model`), loading with source locations, validation, overrides and
//! the JSON Schema.
//!
//! `stack file (YAML) -> Stack (validated, defaults applied)` is the first step of moodlestack's
//! one-way data flow; everything after it works on [`Stack`].
//!
//! Loading runs in stages, and every stage reports *all* its problems at once:
//! 1. [`yaml`]: parse into a tree whose nodes keep their `line:column`;
//! 2. [`overrides`]: apply `--name` and `--set path=value` to the tree (their nodes point at the
//!    argument);
//! 3. [`structure`]: check the tree against the JSON Schema generated from the model (unknown
//!    keys with the closest known key, wrong types, missing keys, enum values) and record the span
//!    of every field path;
//! 4. serde turns the checked value into a [`Stack`] (defaults applied);
//! 5. [`rules`]: the semantic rules (CIDRs, zones, counts, ranges, instance types, derived AWS
//!    names, ...), located through the path map.
//!
//! Bad input never panics.

pub mod diag;
pub mod instance_types;
pub mod model;
pub mod names;
pub mod overrides;
pub mod rules;
pub mod schedule;
pub mod structure;
pub mod yaml;

pub use diag::{Diagnostic, Severity, Source, SourceKind, Sources, Span};
pub use model::*;
pub use names::Names;
pub use structure::PathMap;

use std::path::Path;
use std::sync::OnceLock;

/// How to load a stack file.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// `--name`: overrides the stack's `name`.
    pub name: Option<String>,
    /// `--set path=value` overrides, in order.
    pub set: Vec<String>,
}

/// A loaded, valid stack with where each of its fields came from.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub stack: Stack,
    /// The stack file and one source per `--name`/`--set` argument.
    pub sources: Sources,
    /// Field path (`web.instance_types[1]`) -> span.
    pub paths: PathMap,
    /// Problems that do not stop the stack from being used.
    pub warnings: Vec<Diagnostic>,
}

impl std::ops::Deref for Loaded {
    type Target = Stack;
    fn deref(&self) -> &Stack {
        &self.stack
    }
}

impl Loaded {
    /// The warnings as a report (empty string when there are none).
    pub fn warnings_report(&self, color: bool) -> String {
        if self.warnings.is_empty() {
            String::new()
        } else {
            diag::render_report(&self.warnings, &self.sources, color)
        }
    }
}

/// A stack that could not be loaded: every problem, located. `Display` is the complete plain
/// report (each problem with `file:line:column`, snippet and fix, then a summary line);
/// [`LoadError::render`] can color it.
#[derive(Clone, Debug)]
pub struct LoadError {
    pub diagnostics: Vec<Diagnostic>,
    pub sources: Sources,
}

impl LoadError {
    pub fn render(&self, color: bool) -> String {
        diag::render_report(&self.diagnostics, &self.sources, color)
    }
    /// The errors only.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.is_error())
    }
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.render(false).trim_end())
    }
}
impl std::error::Error for LoadError {}

/// The JSON Schema of stack files (generated from the model; doc comments are descriptions).
/// Draft-07, the newest draft the YAML language server (VS Code's YAML extension and others)
/// fully supports.
pub fn json_schema() -> &'static serde_json::Value {
    static SCHEMA: OnceLock<serde_json::Value> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let generator = schemars::generate::SchemaSettings::draft07().into_generator();
        let root = generator.into_root_schema_for::<Stack>();
        let mut schema = serde_json::to_value(root).unwrap_or_default();
        if let Some(obj) = schema.as_object_mut() {
            obj.insert("title".into(), "moodlestack stack file".into());
        }
        schema
    })
}

/// The schema as `moodlestack schema` prints it and `stacks/moodlestack.schema.json` holds it.
pub fn json_schema_text() -> String {
    let mut s = serde_json::to_string_pretty(json_schema()).unwrap_or_default();
    s.push('\n');
    s
}

/// Reads, parses and validates a stack file. On failure, the error's `Display` is the complete
/// report (every problem with `file:line:column`, snippet and fix).
pub fn load_file(path: &Path, options: &LoadOptions) -> Result<Stack, LoadError> {
    load(path, options).map(|l| l.stack)
}

/// Like [`load_file`], keeping the sources, the path map and the warnings.
pub fn load(path: &Path, options: &LoadOptions) -> Result<Loaded, LoadError> {
    let name = path.display().to_string();
    match std::fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => load_str(&name, &text, options),
            Err(e) => {
                let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
                let text = String::from_utf8_lossy(valid).to_string();
                let line = text.matches('\n').count() + 1;
                let column = text
                    .rsplit('\n')
                    .next()
                    .map(|l| l.chars().count())
                    .unwrap_or(0)
                    + 1;
                let mut sources = Sources::default();
                sources.add(Source {
                    name,
                    text,
                    kind: SourceKind::File,
                });
                Err(LoadError {
                    diagnostics: vec![Diagnostic::error(
                        "the file is not valid UTF-8",
                        Some(Span::new(0, line, column, 1)),
                        "save the stack file as UTF-8",
                    )],
                    sources,
                })
            }
        },
        Err(e) => {
            let mut sources = Sources::default();
            sources.add(Source {
                name: name.clone(),
                text: String::new(),
                kind: SourceKind::File,
            });
            Err(LoadError {
                diagnostics: vec![Diagnostic::error(
                    format!("cannot read the stack file: {e}"),
                    None,
                    "check the path (stack files usually live in `stacks/`)",
                )],
                sources,
            })
        }
    }
}

/// Loads a stack from text; `name` is how the text is shown in locations (normally its path).
pub fn load_str(name: &str, text: &str, options: &LoadOptions) -> Result<Loaded, LoadError> {
    let mut sources = Sources::default();
    let file = sources.add(Source {
        name: name.to_string(),
        text: text.to_string(),
        kind: SourceKind::File,
    });
    let schema = json_schema();
    let fail = |diagnostics: Vec<Diagnostic>, sources: Sources| {
        Err(LoadError {
            diagnostics,
            sources,
        })
    };

    // 1. YAML.
    let (root, mut diags) = yaml::parse(text, file);
    if diags
        .iter()
        .any(|d| d.message.starts_with("YAML syntax error"))
    {
        return fail(diags, sources);
    }
    let mut root = match root {
        Some(r) if !r.is_null() => r,
        _ => {
            diags.push(Diagnostic::error(
                "the stack file is empty",
                Some(Span::new(file, 1, 1, 1)),
                "start from `stacks/demo.yaml`: a stack needs at least `name`, `region`, \
                 `database`, `load_balancer` and `moodle`",
            ));
            return fail(diags, sources);
        }
    };
    if !matches!(root.kind, yaml::Kind::Map(_)) {
        diags.push(Diagnostic::error(
            format!(
                "a stack file is a mapping of keys to values, this one is {}",
                root.describe()
            ),
            Some(root.span),
            "write `name: ...`, `region: ...` and the sections as top-level keys",
        ));
        return fail(diags, sources);
    }

    // 2. Overrides.
    diags.extend(overrides::apply(
        &mut root,
        options.name.as_deref(),
        &options.set,
        schema,
        &mut sources,
    ));

    // 3. Structure.
    let checked = structure::check(&root, schema);
    let structural_paths: Vec<String> = checked
        .diagnostics
        .iter()
        .flat_map(|d| d.paths.iter().cloned())
        .collect();
    diags.extend(checked.diagnostics);
    let paths = checked.paths;

    // 4. The model.
    let Some(value) = checked.value else {
        return fail(diags, sources);
    };
    let stack: Stack = match serde_json::from_value(value) {
        Ok(s) => s,
        Err(e) => {
            diags.push(Diagnostic::error(
                format!("the stack does not match the model: {e}"),
                Some(root.span),
                "compare the file with `moodlestack schema`",
            ));
            return fail(diags, sources);
        }
    };

    // 5. Rules (skipping fields that already have a structural problem).
    let rules = rules::Rules::new(&stack, &paths).run();
    diags.extend(rules.into_iter().filter(|d| {
        !d.paths.iter().any(|p| {
            structural_paths.iter().any(|s| {
                p == s || p.starts_with(&format!("{s}.")) || p.starts_with(&format!("{s}["))
            })
        })
    }));

    if diags.iter().any(Diagnostic::is_error) {
        return fail(diags, sources);
    }
    Ok(Loaded {
        stack,
        sources,
        paths,
        warnings: diags,
    })
}

/// Checks the instance types (web fleet and stable) against the AMI's architecture, which is
/// known only at plan time (`arch` as EC2's `DescribeImages` spells it: `x86_64` or `arm64`).
/// Each mismatching type is reported at its place in the stack file (or `--set` argument).
pub fn check_image_architecture(loaded: &Loaded, arch: &str) -> Result<(), LoadError> {
    let mut diags = Vec::new();
    let ami = loaded
        .stack
        .ami
        .id
        .clone()
        .unwrap_or_else(|| format!("from {}", loaded.stack.ami.ssm_parameter));
    let mut check = |path: String, what: &str, t: &str| {
        if let Some(info) = instance_types::lookup(t) {
            if info.arch.as_str() != arch {
                let dflt = if loaded.paths.given(&path) {
                    ""
                } else {
                    " (default)"
                };
                let other = instance_types::INSTANCE_TYPES
                    .iter()
                    .filter(|o| o.arch.as_str() == arch && o.class() == info.class())
                    .min_by_key(|o| {
                        (
                            o.vcpus.abs_diff(info.vcpus),
                            o.memory_mib.abs_diff(info.memory_mib),
                        )
                    })
                    .map(|o| format!(", e.g. `{}`", o.name))
                    .unwrap_or_default();
                let mut d = Diagnostic::error(
                    format!("{what} instance type `{t}`{dflt} is {}, but the AMI ({ami}) is {arch}", info.arch),
                    loaded.paths.locate(&path),
                    format!(
                        "use {arch} instance types{other}, or an {} AMI (`ami.id` / `ami.ssm_parameter`)",
                        info.arch
                    ),
                );
                d.paths.push(path);
                diags.push(d);
            }
        }
    };
    for (i, t) in loaded.stack.web.instance_types.iter().enumerate() {
        check(format!("web.instance_types[{i}]"), "web", t);
    }
    check(
        "stable.instance_type".into(),
        "stable",
        &loaded.stack.stable.instance_type,
    );
    if diags.is_empty() {
        Ok(())
    } else {
        Err(LoadError {
            diagnostics: diags,
            sources: loaded.sources.clone(),
        })
    }
}
