//! What a scheduled action of the web fleet must be for Auto Scaling to take it: a Unix cron
//! recurrence (five fields, `minute hour day-of-month month day-of-week`, as
//! PutScheduledUpdateGroupAction's `Recurrence`) and an IANA time zone name (its `TimeZone`: the
//! canonical names of the IANA Time Zone Database).

/// The IANA time zones: a canonical name per line, or `alias canonical` (tzdata's links).
const TIME_ZONES: &str = include_str!("time_zones.txt");

/// What a time zone name is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimeZone {
    /// A canonical IANA name: Auto Scaling takes it.
    Canonical,
    /// An alias (a tzdata link, `UTC`, `US/Eastern`): the canonical name it stands for.
    Alias(&'static str),
    /// Not an IANA name.
    Unknown,
}

/// What `name` is in the IANA database.
pub fn time_zone(name: &str) -> TimeZone {
    for line in TIME_ZONES.lines().filter(|l| !l.starts_with('#')) {
        match line.split_once(' ') {
            None if line == name => return TimeZone::Canonical,
            Some((alias, canonical)) if alias == name => return TimeZone::Alias(canonical),
            _ => {}
        }
    }
    TimeZone::Unknown
}

/// Every canonical IANA time zone name.
pub fn canonical_time_zones() -> impl Iterator<Item = &'static str> {
    TIME_ZONES
        .lines()
        .filter(|l| !l.starts_with('#') && !l.contains(' '))
}

/// The fields of a recurrence: name, lowest value, highest value, names for values.
const FIELDS: [(&str, u32, u32, &[&str]); 5] = [
    ("minute", 0, 59, &[]),
    ("hour", 0, 23, &[]),
    ("day of month", 1, 31, &[]),
    (
        "month",
        1,
        12,
        &[
            "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
        ],
    ),
    // 0 and 7 are both Sunday.
    (
        "day of week",
        0,
        7,
        &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
    ),
];

/// What is wrong with a Unix cron recurrence (None: nothing). Each field is `*`, a value, a range
/// `a-b`, either with a step `/n`, or a comma-separated list of those; months and days of week
/// may be named (`JAN`, `MON`).
pub fn cron_problem(recurrence: &str) -> Option<String> {
    let parts: Vec<&str> = recurrence.split_whitespace().collect();
    if parts.len() != 5 {
        return Some(format!(
            "it has {} field{}; Unix cron has 5: minute hour day-of-month month day-of-week",
            parts.len(),
            if parts.len() == 1 { "" } else { "s" }
        ));
    }
    for (part, (what, lo, hi, names)) in parts.iter().zip(FIELDS) {
        for item in part.split(',') {
            if let Err(problem) = cron_item(item, lo, hi, names) {
                return Some(format!("the {what} field `{part}`: {problem}"));
            }
        }
    }
    None
}

fn cron_item(item: &str, lo: u32, hi: u32, names: &[&str]) -> Result<(), String> {
    let (range, step) = match item.split_once('/') {
        Some((r, s)) => (r, Some(s)),
        None => (item, None),
    };
    if let Some(s) = step {
        match s.parse::<u32>() {
            Ok(n) if n >= 1 && n <= hi => {}
            _ => return Err(format!("the step `/{s}` must be a number from 1 to {hi}")),
        }
    }
    if range == "*" {
        return Ok(());
    }
    let value = |v: &str| -> Result<u32, String> {
        let n = match v.parse::<u32>() {
            Ok(n) => n,
            Err(_) => names
                .iter()
                .position(|n| n.eq_ignore_ascii_case(v))
                .map(|i| i as u32 + lo)
                .ok_or_else(|| {
                    if names.is_empty() {
                        format!("`{v}` is not a number")
                    } else {
                        format!("`{v}` is not a number or a name ({})", names.join(", "))
                    }
                })?,
        };
        if n < lo || n > hi {
            return Err(format!("{n} is outside {lo}-{hi}"));
        }
        Ok(n)
    };
    match range.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (value(a)?, value(b)?);
            if a > b {
                return Err(format!("the range `{range}` runs backwards"));
            }
        }
        None => {
            value(range)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_recurrences_are_checked_field_by_field() {
        for ok in [
            "0 6 * * 1",
            "30 0 1 1,6,12 *",
            "*/15 8-18 * * MON-FRI",
            "0 7 * JAN-FEB,jun 1-5",
            "0 0 * * 7",
            "5,35 */2 1-15/2 * *",
        ] {
            assert_eq!(cron_problem(ok), None, "{ok}");
        }
        for (bad, says) in [
            ("0 6 * *", "it has 4 fields"),
            ("0 6 * * 1 2026", "it has 6 fields"),
            ("60 6 * * 1", "the minute field `60`: 60 is outside 0-59"),
            ("0 24 * * 1", "the hour field `24`: 24 is outside 0-23"),
            ("0 6 0 * *", "the day of month field `0`: 0 is outside 1-31"),
            ("0 6 * 13 *", "the month field `13`: 13 is outside 1-12"),
            ("0 6 * * 8", "the day of week field `8`: 8 is outside 0-7"),
            ("0 6 * * FRI-MON", "runs backwards"),
            ("0 6 * * MONDAY", "is not a number or a name"),
            ("*/0 6 * * *", "the step `/0`"),
            ("0 6 ? * MON", "`?` is not a number"),
        ] {
            let p = cron_problem(bad).unwrap_or_default();
            assert!(p.contains(says), "{bad}: {p}");
        }
    }

    #[test]
    fn time_zones_are_iana_names_and_aliases_name_their_canonical_zone() {
        assert_eq!(time_zone("Europe/Madrid"), TimeZone::Canonical);
        assert_eq!(time_zone("Etc/GMT+9"), TimeZone::Canonical);
        assert_eq!(time_zone("Pacific/Tahiti"), TimeZone::Canonical);
        assert_eq!(time_zone("UTC"), TimeZone::Alias("Etc/UTC"));
        assert_eq!(time_zone("US/Eastern"), TimeZone::Alias("America/New_York"));
        assert_eq!(time_zone("Europe/Madird"), TimeZone::Unknown);
        assert_eq!(time_zone("CEST"), TimeZone::Unknown);
        assert!(canonical_time_zones().count() > 400);
    }
}
