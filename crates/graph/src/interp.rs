//! Markers that stand for attributes of other resources inside rendered text (user-data, IAM
//! policy documents), and their conversion into [`Value::Interpolated`].
//!
//! A marker is `@@ref:<resource id>:<attr>@@`, e.g. `@@ref:db.instance:endpoint@@`. The render
//! crate copies marker values verbatim into its output, so splitting the output on the markers
//! gives literal segments and reference segments.

use crate::GraphError;
use moodlestack_model::{Ref, Segment, Value};

const OPEN: &str = "@@ref:";
const CLOSE: &str = "@@";

/// The marker that stands for `resource`.`attr`.
pub fn marker(resource: &str, attr: &str) -> String {
    format!("{OPEN}{resource}:{attr}{CLOSE}")
}

/// Splits `text` on the markers it contains. Text without markers stays a plain string; text
/// with markers becomes [`Value::Interpolated`] with adjacent literals merged. A marker that is
/// not closed or not of the form `<id>:<attr>` is an error naming `what` (the field it came from).
pub fn interpolate(text: &str, what: &str) -> Result<Value, GraphError> {
    let mut segments: Vec<Segment> = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(OPEN) {
        let (lit, tail) = rest.split_at(start);
        push_lit(&mut segments, lit);
        let body_and_more = &tail[OPEN.len()..];
        let end = body_and_more.find(CLOSE).ok_or_else(|| {
            GraphError::Invalid(format!(
                "{what}: reference marker without its closing `@@` near `{}`; the template \
                 must copy endpoint values verbatim",
                excerpt(tail)
            ))
        })?;
        let body = &body_and_more[..end];
        let (resource, attr) = body
            .rsplit_once(':')
            .filter(|(r, a)| valid_id(r) && valid_attr(a))
            .ok_or_else(|| {
                GraphError::Invalid(format!(
                    "{what}: malformed reference marker `{OPEN}{body}{CLOSE}` (expected \
                     `{OPEN}<resource id>:<attr>{CLOSE}`); the template must copy endpoint values \
                     verbatim"
                ))
            })?;
        segments.push(Segment::Ref(Ref::new(resource, attr)));
        rest = &body_and_more[end + CLOSE.len()..];
    }
    push_lit(&mut segments, rest);
    Ok(match segments.as_slice() {
        [] => Value::str(""),
        [Segment::Lit(s)] => Value::str(s.clone()),
        _ => Value::Interpolated(segments),
    })
}

fn push_lit(segments: &mut Vec<Segment>, lit: &str) {
    if lit.is_empty() {
        return;
    }
    if let Some(Segment::Lit(prev)) = segments.last_mut() {
        prev.push_str(lit);
    } else {
        segments.push(Segment::Lit(lit.to_string()));
    }
}

fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '_')
}

fn valid_attr(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn excerpt(s: &str) -> String {
    s.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_literals_and_refs() {
        let text = format!(
            "host='{}' port={}\nsecret={}",
            marker("db.instance", "endpoint"),
            3306,
            marker("db.instance", "secret_arn")
        );
        let v = interpolate(&text, "user_data").unwrap();
        assert_eq!(
            v,
            Value::Interpolated(vec![
                Segment::Lit("host='".into()),
                Segment::Ref(Ref::new("db.instance", "endpoint")),
                Segment::Lit("' port=3306\nsecret=".into()),
                Segment::Ref(Ref::new("db.instance", "secret_arn")),
            ])
        );
        // Resolving with the real values gives the text the template would have rendered.
        let lookup = |r: &Ref| Some(format!("<{}>", r));
        assert_eq!(
            v.resolve(&lookup),
            Value::str("host='<db.instance.endpoint>' port=3306\nsecret=<db.instance.secret_arn>")
        );
    }

    #[test]
    fn adjacent_markers_and_edges() {
        let text = format!(
            "{}{}",
            marker("files.fs", "id"),
            marker("cache.redis", "port")
        );
        assert_eq!(
            interpolate(&text, "x").unwrap(),
            Value::Interpolated(vec![
                Segment::Ref(Ref::new("files.fs", "id")),
                Segment::Ref(Ref::new("cache.redis", "port")),
            ])
        );
        assert_eq!(
            interpolate("plain #!/bin/bash", "x").unwrap(),
            Value::str("plain #!/bin/bash")
        );
        assert_eq!(interpolate("", "x").unwrap(), Value::str(""));
        // `@@` alone (e.g. in a shell script) is literal text.
        assert_eq!(interpolate("a @@ b", "x").unwrap(), Value::str("a @@ b"));
    }

    #[test]
    fn broken_markers_are_errors_that_name_the_field() {
        let e = interpolate("x @@ref:db.instance:endpoint", "web user_data").unwrap_err();
        assert!(e.to_string().contains("web user_data"), "{e}");
        assert!(e.to_string().contains("closing"), "{e}");
        let e = interpolate("x @@ref:db.instance@@", "web user_data").unwrap_err();
        assert!(e.to_string().contains("malformed"), "{e}");
        // An escaped marker (a template that HTML-escaped or quoted the value) is caught too.
        let e = interpolate("@@ref:DB.instance:endpoint@@", "u").unwrap_err();
        assert!(e.to_string().contains("malformed"), "{e}");
    }
}
