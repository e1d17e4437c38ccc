//! Quoting values for the languages the templates emit: single-quoted shell words and PHP
//! literals. Endpoint markers (`@@ref:db.instance:endpoint@@`) contain neither quotes nor
//! backslashes, so quoting leaves them verbatim between the quotes.

use serde_json::Value;

/// A single-quoted shell word: `it's` -> `'it'\''s'`.
pub fn sh(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A single-quoted PHP string: only `\` and `'` are special.
pub fn php_str(s: &str) -> String {
    format!("'{}'", s.replace('\\', r"\\").replace('\'', r"\'"))
}

/// A PHP literal for a JSON value (strings, numbers, booleans, null, arrays).
pub fn php_literal(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => php_str(s),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(php_literal).collect();
            format!("[{}]", inner.join(", "))
        }
        Value::Object(map) => {
            let inner: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{} => {}", php_str(k), php_literal(v)))
                .collect();
            format!("[{}]", inner.join(", "))
        }
    }
}

/// A valid `$CFG->name` property name: the stack validator's rule.
pub use moodlestack_stack::rules::is_php_identifier;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shell_words() {
        assert_eq!(sh("plain"), "'plain'");
        assert_eq!(sh("it's"), r"'it'\''s'");
        assert_eq!(
            sh("@@ref:db.instance:endpoint@@"),
            "'@@ref:db.instance:endpoint@@'"
        );
    }

    #[test]
    fn php_literals() {
        assert_eq!(php_str(r"a'b\c"), r"'a\'b\\c'");
        assert_eq!(php_literal(&json!(true)), "true");
        assert_eq!(php_literal(&json!(12)), "12");
        assert_eq!(php_literal(&json!(1.5)), "1.5");
        assert_eq!(php_literal(&json!(null)), "null");
        assert_eq!(php_literal(&json!(["x", 1])), "['x', 1]");
        assert_eq!(php_literal(&json!({"k": "v"})), "['k' => 'v']");
    }
}
