//! Stacks that expire: `--ttl` (plan, apply) and the expiry tag.
//!
//! `apply --ttl 3d` puts `moodlestack:expires-at` (RFC 3339 UTC, now + 3 days) on every taggable
//! resource of the stack: on the create call of new ones, and as an in-place tag update of existing
//! ones (a later `apply --ttl` extends or shortens it). A plain plan or apply (no `--ttl`) keeps
//! the expiry the stack has: the tag is compared on the keys the stack sets only, so existing
//! resources show no change, and resources it creates get the stack's latest expiry, so a stack
//! with an expiry never gains a resource without one. `moodlestack gc` destroys stacks whose
//! expiry has passed.

use super::common::fail;
use moodlestack_model::cloud::{parse_rfc3339, rfc3339, unix_now};
use moodlestack_model::{Observed, Resource, Value, TAG_EXPIRES};

/// Seconds of a `--ttl` value: a whole number followed by `s`, `m`, `h` or `d` (`90m`, `3d`).
pub fn parse_ttl(text: &str) -> anyhow::Result<u64> {
    let n = parse_duration("--ttl", text)?;
    if n == 0 {
        return Err(fail(
            "--ttl 0 would make the stack expired at once",
            "give a positive duration, or destroy the stack with `moodlestack destroy`",
        ));
    }
    Ok(n)
}

/// Seconds of the duration `text` given to the option `flag` (`--ttl`, `--since`): a whole number
/// followed by `s`, `m`, `h` or `d` (`90m`, `3d`).
pub fn parse_duration(flag: &str, text: &str) -> anyhow::Result<u64> {
    let t = text.trim();
    let fix = format!(
        "write a whole number and a unit: s (seconds), m (minutes), h (hours) or d (days), \
         e.g. {flag} 3d or {flag} 12h"
    );
    let unit_at = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(unit_at);
    let Ok(n) = digits.parse::<u64>() else {
        return Err(fail(
            format!("{flag} `{text}` does not start with a number"),
            fix,
        ));
    };
    let per = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "" => {
            return Err(fail(
                format!("{flag} `{text}` has no unit"),
                format!("add one: {flag} {n}h (hours) or {flag} {n}d (days); {fix}"),
            ))
        }
        other => {
            return Err(fail(
                format!("{flag} `{text}`: unknown unit `{other}`"),
                fix,
            ))
        }
    };
    n.checked_mul(per)
        .filter(|s| *s <= 100 * 365 * 86_400)
        .ok_or_else(|| fail(format!("{flag} `{text}` is too long"), "use at most 36500d"))
}

/// [`parse_ttl`] of an optional `--ttl`.
pub fn parse_opt(text: Option<&str>) -> anyhow::Result<Option<u64>> {
    text.map(parse_ttl).transpose()
}

/// The expiry tag of an observed resource, in seconds since the epoch (None: no tag, or a value
/// that is not an RFC 3339 time).
pub fn tag_of(o: &Observed) -> Option<u64> {
    match o.fields.get("tags") {
        Some(Value::Map(tags)) => match tags.get(TAG_EXPIRES) {
            Some(Value::Str(s)) => parse_rfc3339(s),
            _ => None,
        },
        _ => None,
    }
}

/// The stack's expiry as observed: the latest expiry tag of its resources (None: no resource has
/// one).
pub fn observed(observed: &[Observed]) -> Option<u64> {
    observed
        .iter()
        .filter(|o| !o.is_foreign())
        .filter_map(tag_of)
        .max()
}

/// Tags `desired` with the expiry: now + `ttl` seconds when given, else the stack's existing
/// expiry (so resources a plain apply creates carry it too). Returns the expiry set, if any.
pub fn tag_desired(
    desired: &mut [Resource],
    ttl: Option<u64>,
    existing: &[Observed],
) -> Option<u64> {
    let at = match ttl {
        Some(secs) => Some(unix_now() + secs),
        None => observed(existing),
    }?;
    moodlestack_graph::set_expiry(desired, &rfc3339(at));
    Some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_take_seconds_minutes_hours_and_days() {
        assert_eq!(parse_ttl("2s").unwrap(), 2);
        assert_eq!(parse_ttl("90m").unwrap(), 5400);
        assert_eq!(parse_ttl("12h").unwrap(), 43_200);
        assert_eq!(parse_ttl("3d").unwrap(), 259_200);
        for (bad, says) in [
            ("3", "add one: --ttl 3h"),
            ("3w", "unknown unit `w`"),
            ("d", "does not start with a number"),
            ("0s", "expired at once"),
            ("1.5h", "unknown unit `.5h`"),
        ] {
            let e = parse_ttl(bad).unwrap_err();
            let f = e.downcast_ref::<super::super::common::Failure>().unwrap();
            assert!(
                format!("{} {}", f.message, f.fix).contains(says),
                "{bad}: {f:?}"
            );
        }
    }
}
