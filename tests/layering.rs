//! The map of the house is true: every module of `src/` stands in one layer of ARCHITECTURE.md,
//! and no module imports one of its own layer or above (a `crate::` path in any of its files,
//! test code included). So the report model and the renderers never reach into a command, the
//! probing layer or `net`, and a command never reaches into another.
//!
//! The layers are read from ARCHITECTURE.md itself (the block after its `layers` marker), so
//! the document and this test cannot drift apart.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Module name → layer number, from the document's block.
type Layers = BTreeMap<String, u32>;

const MARKER: &str = "<!-- layers: tests/layering.rs reads the next block -->";

/// The block after [`MARKER`]: one line per layer, `N  module module ...`, lowest first.
fn parse_layers(doc: &str) -> Result<Layers, String> {
    let after = doc
        .split_once(MARKER)
        .ok_or("ARCHITECTURE.md has no layers marker")?
        .1;
    let block = after
        .split_once("```")
        .and_then(|(_, rest)| rest.split_once('\n'))
        .and_then(|(_, rest)| rest.split_once("```"))
        .ok_or("no fenced block after the layers marker")?
        .0;
    let mut layers = Layers::new();
    for line in block.lines().filter(|l| !l.trim().is_empty()) {
        let mut words = line.split_whitespace();
        let n: u32 = words
            .next()
            .and_then(|w| w.parse().ok())
            .ok_or_else(|| format!("layer line without a number: {line:?}"))?;
        for m in words {
            if layers.insert(m.to_string(), n).is_some() {
                return Err(format!("{m} stands in two layers"));
            }
        }
    }
    Ok(layers)
}

/// The top-level modules a source text names through `crate::` paths, also in grouped imports
/// (`use crate::{a, b::c}`).
fn crate_refs(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, _) in text.match_indices("crate::") {
        // `iceprobe::crate::` does not exist; a preceding identifier character means another
        // path (e.g. `$crate::`), skipped.
        if text[..i]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$')
        {
            continue;
        }
        let rest = &text[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for part in group[..end].split(',') {
                let name: String = part
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.push(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.push(name);
            }
        }
    }
    out
}

/// Every import that goes sideways or up: `file: module (layer) imports target (layer)`.
fn violations(layers: &Layers, files: &[(String, String, String)]) -> Vec<String> {
    let mut out = Vec::new();
    for (path, module, text) in files {
        let Some(&own) = layers.get(module) else {
            out.push(format!(
                "{path}: module {module} is in no layer of ARCHITECTURE.md"
            ));
            continue;
        };
        for target in crate_refs(text) {
            if &target == module {
                continue;
            }
            match layers.get(&target) {
                Some(&t) if t < own => {}
                Some(&t) => out.push(format!(
                    "{path}: {module} (layer {own}) imports {target} (layer {t}): a module may only import layers below its own"
                )),
                None => out.push(format!("{path}: imports crate::{target}, which is in no layer")),
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// `(path, top-level module, text)` of every `.rs` file under `src/`, except the crate roots.
fn sources(root: &Path) -> Vec<(String, String, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let src = root.join("src");
    let mut paths = vec![];
    walk(&src, &mut paths);
    paths.sort();
    let mut out = vec![];
    for p in paths {
        let rel = p.strip_prefix(&src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs").to_string();
        if module == "lib" || module == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        out.push((format!("src/{}", rel.display()), module, text));
    }
    out
}

#[test]
fn no_module_imports_its_own_layer_or_above() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let layers = parse_layers(&doc).unwrap();
    let files = sources(root);
    let found = violations(&layers, &files);
    assert!(
        found.is_empty(),
        "the layering of ARCHITECTURE.md is broken:\n  {}",
        found.join("\n  ")
    );
    // Every layer of the document names a module that exists: a stale map is a wrong map.
    for m in layers.keys() {
        assert!(
            files.iter().any(|(_, module, _)| module == m),
            "ARCHITECTURE.md names module {m}, which src/ does not have"
        );
    }
}

/// The check has teeth: a model file that imports a command, a renderer that imports the
/// probing layer, the probing layer importing a command and two commands importing each other are
/// each caught; an import downward
/// is not.
#[test]
fn a_bad_import_is_caught() {
    let doc = format!(
        "# map\n{MARKER}\n```text\n0  ice_url\n1  model\n2  render\n3  net\n4  probe\n5  check gather\n```\n"
    );
    let layers = parse_layers(&doc).unwrap();
    let file = |module: &str, text: &str| {
        (
            format!("src/{module}/x.rs"),
            module.to_string(),
            text.to_string(),
        )
    };
    let bad = [
        file("model", "use crate::check::run::CheckConfig;"),
        file("render", "use crate::{model::Report, probe::Budget};"),
        file("gather", "fn f() { crate::check::plan::plan(&[], false); }"),
        file("probe", "use crate::check::row::Row;"),
    ];
    for f in &bad {
        let v = violations(&layers, std::slice::from_ref(f));
        assert_eq!(v.len(), 1, "{}: {v:?}", f.2);
    }
    let good = [
        file(
            "render",
            "use crate::model::Report; use crate::ice_url::ServerUrl;",
        ),
        file(
            "check",
            "use crate::{probe::Budget, net::driver::drive, model::Outcome};",
        ),
        file("model", "use crate::model::Outcome; // its own module"),
        file("net", "macro_rules! m { () => { $crate::x } }"),
    ];
    for f in &good {
        assert_eq!(
            violations(&layers, std::slice::from_ref(f)),
            Vec::<String>::new(),
            "{}",
            f.2
        );
    }
    let unmapped = file("audit", "use crate::model::Report;");
    assert!(violations(&layers, &[unmapped])[0].contains("in no layer"));
    assert!(parse_layers("no marker").is_err());
    let twice = format!("{MARKER}\n```\n0 a\n1 a\n```\n");
    assert!(parse_layers(&twice).is_err());
}
