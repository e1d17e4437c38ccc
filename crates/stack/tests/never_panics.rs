//! Whatever the input, the loader returns a stack or a report: it never panics.

use moodlestack_stack::{load_str, LoadOptions};
use proptest::prelude::*;

const DEMO: &str = include_str!("../../../stacks/demo.yaml");
const PRODUCTION: &str = include_str!("../../../stacks/production.yaml");

/// Loads and renders (rendering walks every span against the source, so it must not panic
/// either). Returns whether the input validated.
fn load_and_render(text: &str, options: &LoadOptions) -> bool {
    match load_str("fuzz.yaml", text, options) {
        Ok(loaded) => {
            let _ = loaded.warnings_report(true);
            let _ = moodlestack_stack::check_image_architecture(&loaded, "arm64")
                .map_err(|e| e.render(true));
            true
        }
        Err(e) => {
            let report = e.render(false);
            assert!(!report.is_empty());
            assert!(e.errors().count() > 0, "an error without errors: {report}");
            false
        }
    }
}

#[derive(Clone, Debug)]
enum Edit {
    Delete(usize, usize),
    Insert(usize, String),
    Replace(usize, char),
    DuplicateLine(usize),
    SwapLines(usize, usize),
}

fn edit_strategy() -> impl Strategy<Value = Edit> {
    let yamlish = prop_oneof![
        Just(":".to_string()),
        Just("- ".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just("{".to_string()),
        Just("&a ".to_string()),
        Just("*a".to_string()),
        Just("<<: *a\n".to_string()),
        Just("\t".to_string()),
        Just("\"".to_string()),
        Just("'".to_string()),
        Just("\n  ".to_string()),
        Just("---\n".to_string()),
        Just("!!str ".to_string()),
        Just("~".to_string()),
        Just("é€𝄞".to_string()),
        "[ -~]{0,8}",
    ];
    prop_oneof![
        (any::<usize>(), 1usize..20).prop_map(|(a, n)| Edit::Delete(a, n)),
        (any::<usize>(), yamlish).prop_map(|(a, s)| Edit::Insert(a, s)),
        (any::<usize>(), any::<char>()).prop_map(|(a, c)| Edit::Replace(a, c)),
        any::<usize>().prop_map(Edit::DuplicateLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::SwapLines(a, b)),
    ]
}

/// Applies an edit at char boundaries.
/// `text` after `edits`, in order.
fn mutated(text: &str, edits: &[Edit]) -> String {
    edits.iter().fold(text.to_string(), |t, e| apply(&t, e))
}

fn apply(text: &str, edit: &Edit) -> String {
    let chars: Vec<char> = text.chars().collect();
    let n = chars.len().max(1);
    match edit {
        Edit::Delete(at, len) => {
            let at = at % n;
            let end = (at + len).min(chars.len());
            chars[..at.min(chars.len())]
                .iter()
                .chain(&chars[end..])
                .collect()
        }
        Edit::Insert(at, s) => {
            let at = (at % n).min(chars.len());
            chars[..at].iter().collect::<String>() + s + &chars[at..].iter().collect::<String>()
        }
        Edit::Replace(at, c) => {
            let mut chars = chars;
            if !chars.is_empty() {
                let at = at % chars.len();
                chars[at] = *c;
            }
            chars.into_iter().collect()
        }
        Edit::DuplicateLine(i) => {
            let mut lines: Vec<&str> = text.lines().collect();
            if !lines.is_empty() {
                let i = i % lines.len();
                lines.insert(i, lines[i]);
            }
            lines.join("\n")
        }
        Edit::SwapLines(a, b) => {
            let mut lines: Vec<&str> = text.lines().collect();
            if !lines.is_empty() {
                let (a, b) = (a % lines.len(), b % lines.len());
                lines.swap(a, b);
            }
            lines.join("\n")
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_strings(text in any::<String>()) {
        load_and_render(&text, &LoadOptions::default());
    }

    #[test]
    fn arbitrary_bytes_as_lossy_text(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        load_and_render(&String::from_utf8_lossy(&bytes), &LoadOptions::default());
    }

    #[test]
    fn yaml_shaped_noise(text in "([a-z_]{1,8}: ?([-\\[\\]{},&*!|>'\"#0-9a-z. ]{0,12})?\n( {2}|- )?){0,12}") {
        load_and_render(&text, &LoadOptions::default());
    }

    #[test]
    fn mutated_demo(edits in proptest::collection::vec(edit_strategy(), 1..6)) {
        load_and_render(&mutated(DEMO, &edits), &LoadOptions::default());
    }

    #[test]
    fn mutated_production(edits in proptest::collection::vec(edit_strategy(), 1..6)) {
        load_and_render(&mutated(PRODUCTION, &edits), &LoadOptions::default());
    }

    #[test]
    fn arbitrary_overrides(
        name in proptest::option::of(any::<String>()),
        sets in proptest::collection::vec(
            prop_oneof![
                any::<String>(),
                "(web|database|network|moodle|cache|tags|load_balancer)(\\.[a-z_]{1,12})?(\\[[0-9]{1,3}\\])?=[-\\[\\]{},a-z0-9.: ]{0,16}",
            ],
            0..4,
        ),
    ) {
        load_and_render(DEMO, &LoadOptions { name, set: sets });
    }
}

#[test]
fn pathological_inputs() {
    let cases = [
        "",
        "\n\n",
        "~",
        "- a\n- b\n",
        "name",
        "{",
        "name: [",
        "\u{feff}name: demo",
        "a: &a [*a]",
        "*unknown",
        "name: !!binary aGVsbG8=",
        "? [complex, key]\n: value\n",
        "name: demo\nregion: eu-west-1\nnetwork:\n  cidr: 10.0.0.0/0\n",
        "name: demo\nregion: eu-west-1\nnetwork:\n  cidr: 255.255.255.255/32\n",
        "name: demo\nregion: eu-west-1\nweb:\n  max: 99999999999999999999999\n",
        "name: demo\nregion: eu-west-1\nweb:\n  instance_types: [[[[[[[[[[]]]]]]]]]]\n",
        &"[".repeat(10_000),
        &"- ".repeat(5_000),
    ];
    for c in cases {
        load_and_render(c, &LoadOptions::default());
    }
    // Deep but within the parser's nesting limit, in a free-form field.
    let deep = format!(
        "{DEMO}\n  config:\n    x: {}{}\n",
        "[".repeat(250),
        "]".repeat(250)
    );
    assert!(!load_and_render(&deep, &LoadOptions::default()));
    let sets = [
        "=",
        "==",
        "[0]=1",
        "web[0]=1",
        "web.instance_types[99]=a",
        "web.instance_types[0].x=1",
        "tags.=x",
        "name.x=1",
        "web.max=",
        "moodle.config.a.b=1",
        "network.existing.vpc_id=vpc-1",
    ];
    for s in sets {
        load_and_render(
            DEMO,
            &LoadOptions {
                name: None,
                set: vec![s.to_string()],
            },
        );
    }
}
