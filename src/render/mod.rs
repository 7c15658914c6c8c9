//! Pure renderers: a report or an event in, bytes out to an injected writer. Nothing here
//! prints, reads the environment or asks whether stdout is a terminal; the caller decides that
//! and passes a [`Style`]. Renderers read only the model (`crate::model`) and decide nothing:
//! every verdict, cause and hint is in the report already. One file per command; the shared
//! toolkit (formats, style, painter, wrapping, the expectations block) is here. Snapshot-tested
//! against `fixtures/golden/`.

pub mod check;
pub mod ci;
pub mod connect;
pub mod gather;
pub mod junit;
pub mod nat;

use std::fmt;
use std::io::{self, Write};

use comfy_table::{presets, Attribute, Cell, Color, ContentArrangement, Table};

use crate::model::expect::AssertionResult;
use crate::model::{Body, Family, Summarised, Verdict};

/// Output format (`--format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Live lines as events arrive, then tables, hints and the verdict, for humans.
    #[default]
    Table,
    /// Nothing until the end, then the whole [`GatherReport`] as pretty JSON.
    #[value(help = "Nothing until the end, then the whole report as pretty JSON")]
    Json,
    /// One compact `{"type": ..., "data": ...}` [`Event`] per line, as it happens.
    #[value(help = "One compact {\"type\": ..., \"data\": ...} event per line, as it happens")]
    Ndjson,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Table => "table",
            Format::Json => "json",
            Format::Ndjson => "ndjson",
        })
    }
}

/// Table width used when the output is not a terminal, so that output is deterministic. Wide
/// enough for an IPv4 candidates table without wrapping.
pub const DEFAULT_WIDTH: u16 = 140;

/// An event any command streams, rendered in any format.
pub trait Render {
    /// Write this event: see each command's renderer for the table format.
    fn render(&self, format: Format, out: &mut dyn Write, style: &Style) -> io::Result<()>;
}

/// Render one event of any command: [`Format::Json`] writes the summary's report once,
/// pretty, and nothing before it; [`Format::Ndjson`] writes every event as one compact
/// `{"type": ..., "data": ...}` line; [`Format::Table`] is the command's own `table`.
fn event<E, B>(
    format: Format,
    event: &E,
    out: &mut dyn Write,
    style: &Style,
    table: impl FnOnce(&E, &mut dyn Write, Painter) -> io::Result<()>,
) -> io::Result<()>
where
    E: serde::Serialize + Summarised<Body = B>,
    B: Body + serde::Serialize,
{
    let written = match format {
        Format::Table => return table(event, out, Painter(style)),
        Format::Json => match event.summary() {
            Some(r) => serde_json::to_writer_pretty(&mut *out, r),
            None => return Ok(()),
        },
        Format::Ndjson => serde_json::to_writer(&mut *out, event),
    };
    written
        .map_err(io::Error::from)
        .and_then(|_| out.write_all(b"\n"))
}

/// How the table format looks. Decided by the caller from the terminal and the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    /// ANSI colours and UTF-8 box drawing. Only when stdout is a TTY and `NO_COLOR` is unset;
    /// without it the output is plain ASCII.
    pub color: bool,
    /// Maximum table width in columns: the terminal's width on a TTY, else [`DEFAULT_WIDTH`].
    pub width: u16,
}

impl Default for Style {
    /// Plain ASCII, [`DEFAULT_WIDTH`] columns: what a pipe or a file gets.
    fn default() -> Self {
        Style {
            color: false,
            width: DEFAULT_WIDTH,
        }
    }
}

/// Milliseconds as people read them: `12.3 ms`.
fn ms(v: f64) -> String {
    format!("{v:.1} ms")
}

/// Applies ANSI colour only when the style allows it, and picks ASCII or UTF-8 punctuation.
#[derive(Clone, Copy)]
struct Painter<'a>(&'a Style);

impl Painter<'_> {
    fn paint(self, sgr: &str, s: &str) -> String {
        if self.0.color {
            format!("\x1b[{sgr}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    fn red(self, s: &str) -> String {
        self.paint("1;31", s)
    }
    fn green(self, s: &str) -> String {
        self.paint("1;32", s)
    }
    fn dim(self, s: &str) -> String {
        self.paint("2", s)
    }
    fn dash(self) -> &'static str {
        if self.0.color {
            "—"
        } else {
            "-"
        }
    }
    fn table(self, header: &[&str]) -> Table {
        let mut t = Table::new();
        t.force_no_tty()
            .load_style(if self.0.color {
                presets::UTF8_FULL_CONDENSED
            } else {
                presets::ASCII_FULL_CONDENSED
            })
            .set_content_arrangement(ContentArrangement::Dynamic)
            .set_width(self.0.width)
            .set_header(
                header
                    .iter()
                    .map(|h| self.cell(h).add_attribute(Attribute::Bold)),
            );
        if self.0.color {
            t.enforce_styling();
        }
        t
    }
    fn cell(self, s: &str) -> Cell {
        Cell::new(s)
    }
    fn colored(self, s: &str, color: Color) -> Cell {
        let c = Cell::new(s);
        if self.0.color {
            c.fg(color)
        } else {
            c
        }
    }
}

/// Width a table needs to show every cell on one line: content, one space of padding each side
/// and a border between and around columns.
fn natural_width(t: &Table) -> usize {
    let content: usize = t
        .column_max_content_widths()
        .iter()
        .map(|w| *w as usize)
        .sum();
    content + 3 * t.column_iter().count() + 1
}

/// The `--expect` results, one line each (`PASS`/`FAIL`, the expression, what was observed);
/// nothing without `--expect`. Printed just before the verdict line.
fn expectations_block(
    results: &[AssertionResult],
    out: &mut dyn Write,
    p: Painter,
) -> io::Result<()> {
    if results.is_empty() {
        return Ok(());
    }
    writeln!(out, "\nexpectations")?;
    let w = results
        .iter()
        .map(|r| r.expression.chars().count())
        .max()
        .unwrap_or(0);
    for r in results {
        let mark = if r.passed {
            p.green("PASS")
        } else {
            p.red("FAIL")
        };
        writeln!(out, "  {mark}  {:<w$}  {}", r.expression, r.observed)?;
    }
    Ok(())
}

/// The last line of every table: the verdict's summary in its colour, then `(tail; exit N)`.
fn verdict_line(v: &Verdict, tail: &str, out: &mut dyn Write, p: Painter) -> io::Result<()> {
    let summary = if v.ok {
        p.green(&v.summary)
    } else {
        p.red(&v.summary)
    };
    writeln!(out, "\n{summary} ({tail}; exit {})", v.exit_code)
}

/// Address families as a start line names them: `ipv4+ipv6`.
fn families(list: &[Family], sep: &str) -> String {
    let words: Vec<&str> = list.iter().map(|f| f.as_str()).collect();
    words.join(sep)
}

/// Word-wrap `text` after `first` on the first line and `indent` on the others, within `width`
/// display columns (a long word stays whole on its own line). Width is measured as a terminal
/// shows it (`unicode-width`): "—" is one column in three bytes, a CJK character two.
fn wrap(first: &str, indent: &str, text: &str, width: usize) -> String {
    use unicode_width::UnicodeWidthStr;
    let mut out = String::from(first);
    let mut col = first.width();
    let mut start = true;
    for word in text.split(' ') {
        let n = word.width();
        if !start && col + 1 + n > width {
            out.push('\n');
            out.push_str(indent);
            col = indent.width();
        } else if !start {
            out.push(' ');
            col += 1;
        }
        out.push_str(word);
        col += n;
        start = false;
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use std::fmt::Debug;
    use std::path::PathBuf;

    use serde::de::DeserializeOwned;
    use serde::Serialize;
    use serde_json::Value;

    use super::{Format, Render, Style};
    use crate::model::{Report, Summarised};

    /// Every event rendered in `format`, as one text.
    pub(crate) fn render_all<E: Render>(events: &[E], format: Format, style: &Style) -> String {
        let mut out = Vec::new();
        for e in events {
            e.render(format, &mut out, style).unwrap();
        }
        String::from_utf8(out).unwrap()
    }

    /// The output contract of a command's events: the machine formats read back into the
    /// model (the JSON is the summary's report, each NDJSON line the event it was made from)
    /// and never carry colour; the table has colour only when the style asks, and is plain
    /// ASCII otherwise. With `golden`,
    /// JSON and NDJSON also match `fixtures/golden/<golden>.json` and `.ndjson`.
    pub(crate) fn machine_round_trip<E>(events: &[E], golden_name: Option<&str>)
    where
        E: Render + Summarised + Serialize + DeserializeOwned + PartialEq + Debug,
        Report<E::Body>: DeserializeOwned + PartialEq + Debug,
    {
        let style = Style::default();
        let json = render_all(events, Format::Json, &style);
        let ndjson = render_all(events, Format::Ndjson, &style);
        if let Some(name) = golden_name {
            golden(&format!("{name}.json"), &json);
            golden(&format!("{name}.ndjson"), &ndjson);
        }
        let back: Report<E::Body> =
            serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: the JSON is no report"));
        let want = events
            .last()
            .and_then(|e| e.summary())
            .expect("a summary last");
        assert_eq!(&back, want);
        let lines: Vec<E> = ndjson
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        assert_eq!(lines, events);
        let colour = Style {
            color: true,
            width: 200,
        };
        assert!(render_all(events, Format::Table, &colour).contains("\x1b["));
        let plain = render_all(events, Format::Table, &style);
        assert!(plain.is_ascii(), "the plain table is ASCII");
        assert!(!plain.contains('\x1b'), "no colour codes without color");
        for f in [Format::Json, Format::Ndjson] {
            assert!(!render_all(events, f, &colour).contains('\x1b'), "{f}");
        }
    }

    /// Compare with `fixtures/golden/<name>`; `UPDATE_GOLDEN=1` rewrites it instead.
    pub(crate) fn golden(name: &str, got: &str) {
        let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "fixtures", "golden", name]
            .iter()
            .collect();
        if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, got).unwrap();
            return;
        }
        let want = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}; run with UPDATE_GOLDEN=1", path.display()));
        if got != want {
            let first = got
                .lines()
                .zip(want.lines())
                .position(|(g, w)| g != w)
                .unwrap_or_else(|| got.lines().count().min(want.lines().count()));
            panic!(
                "{} differs from the rendered output at line {}:\n  want: {:?}\n  got:  {:?}\n\
                 --- got (whole) ---\n{got}\n(if the change is intended, rerun with UPDATE_GOLDEN=1 and review the diff)",
                path.display(),
                first + 1,
                want.lines().nth(first),
                got.lines().nth(first),
            );
        }
    }

    /// Validates `v` against the subset of JSON Schema 2020-12 the schema file uses. Any other
    /// keyword fails the test, so the subset can never be skipped silently.
    pub(crate) fn validate(
        root: &Value,
        schema: &Value,
        v: &Value,
        at: &str,
    ) -> Result<(), String> {
        let obj = schema
            .as_object()
            .ok_or(format!("{at}: schema not an object"))?;
        for (k, s) in obj {
            match k.as_str() {
                "$schema" | "$defs" | "title" | "description" => {}
                "$ref" => {
                    let name = s.as_str().unwrap().strip_prefix("#/$defs/").unwrap();
                    validate(root, &root["$defs"][name], v, at)?;
                }
                "type" => {
                    let types: Vec<&str> = match s {
                        Value::String(t) => vec![t.as_str()],
                        _ => s
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|t| t.as_str().unwrap())
                            .collect(),
                    };
                    let ok = types.iter().any(|t| match *t {
                        "object" => v.is_object(),
                        "array" => v.is_array(),
                        "string" => v.is_string(),
                        "boolean" => v.is_boolean(),
                        "null" => v.is_null(),
                        "integer" => v.is_u64() || v.is_i64(),
                        "number" => v.is_number(),
                        t => panic!("type {t}"),
                    });
                    if !ok {
                        return Err(format!("{at}: {v} is not {types:?}"));
                    }
                }
                "const" if s != v => return Err(format!("{at}: {v} != const {s}")),
                "const" => {}
                "enum" if !s.as_array().unwrap().contains(v) => {
                    return Err(format!("{at}: {v} not in {s}"))
                }
                "enum" => {}
                "minimum" | "maximum" => {
                    if let (Some(x), Some(b)) = (v.as_f64(), s.as_f64()) {
                        if (k == "minimum" && x < b) || (k == "maximum" && x > b) {
                            return Err(format!("{at}: {x} breaks {k} {b}"));
                        }
                    }
                }
                "properties" => {
                    if let Some(o) = v.as_object() {
                        for (name, sub) in s.as_object().unwrap() {
                            if let Some(x) = o.get(name) {
                                validate(root, sub, x, &format!("{at}/{name}"))?;
                            }
                        }
                    }
                }
                "required" => {
                    for name in s.as_array().unwrap() {
                        if v.get(name.as_str().unwrap()).is_none() {
                            return Err(format!("{at}: missing {name}"));
                        }
                    }
                }
                "additionalProperties" => {
                    assert_eq!(s, &Value::Bool(false));
                    let known = obj["properties"].as_object().unwrap();
                    if let Some(extra) = v
                        .as_object()
                        .and_then(|o| o.keys().find(|k| !known.contains_key(*k)))
                    {
                        return Err(format!("{at}: unexpected field {extra}"));
                    }
                }
                "items" => {
                    for (i, x) in v.as_array().into_iter().flatten().enumerate() {
                        validate(root, s, x, &format!("{at}/{i}"))?;
                    }
                }
                "oneOf" => {
                    let results: Vec<_> = s
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|sub| validate(root, sub, v, at))
                        .collect();
                    let n = results.iter().filter(|r| r.is_ok()).count();
                    if n != 1 {
                        return Err(format!("{at}: {n} oneOf branches match: {results:?}"));
                    }
                }
                other => panic!("{at}: keyword {other} not supported by this test"),
            }
        }
        Ok(())
    }

    /// A schema file under docs/schema.
    pub(crate) fn schema(file: &str) -> Value {
        let path = format!("{}/docs/schema/{file}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    /// Validate the JSON rendering of `events` against the schema's root and every NDJSON
    /// line against `#/$defs/{event}`; returns the report for further (negative) checks.
    pub(crate) fn assert_matches_schema<E: Render>(
        root: &Value,
        event: &str,
        events: &[E],
    ) -> Value {
        let style = Style::default();
        let json = render_all(events, Format::Json, &style);
        let ndjson = render_all(events, Format::Ndjson, &style);
        let report: Value = serde_json::from_str(&json).unwrap();
        validate(root, root, &report, "").unwrap();
        let event = serde_json::json!({ "$ref": format!("#/$defs/{event}") });
        for line in ndjson.lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            validate(root, &event, &v, "").unwrap();
        }
        report
    }

    /// The validator is not vacuous: `spoil` makes `report` invalid and it must be rejected.
    pub(crate) fn assert_rejected(root: &Value, report: &Value, spoil: impl FnOnce(&mut Value)) {
        let mut bad = report.clone();
        spoil(&mut bad);
        assert!(validate(root, root, &bad, "").is_err(), "accepted: {bad}");
    }

    #[test]
    fn wrap_measures_what_a_terminal_shows() {
        assert_eq!(
            super::wrap("  * ", "    ", "aaa bbb ccc", 11),
            "  * aaa bbb\n    ccc"
        );
        assert_eq!(super::wrap("  * ", "    ", "x", 1), "  * x");
        // "—" is three bytes but one column: a line of ten columns fits a width of ten.
        assert_eq!(super::wrap("", "", "a — b — cd", 10), "a — b — cd");
        assert_eq!(super::wrap("", "", "a — b — cde", 10), "a — b —\ncde");
        // A wide character takes two columns.
        assert_eq!(super::wrap("", "", "漢字 ab", 6), "漢字\nab");
    }
}
