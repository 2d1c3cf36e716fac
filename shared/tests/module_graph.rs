//! The domain crate's modules import each other in one direction only: no two modules, and no
//! longer circle of them, depend on each other. A module may always use its own ancestors (a
//! child uses `super::`) and descendants; every other reference, written `crate::...` or
//! `super::...`, is an arrow between the two sibling modules that contain its ends (a re-export
//! counts as the module that defines the item), and no arrows may form a circle. Test modules are
//! left out: a test may import whatever it checks.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Module = Vec<String>;

/// Each arrow, with the places that draw it (file and path as written).
type Evidence = BTreeMap<(Module, Module), BTreeSet<String>>;

/// `(module, name)` → the module that defines what `module` re-exports as `name`.
type Aliases = BTreeMap<(Module, String), Module>;

#[test]
fn the_domain_crate_has_no_import_cycles() {
    let arrows = arrows(&source());
    let report: Vec<String> = circles(&arrows).iter().map(|circle| describe(circle, &arrows)).collect();
    assert!(report.is_empty(), "import cycles between modules:\n{}", report.join("\n"));
}

#[test]
fn the_arrows_read_from_the_crate_include_its_known_layers() {
    let arrows = arrows(&source());
    for (from, to) in [
        ("http", "service"),
        ("service", "store"),
        ("service", "query"),
        ("store", "replay"),
        ("signature", "limits"),
        ("key_value", "model"),
        ("api_key_info", "query"),
        ("query::stat", "query::filter"),
        ("service::admin", "service::rules"),
        ("store::dynamodb::writes", "store::dynamodb::item"),
    ] {
        assert!(arrows.contains_key(&(m(from), m(to))), "{from} -> {to} not seen in {:#?}", arrows.keys());
    }
}

#[test]
fn a_circle_is_found_and_named() {
    let mut arrows = Evidence::new();
    let mut draw = |from: &str, to: &str, place: &str| {
        arrows.entry((m(from), m(to))).or_default().insert(place.to_owned());
    };
    draw("config", "service", "config.rs: service::X");
    draw("service", "config", "service.rs: config::Y");
    draw("service", "model", "service.rs: model::Z");
    let found = circles(&arrows);
    assert_eq!(found, vec![vec![m("config"), m("service")]]);
    assert!(describe(&found[0], &arrows).contains("config.rs: service::X"));
}

#[test]
fn references_resolve_to_the_modules_that_define_what_they_name() {
    let known: BTreeSet<Module> =
        ["", "store", "store::dynamodb", "store::dynamodb::item", "replay", "query", "query::filter"]
            .into_iter()
            .map(|path| if path.is_empty() { Module::new() } else { m(path) })
            .collect();
    let aliases = Aliases::from([
        ((Module::new(), "Keygate".to_owned()), m("service")),
        ((m("query"), "Filter".to_owned()), m("query::filter")),
    ]);
    let text = production_code(
        "//! See [`crate::model::Doc`].\n\
         use crate::replay::ReplayNonce; // and crate::config in a comment\n\
         use super::{item::Item, super::Store};\n\
         use crate::{query::Filter, Keygate};\n\
         const URL: &str = \"http://crate::nothing\";\n\
         #[cfg(test)]\nmod tests { use crate::query::Query; }\n\
         fn after_tests() { crate::query::filter::run(); }",
    );
    let targets: BTreeSet<Module> = references(&text, &m("store::dynamodb::writes"), &known, &aliases)
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    let expected = ["replay", "store::dynamodb::item", "store", "query::filter", "service"];
    assert_eq!(targets, expected.into_iter().map(m).collect());
}

#[test]
fn re_exports_are_traced_to_their_defining_module() {
    let known: BTreeSet<Module> = [m("query"), m("query::filter"), m("query::stat")].into_iter().collect();
    let found =
        reexports("pub mod filter;\npub use self::filter::{Condition, Filter};\n", &m("query"), &known);
    assert_eq!(found.get(&(m("query"), "Filter".to_owned())), Some(&m("query::filter")));
    assert_eq!(found.get(&(m("query"), "Condition".to_owned())), Some(&m("query::filter")));
}

fn m(path: &str) -> Module {
    path.split("::").map(str::to_owned).collect()
}

fn source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every arrow between sibling modules of the crate under `source`, with what draws it.
fn arrows(source: &Path) -> Evidence {
    let files = rust_files(source);
    let modules: BTreeMap<&PathBuf, Module> = files.iter().map(|f| (f, module_of(source, f))).collect();
    let known: BTreeSet<Module> = modules.values().cloned().collect();
    let texts: BTreeMap<&PathBuf, String> = files
        .iter()
        .map(|file| (file, production_code(&std::fs::read_to_string(file).expect("readable source"))))
        .collect();
    let mut aliases = Aliases::new();
    for (file, text) in &texts {
        aliases.extend(reexports(text, &modules[file], &known));
    }
    let mut arrows = Evidence::new();
    for (file, module) in &modules {
        for (target, written) in references(&texts[file], module, &known, &aliases) {
            let shared = module.iter().zip(&target).take_while(|(a, b)| a == b).count();
            if shared == module.len() || shared == target.len() {
                continue; // an ancestor or a descendant
            }
            let from = module[..=shared].to_vec();
            let to = target[..=shared].to_vec();
            let place = file.strip_prefix(source).unwrap_or(file).display();
            arrows.entry((from, to)).or_default().insert(format!("{place}: {written}"));
        }
    }
    arrows
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("readable source directory") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// `src/a/b.rs` and `src/a/b/mod.rs` are `a::b`; `src/lib.rs` is the root.
fn module_of(source: &Path, file: &Path) -> Module {
    let relative = file.strip_prefix(source).expect("under src").with_extension("");
    let mut parts: Module = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// The code a module compiles outside tests: comments and `#[cfg(test)] mod ... { }` removed.
fn production_code(text: &str) -> String {
    let code: String = text.lines().map(without_comment).collect::<Vec<_>>().join("\n");
    let mut kept = String::with_capacity(code.len());
    let mut rest = code.as_str();
    while let Some(at) = rest.find("#[cfg(test)]") {
        kept.push_str(&rest[..at]);
        let after = rest[at + "#[cfg(test)]".len()..].trim_start();
        let is_module = after.starts_with("mod ") || after.starts_with("pub mod ");
        rest = match after.find('{').filter(|_| is_module) {
            Some(open) => &after[open + block_len(&after[open..])..],
            // Anything else under `cfg(test)` stays in: it can only add arrows.
            None => after,
        };
    }
    kept.push_str(rest);
    kept
}

/// A line up to its `//` comment, if any (a `//` inside a string literal is kept).
fn without_comment(line: &str) -> &str {
    let (mut in_string, mut escaped) = (false, false);
    for (i, c) in line.char_indices() {
        match c {
            '\\' if in_string && !escaped => {
                escaped = true;
                continue;
            }
            '"' if !escaped => in_string = !in_string,
            '/' if !in_string && line[i + 1..].starts_with('/') => return &line[..i],
            _ => {}
        }
        escaped = false;
    }
    line
}

/// The length of the `{...}` block `text` starts with.
fn block_len(text: &str) -> usize {
    let mut depth = 0;
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
    }
    text.len()
}

/// The `pub use` items of a module: `module::Name` means the module the item comes from.
fn reexports(code: &str, module: &Module, known: &BTreeSet<Module>) -> Aliases {
    let mut aliases = Aliases::new();
    for (at, _) in code.match_indices("pub use ") {
        let text = &code[at + "pub use ".len()..];
        let text = &text[..reference_len(text)];
        let (base, path) = match text.strip_prefix("crate::") {
            Some(path) => (Module::new(), path),
            None => (module.clone(), text),
        };
        for path in expand(base, path) {
            if let Some((name, from)) = path.split_last() {
                let defining = resolve(&from.to_vec(), known, &Aliases::new());
                if defining.len() > module.len() || !defining.starts_with(module) {
                    aliases.insert((module.clone(), name.clone()), defining);
                }
            }
        }
    }
    aliases
}

/// The modules a file's production code names through `crate::` or `super::`, each with the
/// path as written.
fn references(
    code: &str,
    module: &Module,
    known: &BTreeSet<Module>,
    aliases: &Aliases,
) -> Vec<(Module, String)> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = next_reference(code, from) {
        let rest = &code[at..];
        let (base, path) = match rest.strip_prefix("crate::") {
            Some(path) => (Module::new(), path),
            None => (module[..module.len().saturating_sub(1)].to_vec(), &rest["super::".len()..]),
        };
        for path in expand(base, path) {
            found.push((resolve(&path, known, aliases), path.join("::")));
        }
        // A group's own `super::` items were read with it.
        from = at + reference_len(rest);
    }
    found
}

/// Where the next `crate::` or `super::` path starts, at or after `from`, outside string literals.
fn next_reference(code: &str, from: usize) -> Option<usize> {
    let mut at = from;
    loop {
        let found = ["crate::", "super::"].iter().filter_map(|word| code[at..].find(word)).min()? + at;
        let line_start = code[..found].rfind('\n').map_or(0, |i| i + 1);
        let in_string = code[line_start..found].matches('"').count() % 2 == 1;
        let glued =
            code[..found].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':' || c == '$');
        if !glued && !in_string {
            return Some(found);
        }
        at = found + 1;
    }
}

/// The length of a path with its `{...}` groups.
fn reference_len(text: &str) -> usize {
    let mut depth = 0;
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ if depth > 0 => {}
            c if c.is_alphanumeric() || c == '_' || c == ':' => {}
            _ => return i,
        }
    }
    text.len()
}

/// The absolute paths a reference names: `a::{b::C, d}` names `a::b::C` and `a::d`.
fn expand(mut base: Module, text: &str) -> Vec<Module> {
    let mut rest = text.trim_start();
    loop {
        if let Some(inner) = rest.strip_prefix("super::") {
            base.pop();
            rest = inner;
        } else if let Some(group) = rest.strip_prefix('{') {
            return split_group(group).into_iter().flat_map(|item| expand(base.clone(), item)).collect();
        } else {
            let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(rest.len());
            if end == 0 {
                return vec![base];
            }
            let segment = &rest[..end];
            if segment != "self" {
                base.push(segment.to_owned());
            }
            match rest[end..].strip_prefix("::") {
                Some(next) => rest = next,
                None => return vec![base],
            }
        }
    }
}

/// The top-level items of a `{...}` group, whose closing brace ends it.
fn split_group(group: &str) -> Vec<&str> {
    let (mut depth, mut start, mut items) = (0, 0, Vec::new());
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(&group[start..i]);
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&group[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.into_iter().map(str::trim).filter(|item| !item.is_empty()).collect()
}

/// The module a path names: the longest known module it starts with or, when the next segment
/// is something that module re-exports, the module that defines it.
fn resolve(path: &Module, known: &BTreeSet<Module>, aliases: &Aliases) -> Module {
    let (len, module) = (0..=path.len())
        .rev()
        .map(|len| (len, path[..len].to_vec()))
        .find(|(_, prefix)| known.contains(prefix))
        .unwrap_or_default();
    match path.get(len) {
        Some(name) => aliases.get(&(module.clone(), name.clone())).cloned().unwrap_or(module),
        None => module,
    }
}

/// The strongly connected groups of more than one module (Tarjan), each sorted.
fn circles(arrows: &Evidence) -> Vec<Vec<Module>> {
    let mut next: BTreeMap<&Module, Vec<&Module>> = BTreeMap::new();
    for (from, to) in arrows.keys() {
        next.entry(from).or_default().push(to);
        next.entry(to).or_default();
    }
    struct Walk<'a> {
        index: BTreeMap<&'a Module, usize>,
        low: BTreeMap<&'a Module, usize>,
        stack: Vec<&'a Module>,
        on_stack: BTreeSet<&'a Module>,
        found: Vec<Vec<Module>>,
    }
    fn visit<'a>(node: &'a Module, next: &BTreeMap<&'a Module, Vec<&'a Module>>, walk: &mut Walk<'a>) {
        let order = walk.index.len();
        walk.index.insert(node, order);
        walk.low.insert(node, order);
        walk.stack.push(node);
        walk.on_stack.insert(node);
        for &target in &next[node] {
            if !walk.index.contains_key(target) {
                visit(target, next, walk);
                let low = walk.low[node].min(walk.low[target]);
                walk.low.insert(node, low);
            } else if walk.on_stack.contains(target) {
                let low = walk.low[node].min(walk.index[target]);
                walk.low.insert(node, low);
            }
        }
        if walk.low[node] == walk.index[node] {
            let mut group = Vec::new();
            while let Some(member) = walk.stack.pop() {
                walk.on_stack.remove(member);
                group.push(member.clone());
                if member == node {
                    break;
                }
            }
            if group.len() > 1 {
                group.sort();
                walk.found.push(group);
            }
        }
    }
    let mut walk = Walk {
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for node in next.keys() {
        if !walk.index.contains_key(node) {
            visit(node, &next, &mut walk);
        }
    }
    walk.found.sort();
    walk.found
}

/// A circle and the references that draw its arrows.
fn describe(circle: &[Module], arrows: &Evidence) -> String {
    let name = |module: &Module| module.join("::");
    let mut lines = vec![format!("circle: {}", circle.iter().map(name).collect::<Vec<_>>().join(", "))];
    for ((from, to), places) in arrows {
        if circle.contains(from) && circle.contains(to) {
            let places: Vec<&str> = places.iter().map(String::as_str).collect();
            lines.push(format!("  {} -> {}: {}", name(from), name(to), places.join("; ")));
        }
    }
    lines.join("\n")
}
