//! Plan output: the human text form (Terraform-style, grouped by resource), the Markdown form
//! (`plan --format markdown`: a pull-request comment or a CI job summary) and the JSON form
//! (`plan --format json`, `plan --out`), which is the serde shape of [`Plan`] with a
//! `format_version`.

use crate::cost::{Cost, CostLine, Estimate};
use crate::plan::{Action, Change, FieldChange, Plan, FORMAT_VERSION};
use moodlestack_model::{spec, Delta, NoteKind, Observed, Value};
use std::fmt::Write as _;

const RESET: &str = "\x1b[0m";
const BOLD: &str = "\x1b[1m";
const RED: &str = "\x1b[31m";
const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const CYAN: &str = "\x1b[36m";
const DIM: &str = "\x1b[2m";

/// At most this many changed lines of a long text value (user-data) are shown.
const MAX_TEXT_DIFF_LINES: usize = 40;
/// Texts whose line-count product exceeds this are not diffed line by line (only size and hash).
const MAX_TEXT_DIFF_CELLS: usize = 4_000_000;

struct Painter {
    color: bool,
}

impl Painter {
    fn paint(&self, style: &str, text: &str) -> String {
        if self.color {
            format!("{style}{text}{RESET}")
        } else {
            text.to_string()
        }
    }
}

/// The plan as text: one block per resource that changes (unchanged ones are only counted), then
/// the summary line, then the cost estimate when the plan has one. ANSI colors only when `color`.
pub fn text(plan: &Plan, color: bool) -> String {
    let mut out = changes_text(plan, color);
    if let Some(e) = &plan.cost {
        out.push('\n');
        out.push_str(&cost_text(e));
    }
    out
}

fn changes_text(plan: &Plan, color: bool) -> String {
    let p = Painter { color };
    let mut out = String::new();
    if !plan.has_changes() {
        let _ = writeln!(
            out,
            "No changes. Stack `{}` ({}) matches its stack file: {} resource{} up to date.",
            plan.stack,
            plan.region,
            plan.summary.unchanged,
            if plan.summary.unchanged == 1 { "" } else { "s" }
        );
        ignored(plan, &mut out);
        return out;
    }
    let _ = writeln!(out, "Plan for stack `{}` ({}):", plan.stack, plan.region);
    let _ = writeln!(
        out,
        "  {} create, {} update in place, {} replace (delete, then create), {} delete",
        p.paint(GREEN, "+"),
        p.paint(YELLOW, "~"),
        p.paint(RED, "-/+"),
        p.paint(RED, "-")
    );
    for c in plan.changes.iter().filter(|c| c.action.is_change()) {
        out.push('\n');
        change(&p, c, &mut out);
    }
    out.push('\n');
    if plan.summary.unchanged > 0 {
        let _ = writeln!(
            out,
            "{} resource{} unchanged.",
            plan.summary.unchanged,
            if plan.summary.unchanged == 1 { "" } else { "s" }
        );
    }
    ignored(plan, &mut out);
    let s = &plan.summary;
    let _ = writeln!(
        out,
        "{}",
        p.paint(
            BOLD,
            &format!(
                "Plan: {} to create, {} to update, {} to replace, {} to delete.",
                s.create, s.update, s.replace, s.delete
            )
        )
    );
    out
}

/// GitHub refuses comments over 65,536 characters: the detailed changes are cut to fit.
const MAX_MARKDOWN_DETAILS: usize = 60_000;

/// The plan as Markdown, for a pull-request comment or a CI job summary: the summary line, data
/// loss first (a caution block naming each change that loses data and why), one table row per
/// change, its notes, the resources left alone, then every change in full (the text form) in a
/// collapsed block, cut to fit a comment.
pub fn markdown(plan: &Plan) -> String {
    let mut out = String::new();
    let s = &plan.summary;
    let _ = writeln!(
        out,
        "### moodlestack plan: `{}` ({})\n",
        plan.stack, plan.region
    );
    if !plan.has_changes() {
        let _ = writeln!(
            out,
            "**No changes.** The stack matches its stack file: {} resource{} up to date.",
            s.unchanged,
            if s.unchanged == 1 { "" } else { "s" }
        );
    } else {
        let _ = writeln!(
            out,
            "**Plan: {} to create, {} to update, {} to replace, {} to delete.** {} unchanged.",
            s.create, s.update, s.replace, s.delete, s.unchanged
        );
    }
    let changes: Vec<&Change> = plan
        .changes
        .iter()
        .filter(|c| c.action.is_change())
        .collect();
    let loss: Vec<(&Change, &str)> = changes
        .iter()
        .flat_map(|c| {
            c.notes
                .iter()
                .filter(|n| n.kind == NoteKind::DataLoss)
                .map(move |n| (*c, n.text.as_str()))
        })
        .collect();
    if !loss.is_empty() {
        out.push_str("\n> [!CAUTION]\n> **Data loss.** Apply refuses this plan without `--allow-data-loss`:\n");
        for (c, text) in loss {
            let _ = writeln!(out, "> - `{}` ({}): {}", c.id, c.kind, md_text(text));
        }
    }
    if !changes.is_empty() {
        out.push_str("\n| | resource | kind | change | notes |\n|---|---|---|---|---|\n");
        for c in &changes {
            let (symbol, verb) = match c.action {
                Action::Create => ("+", "create"),
                Action::Update => ("~", "update in place"),
                Action::Replace => ("-/+", "replace"),
                Action::Delete => ("-", "delete"),
                Action::NoOp => continue,
            };
            let what = if c.action == Action::Update {
                let names: Vec<String> =
                    c.fields.iter().map(|f| format!("`{}`", f.field)).collect();
                format!("{verb}: {}", names.join(", "))
            } else {
                verb.to_string()
            };
            let notes: Vec<String> = c.notes.iter().map(|n| md_text(&n.text)).collect();
            let _ = writeln!(
                out,
                "| {symbol} | `{}` | {} | {what} | {} |",
                c.id,
                c.kind,
                notes.join("<br>")
            );
        }
    }
    if !plan.ignored.is_empty() {
        let _ = writeln!(
            out,
            "\nLeft alone: {} resource{} tagged `moodlestack:stack={}` without `moodlestack:id` \
             (not created by moodlestack; never changed or deleted):\n",
            plan.ignored.len(),
            if plan.ignored.len() == 1 { "" } else { "s" },
            plan.stack
        );
        for line in foreign_lines(&plan.ignored).lines() {
            let _ = writeln!(out, "- `{}`", line.trim());
        }
    }
    if !changes.is_empty() {
        let p = Painter { color: false };
        let mut details = String::new();
        for c in &changes {
            change(&p, c, &mut details);
            details.push('\n');
        }
        if details.len() > MAX_MARKDOWN_DETAILS {
            let cut = (0..=MAX_MARKDOWN_DETAILS)
                .rev()
                .find(|i| details.is_char_boundary(*i))
                .unwrap_or(0);
            details.truncate(cut);
            details.push_str("\n... (cut to fit a comment: `moodlestack plan` shows it all)\n");
        }
        // A fence longer than any run of backticks inside.
        let fence = "`".repeat(3.max(longest_backtick_run(&details) + 1));
        let _ = write!(
            out,
            "\n<details><summary>Every change</summary>\n\n{fence}text\n{details}{fence}\n\n</details>\n"
        );
    }
    if let Some(e) = &plan.cost {
        out.push_str(&cost_markdown(e));
    }
    out
}

/// `$12.34`, `-$3.50`.
fn usd(v: f64) -> String {
    if v < 0.0 {
        format!("-${:.2}", -v)
    } else {
        format!("${v:.2}")
    }
}

/// `+$12.34`, `-$3.50`, `$0.00`.
fn usd_change(v: f64) -> String {
    if v > 0.0 {
        format!("+{}", usd(v))
    } else {
        usd(v)
    }
}

/// A unit price with the digits it has (`$0.0456`, `$0.40`), at most 6 decimals.
fn unit_price(v: f64) -> String {
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0');
    let decimals = s.split_once('.').map_or(0, |(_, d)| d.len());
    if decimals < 2 {
        format!("${v:.2}")
    } else {
        format!("${s}")
    }
}

/// `730 h`, `20 GB-month`, `0.5 h`.
fn quantity(q: f64, unit: &str) -> String {
    if q.fract() == 0.0 {
        format!("{q:.0} {unit}")
    } else {
        format!("{q} {unit}")
    }
}

/// A line's change a month: `+$13.14`; `?` when a side's price is unknown; empty for a usage
/// that depends on size (only its unit price is shown).
fn change_column(l: &CostLine) -> String {
    let by_size = [&l.desired, &l.current]
        .into_iter()
        .flatten()
        .all(|c| c.quantity.is_none() && c.unknown.is_none());
    match l.change {
        _ if by_size => String::new(),
        Some(v) => usd_change(v),
        None => "?".into(),
    }
}

/// How one side of a cost line was reckoned: `730 h x $0.0456/h = $33.29`, `$0.33/GB-month (by
/// size, not counted)`, `price unknown: why`.
fn reckoning(c: &Cost) -> String {
    match (&c.unknown, c.unit_price, c.quantity) {
        (Some(why), _, _) => format!("price unknown ({why})"),
        (None, Some(p), Some(q)) => format!(
            "{} x {}/{} = {}",
            quantity(q, &c.unit),
            unit_price(p),
            c.unit,
            usd(c.monthly.unwrap_or(0.0))
        ),
        (None, Some(p), None) => format!("{}/{}, not counted", unit_price(p), c.unit),
        (None, None, _) => "price unknown".into(),
    }
}

/// The estimate as text: a line per resource and usage (what, quantity x unit price = a month,
/// and the change), the totals, which prices, what is not counted.
pub fn cost_text(e: &Estimate) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Estimated monthly cost ({}, {} hours a month; an estimate from list prices, not a bill):",
        e.currency, e.hours_per_month
    );
    let width = e
        .lines
        .iter()
        .map(|l| l.id.as_str().len())
        .max()
        .unwrap_or(0);
    for l in &e.lines {
        let change = change_column(l);
        let mut row = |id: &str, change: &str, label: &str, c: &Cost| {
            let _ = writeln!(
                out,
                "  {id:width$}  {change:>9}  {label}{}: {}",
                c.item,
                reckoning(c)
            );
        };
        match (&l.desired, &l.current) {
            (Some(d), current) => {
                row(l.id.as_str(), &change, "", d);
                // The side as it exists, when it differs.
                if let Some(c) = current
                    .as_ref()
                    .filter(|c| c.item != d.item || c.monthly != d.monthly)
                {
                    row("", "", "now: ", c);
                }
            }
            (None, Some(c)) => row(l.id.as_str(), &change, "deleted: ", c),
            (None, None) => {}
        }
    }
    let _ = writeln!(
        out,
        "  Total: {} a month as desired, {} as it exists now: change {} a month.",
        usd(e.desired_monthly),
        usd(e.current_monthly),
        usd_change(e.change_monthly)
    );
    if e.unknown_prices > 0 {
        let _ = writeln!(
            out,
            "  {} line{} with an unknown price {} not in the totals.",
            e.unknown_prices,
            if e.unknown_prices == 1 { "" } else { "s" },
            if e.unknown_prices == 1 { "is" } else { "are" }
        );
    }
    let _ = writeln!(out, "  Prices: {}.", e.prices.join("; "));
    let _ = writeln!(out, "  Not counted: {}.", e.not_counted.join("; "));
    out
}

/// The estimate as Markdown: a table of the lines, the totals, which prices, what is not counted.
fn cost_markdown(e: &Estimate) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n#### Estimated monthly cost\n\n**{} a month** as desired, {} as it exists now: \
         **change {} a month** ({}, {} hours a month; an estimate from list prices, not a bill).\n",
        usd(e.desired_monthly),
        usd(e.current_monthly),
        usd_change(e.change_monthly),
        e.currency,
        e.hours_per_month
    );
    out.push_str("| resource | what | as desired | now | change |\n|---|---|---|---|---|\n");
    for l in &e.lines {
        let item = l
            .desired
            .as_ref()
            .or(l.current.as_ref())
            .map_or(String::new(), |c| md_text(&c.item));
        let side = |c: &Option<Cost>| {
            c.as_ref()
                .map_or("-".to_string(), |c| md_text(&reckoning(c)))
        };
        let _ = writeln!(
            out,
            "| `{}` | {item} | {} | {} | {} |",
            l.id,
            side(&l.desired),
            side(&l.current),
            change_column(l)
        );
    }
    if e.unknown_prices > 0 {
        let _ = writeln!(
            out,
            "\n{} line(s) with an unknown price are not in the totals.",
            e.unknown_prices
        );
    }
    let _ = writeln!(out, "\nPrices: {}.\n", md_text(&e.prices.join("; ")));
    let _ = writeln!(out, "Not counted: {}.", md_text(&e.not_counted.join("; ")));
    out
}

/// Text for a Markdown table cell or list item: no line breaks, no column separators.
fn md_text(text: &str) -> String {
    text.replace('\n', " ").replace('|', "\\|")
}

fn longest_backtick_run(text: &str) -> usize {
    text.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

/// The resources that carry the stack's tag but are not the stack's ([`Plan::ignored`]).
fn ignored(plan: &Plan, out: &mut String) {
    if plan.ignored.is_empty() {
        return;
    }
    let n = plan.ignored.len();
    let _ = writeln!(
        out,
        "Left alone: {n} resource{} tagged moodlestack:stack={} without moodlestack:id (not \
         created by moodlestack; never changed or deleted):",
        if n == 1 { "" } else { "s" },
        plan.stack
    );
    out.push_str(&foreign_lines(&plan.ignored));
}

/// One line per foreign resource: kind, physical id and its Name tag.
pub fn foreign_lines(foreign: &[Observed]) -> String {
    let mut out = String::new();
    for o in foreign {
        let name = o
            .tag("Name")
            .map(|n| format!(" (Name: {n})"))
            .unwrap_or_default();
        let _ = writeln!(out, "  {} {}{name}", spec(o.kind).name, o.physical_id);
    }
    out
}

fn change(p: &Painter, c: &Change, out: &mut String) {
    let (symbol, style, verb) = match c.action {
        Action::Create => ("  +", GREEN, "will be created"),
        Action::Update => ("  ~", YELLOW, "will be updated in place"),
        Action::Replace => ("-/+", RED, "will be replaced"),
        Action::Delete => ("  -", RED, "will be deleted"),
        Action::NoOp => return,
    };
    let physical = match (&c.current, c.action) {
        (Some(o), Action::Update | Action::Replace | Action::Delete) => {
            format!(" {}", p.paint(DIM, &format!("[{}]", o.physical_id)))
        }
        _ => String::new(),
    };
    let _ = writeln!(
        out,
        "{} {} ({}){} {}",
        p.paint(style, symbol),
        p.paint(BOLD, c.id.as_str()),
        c.kind,
        physical,
        verb
    );
    for f in &c.fields {
        field(p, c, f, out);
    }
    for note in &c.notes {
        let style = if note.kind == NoteKind::DataLoss {
            RED
        } else {
            CYAN
        };
        let _ = writeln!(out, "      {}", p.paint(style, &format!("# {note}")));
    }
}

fn short(v: Option<&Value>) -> String {
    v.map_or_else(|| "(absent)".to_string(), show)
}

/// [`Value::display_short`] applied inside lists and maps too: long strings in them are shown
/// by size and hash, unknown parts as `(known after apply)`.
fn show(v: &Value) -> String {
    match v {
        Value::List(items) => format!("[{}]", items.iter().map(show).collect::<Vec<_>>().join(",")),
        Value::Map(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{}:{}", Value::str(k.as_str()).display_short(), show(v)))
                .collect::<Vec<_>>()
                .join(",")
        ),
        other => other.display_short(),
    }
}

fn field(p: &Painter, c: &Change, f: &FieldChange, out: &mut String) {
    const IND: &str = "      ";
    if c.action == Action::Create {
        let _ = writeln!(
            out,
            "{IND}{} {}: {}",
            p.paint(GREEN, "+"),
            f.field,
            short(f.new.as_ref())
        );
        return;
    }
    let forces = if f.forces_replacement {
        format!("  {}", p.paint(RED, "# forces replacement"))
    } else {
        String::new()
    };
    match (f.delta.as_ref(), f.old.as_ref(), f.new.as_ref()) {
        // Maps: the keys that differ, as the diff found them.
        (Some(Delta::Map { keys }), _, _) => {
            let _ = writeln!(out, "{IND}{} {}:{forces}", p.paint(YELLOW, "~"), f.field);
            for k in keys {
                let _ = match (&k.old, &k.new) {
                    (Some(o), Some(n)) => writeln!(
                        out,
                        "{IND}    {} {}: {} -> {}",
                        p.paint(YELLOW, "~"),
                        k.key,
                        show(o),
                        show(n)
                    ),
                    (None, Some(n)) => {
                        writeln!(
                            out,
                            "{IND}    {} {}: {}",
                            p.paint(GREEN, "+"),
                            k.key,
                            show(n)
                        )
                    }
                    (Some(o), None) => {
                        writeln!(out, "{IND}    {} {}: {}", p.paint(RED, "-"), k.key, show(o))
                    }
                    (None, None) => Ok(()),
                };
            }
        }
        // Sets: the elements added and removed.
        (Some(Delta::Set { added, removed }), _, _) => {
            let _ = writeln!(out, "{IND}{} {}:{forces}", p.paint(YELLOW, "~"), f.field);
            for v in added {
                let _ = writeln!(out, "{IND}    {} {}", p.paint(GREEN, "+"), show(v));
            }
            for v in removed {
                let _ = writeln!(out, "{IND}    {} {}", p.paint(RED, "-"), show(v));
            }
        }
        (None, old, new) => {
            let _ = writeln!(
                out,
                "{IND}{} {}: {} -> {}{forces}",
                p.paint(YELLOW, "~"),
                f.field,
                short(old),
                short(new)
            );
            if let (Some(Value::Str(a)), Some(Value::Str(b))) = (old, new) {
                if a.contains('\n') || b.contains('\n') {
                    text_diff(p, a, b, out);
                }
            }
        }
    }
}

/// A compact line diff of two texts (removed and added lines, no context), capped.
fn text_diff(p: &Painter, old: &str, new: &str, out: &mut String) {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    if a.len().saturating_mul(b.len()) > MAX_TEXT_DIFF_CELLS {
        return;
    }
    let ops = line_diff(&a, &b);
    let total = ops.len();
    for (sign, line) in ops.iter().take(MAX_TEXT_DIFF_LINES) {
        let (style, mark) = if *sign { (GREEN, "+") } else { (RED, "-") };
        let _ = writeln!(
            out,
            "          {}",
            p.paint(style, &format!("{mark} {line}"))
        );
    }
    if total > MAX_TEXT_DIFF_LINES {
        let _ = writeln!(
            out,
            "          ... {} more changed lines",
            total - MAX_TEXT_DIFF_LINES
        );
    }
}

/// Lines removed (false) and added (true), in order, from a longest common subsequence.
fn line_diff<'a>(a: &[&'a str], b: &[&'a str]) -> Vec<(bool, &'a str)> {
    let (n, m) = (a.len(), b.len());
    // lcs[i][j]: LCS length of a[i..] and b[j..].
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    // Walk the table; each run of changes between common lines is shown as its removals, then
    // its additions.
    let (mut i, mut j) = (0, 0);
    let mut ops = Vec::new();
    let (mut removed, mut added): (Vec<&str>, Vec<&str>) = (Vec::new(), Vec::new());
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            ops.extend(removed.drain(..).map(|l| (false, l)));
            ops.extend(added.drain(..).map(|l| (true, l)));
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            added.push(b[j]);
            j += 1;
        } else {
            removed.push(a[i]);
            i += 1;
        }
    }
    ops.extend(removed.into_iter().map(|l| (false, l)));
    ops.extend(added.into_iter().map(|l| (true, l)));
    ops
}

/// The plan as pretty JSON: the serde shape of [`Plan`] (README "Plans" documents every field).
pub fn json(plan: &Plan) -> String {
    let mut s = serde_json::to_string_pretty(plan).expect("plans serialize");
    s.push('\n');
    s
}

/// A saved plan could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadPlanError {
    #[error("not a moodlestack plan file: {0}")]
    Parse(#[from] serde_json::Error),
    #[error("plan file format version {found}, this moodlestack reads version {FORMAT_VERSION}")]
    Version { found: u64 },
}

impl moodlestack_model::Hint for ReadPlanError {
    fn hint(&self) -> Option<String> {
        Some(
            match self {
                ReadPlanError::Parse(_) => "pass a file written by `moodlestack plan --out FILE`",
                ReadPlanError::Version { .. } => {
                    "make the plan again with this moodlestack (`moodlestack plan <stack> --out \
                     FILE`)"
                }
            }
            .into(),
        )
    }
}

/// Reads a plan written by [`json`], checking its `format_version` first.
pub fn read_json(text: &str) -> Result<Plan, ReadPlanError> {
    let raw: serde_json::Value = serde_json::from_str(text)?;
    let found = raw
        .get("format_version")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0);
    if found != u64::from(FORMAT_VERSION) {
        return Err(ReadPlanError::Version { found });
    }
    Ok(serde_json::from_value(raw)?)
}

#[cfg(test)]
#[path = "print_tests.rs"]
mod tests;
