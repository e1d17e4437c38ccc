//! The Handlebars registry: every file of `templates/`, embedded in the binary, in strict mode
//! (a missing variable is an error) with no escaping (the output is shell, PHP and config files,
//! never HTML).

use crate::{quote, RenderError};
use handlebars::{
    no_escape, Context, Handlebars, Helper, HelperDef, HelperResult, Output, RenderContext,
    RenderErrorReason,
};
use serde_json::Value;
use std::sync::LazyLock;

macro_rules! embed {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_str!(concat!("../../../templates/", $path)))),*]
    };
}

/// Top-level templates: (path under `templates/`, source). Registered as the path without
/// `.hbs`: `files/config.php`, `user-data/web.sh`.
pub const TEMPLATES: &[(&str, &str)] = embed![
    "user-data/web.sh.hbs",
    "user-data/stable.sh.hbs",
    "files/config.php.hbs",
    "files/apache-vhost.conf.hbs",
    "files/php-fpm-pool.conf.hbs",
    "files/php-fpm-dropin.conf.hbs",
    "files/php.ini.hbs",
    "files/moodle-secrets.sh.hbs",
    "files/moodle-secrets.service.hbs",
    "files/moodle-secrets.timer.hbs",
    "files/imds.sh.hbs",
    "files/moodle-spot-watcher.sh.hbs",
    "files/moodle-spot-watcher.service.hbs",
    "files/moodle-install-upgrade.sh.hbs",
    "files/moodle-smoke-test.sh.hbs",
    "files/moodle-health.php.hbs",
    "files/moodle-install-upgrade.service.hbs",
    "files/moodle-gate.sh.hbs",
    "files/moodle-gate.service.hbs",
    "files/moodle-gate.timer.hbs",
    "files/moodle-cron.hbs",
    "files/moodle-cron.sh.hbs",
    "files/cloudwatch-agent.json.hbs",
    "files/logrotate.hbs",
    "files/moodledata-restored.sh.hbs",
];

/// Partials: (path under `templates/`, source). Registered as the file name without extensions:
/// `partials/imds.sh.hbs` is `{{> imds}}`.
pub const PARTIALS: &[(&str, &str)] = embed![
    "partials/header.sh.hbs",
    "partials/packages.sh.hbs",
    "partials/write-file.sh.hbs",
    "partials/runtime-files.sh.hbs",
    "partials/efs.sh.hbs",
    "partials/secrets.sh.hbs",
    "partials/code.sh.hbs",
    "partials/start.sh.hbs",
];

fn template_name(path: &str) -> &str {
    path.strip_suffix(".hbs").unwrap_or(path)
}

fn partial_name(path: &str) -> &str {
    let file = path.rsplit('/').next().unwrap_or(path);
    file.split('.').next().unwrap_or(file)
}

/// Every path under `templates/` the binary embeds.
#[cfg(test)]
pub fn embedded_paths() -> Vec<&'static str> {
    TEMPLATES.iter().chain(PARTIALS).map(|(p, _)| *p).collect()
}

fn str_param<'a>(h: &'a Helper, name: &str, index: usize) -> Result<&'a str, RenderErrorReason> {
    let p = h
        .param(index)
        .filter(|p| !p.is_value_missing())
        .ok_or_else(|| {
            RenderErrorReason::ParamNotFoundForName("", format!("{name}: parameter {index}"))
        })?;
    p.value()
        .as_str()
        .ok_or_else(|| RenderErrorReason::InvalidParamType("a string"))
}

/// The helper `{{name value}}` that writes its string parameter quoted by `quote`.
fn quoting(name: &'static str, quote: fn(&str) -> String) -> Box<dyn HelperDef + Send + Sync> {
    Box::new(
        move |h: &Helper,
              _: &Handlebars,
              _: &Context,
              _: &mut RenderContext,
              out: &mut dyn Output|
              -> HelperResult {
            out.write(&quote(str_param(h, name, 0)?))?;
            Ok(())
        },
    )
}

/// `(concat a b ...)`: strings and numbers joined.
fn concat_helper(
    h: &Helper,
    _: &Handlebars,
    _: &Context,
    _: &mut RenderContext,
    out: &mut dyn Output,
) -> HelperResult {
    let mut s = String::new();
    for (i, p) in h.params().iter().enumerate() {
        if p.is_value_missing() {
            return Err(RenderErrorReason::ParamNotFoundForName(
                "concat",
                format!("parameter {i}"),
            )
            .into());
        }
        match p.value() {
            Value::String(v) => s.push_str(v),
            Value::Number(n) => s.push_str(&n.to_string()),
            _ => return Err(RenderErrorReason::InvalidParamType("a string or number").into()),
        }
    }
    out.write(&s)?;
    Ok(())
}

/// The error `e` of `template`.
fn template_error(template: &str, e: impl std::fmt::Display) -> RenderError {
    RenderError::Template {
        template: template.to_string(),
        message: e.to_string(),
    }
}

fn build() -> Result<Handlebars<'static>, RenderError> {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    hb.set_prevent_indent(true);
    hb.register_escape_fn(no_escape);
    // `{{sh value}}`: a single-quoted shell word; `{{php_string value}}`: a single-quoted PHP
    // string.
    hb.register_helper("sh", quoting("sh", quote::sh));
    hb.register_helper("php_string", quoting("php_string", quote::php_str));
    hb.register_helper("concat", Box::new(concat_helper));
    for (path, source) in PARTIALS {
        hb.register_partial(partial_name(path), *source)
            .map_err(|e| template_error(path, e))?;
    }
    for (path, source) in TEMPLATES {
        hb.register_template_string(template_name(path), *source)
            .map_err(|e| template_error(path, e))?;
    }
    Ok(hb)
}

static REGISTRY: LazyLock<Result<Handlebars<'static>, String>> =
    LazyLock::new(|| build().map_err(|e| e.to_string()));

/// The shared registry (built once).
pub fn registry() -> Result<&'static Handlebars<'static>, RenderError> {
    REGISTRY.as_ref().map_err(|message| RenderError::Template {
        template: "templates/".into(),
        message: message.clone(),
    })
}

/// Renders the registered template `name` with `ctx`.
pub fn render(hb: &Handlebars, name: &str, ctx: &Value) -> Result<String, RenderError> {
    hb.render(name, ctx).map_err(|e| template_error(name, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::path::{Path, PathBuf};

    fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path: PathBuf = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, root, out);
            } else {
                out.push(
                    path.strip_prefix(root)
                        .unwrap()
                        .to_string_lossy()
                        .replace('\\', "/"),
                );
            }
        }
    }

    #[test]
    fn every_file_in_templates_is_embedded() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../templates");
        let mut on_disk = Vec::new();
        walk(&root, &root, &mut on_disk);
        on_disk.sort();
        let mut embedded: Vec<String> = embedded_paths().iter().map(|s| s.to_string()).collect();
        embedded.sort();
        assert_eq!(
            on_disk, embedded,
            "templates/ and the embedded list in templates.rs differ"
        );
    }

    #[test]
    fn the_registry_builds() {
        registry().unwrap();
    }

    #[test]
    fn strict_mode_fails_on_a_missing_variable() {
        let hb = registry().unwrap();
        let err = render(
            hb,
            "files/moodle-cron",
            &json!({ "php": { "bin": "/usr/bin/php8.3" }, "current_flag": "/run/moodle/current" }),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("files/moodle-cron") && err.contains("logs.cron"),
            "{err}"
        );
        // Helpers too: a missing parameter is an error, not an empty string.
        let mut hb2 = Handlebars::new();
        hb2.set_strict_mode(true);
        hb2.register_helper("sh", quoting("sh", quote::sh));
        hb2.register_template_string("t", "{{sh nothing}}").unwrap();
        assert!(hb2.render("t", &json!({})).is_err());
    }

    #[test]
    fn no_html_escaping() {
        let mut hb = Handlebars::new();
        hb.register_escape_fn(no_escape);
        hb.register_template_string("t", "{{v}}").unwrap();
        assert_eq!(
            hb.render("t", &json!({ "v": "a<b>&'\"" })).unwrap(),
            "a<b>&'\""
        );
        assert!(registry().is_ok());
    }
}
