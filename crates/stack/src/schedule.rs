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

/// The AWS Backup schedule expression (`cron(0 3 ? * * *)`) of a Unix cron recurrence, or what
/// keeps it from being one: AWS Backup's minute is one number (a backup an hour at most), one of
/// day-of-month and day-of-week must be `?` (so at most one of them may be restricted), and its
/// days of week are 1-7 from Sunday (Unix: 0-7, 0 and 7 Sunday).
pub fn aws_backup_cron(recurrence: &str) -> Result<String, String> {
    if let Some(problem) = cron_problem(recurrence) {
        return Err(problem);
    }
    let parts: Vec<&str> = recurrence.split_whitespace().collect();
    let (minute, hour, dom, month, dow) = (parts[0], parts[1], parts[2], parts[3], parts[4]);
    if minute.parse::<u32>().is_err() {
        return Err(format!(
            "the minute field `{minute}` must be one number: AWS Backup runs a plan's rule at \
             most once an hour"
        ));
    }
    let days = week_days(dow);
    let every_day = days.len() == 7;
    if !every_day && dom != "*" {
        return Err(format!(
            "both the day of month (`{dom}`) and the day of week (`{dow}`) are restricted; AWS \
             Backup takes one of them"
        ));
    }
    Ok(if every_day {
        format!("cron({minute} {hour} {dom} {month} ? *)")
    } else {
        let aws: Vec<String> = days.iter().map(|d| (d + 1).to_string()).collect();
        format!("cron({minute} {hour} ? {month} {} *)", aws.join(","))
    })
}

/// The days (0 = Sunday ... 6) a valid day-of-week field names.
fn week_days(field: &str) -> std::collections::BTreeSet<u32> {
    let names = FIELDS[4].3;
    let value = |v: &str| -> u32 {
        v.parse::<u32>().unwrap_or_else(|_| {
            names
                .iter()
                .position(|n| n.eq_ignore_ascii_case(v))
                .map_or(0, |i| i as u32)
        })
    };
    let mut out = std::collections::BTreeSet::new();
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (r, s.parse::<u32>().unwrap_or(1).max(1)),
            None => (item, 1),
        };
        let (lo, hi) = match range {
            "*" => (0, 7),
            r => match r.split_once('-') {
                Some((a, b)) => (value(a), value(b)),
                None if step > 1 => (value(r), 7),
                None => (value(r), value(r)),
            },
        };
        out.extend((lo..=hi).step_by(step as usize).map(|d| d % 7));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_schedules_become_aws_backup_cron_expressions() {
        for (unix, aws) in [
            ("0 3 * * *", "cron(0 3 * * ? *)"),
            ("30 1 1 * *", "cron(30 1 1 * ? *)"),
            ("0 2 * * 0", "cron(0 2 ? * 1 *)"),
            ("0 2 * * 7", "cron(0 2 ? * 1 *)"),
            ("0 2 * * MON-FRI", "cron(0 2 ? * 2,3,4,5,6 *)"),
            ("0 2 * * 5-7", "cron(0 2 ? * 1,6,7 *)"),
            ("0 */6 * * 0-6", "cron(0 */6 * * ? *)"),
        ] {
            assert_eq!(aws_backup_cron(unix).as_deref(), Ok(aws), "{unix}");
        }
        for bad in ["*/15 * * * *", "0 3 1 * MON", "0 3 * *"] {
            assert!(aws_backup_cron(bad).is_err(), "{bad}");
        }
    }

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
