//! The domain crate's modules import each other in one direction only: no two modules, and no
//! longer circle of them, depend on each other. A module may always use its own ancestors (a
//! child uses `super::`) and descendants; every other reference, written `crate::...` or
//! `super::...`, is an arrow between the two sibling modules that contain its ends, and no arrows
//! may form a circle. Test modules are left out: a test may import whatever it checks.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Module = Vec<String>;

/// Where an arrow comes from: the file and the path it names.
type Evidence = BTreeMap<(Module, Module), BTreeSet<String>>;

#[test]
fn the_domain_crate_has_no_import_cycles() {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let arrows = arrows(&source);
    let circles = circles(&arrows);
    let report: Vec<String> = circles.iter().map(|circle| describe(circle, &arrows)).collect();
    assert!(report.is_empty(), "import cycles between modules:\n{}", report.join("\n"));
}

#[test]
fn a_circle_is_found_and_named() {
    let module = |name: &str| vec![name.to_owned()];
    let mut arrows = Evidence::new();
    arrows
        .entry((module("config"), module("service")))
        .or_default()
        .insert("config.rs: crate::service::X".into());
    arrows
        .entry((module("service"), module("config")))
        .or_default()
        .insert("service.rs: crate::config::Y".into());
    arrows
        .entry((module("service"), module("model")))
        .or_default()
        .insert("service.rs: crate::model::Z".into());
    let found = circles(&arrows);
    assert_eq!(found, vec![vec![module("config"), module("service")]]);
    assert!(describe(&found[0], &arrows).contains("config.rs: crate::service::X"));
}

#[test]
fn references_resolve_to_the_sibling_modules_that_contain_them() {
    let known: BTreeSet<Module> = [
        vec![],
        m("store"),
        m("store::dynamodb"),
        m("store::dynamodb::item"),
        m("replay"),
        m("query"),
        m("query::filter"),
    ]
    .into_iter()
    .collect();
    let text = "use crate::replay::ReplayNonce;\nuse super::{item::Item, super::Store};\nuse crate::{query::{filter::Filter}, Keygate};\n#[cfg(test)]\nmod tests { use crate::query::Query; }";
    let aliases = BTreeMap::from([("Keygate".to_owned(), m("service"))]);
    let found = references(text, &m("store::dynamodb::writes"), &known, &aliases);
    let targets: BTreeSet<Module> = found.into_iter().map(|(target, _)| target).collect();
    assert_eq!(
        targets,
        [m("replay"), m("store::dynamodb::item"), m("store"), m("query::filter"), m("service")]
            .into_iter()
            .collect()
    );
}

fn m(path: &str) -> Module {
    path.split("::").map(str::to_owned).collect()
}

/// Every arrow between sibling modules of the crate under `source`, with what draws it.
fn arrows(source: &Path) -> Evidence {
    let files = rust_files(source);
    let modules: BTreeMap<PathBuf, Module> =
        files.iter().map(|f| (f.clone(), module_of(source, f))).collect();
    let known: BTreeSet<Module> = modules.values().cloned().collect();
    let lib = std::fs::read_to_string(source.join("lib.rs")).expect("lib.rs");
    let aliases = root_reexports(&lib);
    let mut arrows = Evidence::new();
    for (file, module) in &modules {
        let text = std::fs::read_to_string(file).expect("readable source");
        for (target, written) in references(&text, module, &known, &aliases) {
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

/// `pub use module::Name;` in lib.rs: `crate::Name` means that module.
fn root_reexports(lib: &str) -> BTreeMap<String, Module> {
    lib.lines()
        .filter_map(|line| line.trim().strip_prefix("pub use ")?.strip_suffix(';'))
        .filter_map(|path| {
            let (module, name) = path.rsplit_once("::")?;
            Some((name.to_owned(), m(module.trim_start_matches("self::"))))
        })
        .collect()
}

/// The modules a file's production code names through `crate::` or `super::`, each with the
/// path as written.
fn references(
    text: &str,
    module: &Module,
    known: &BTreeSet<Module>,
    aliases: &BTreeMap<String, Module>,
) -> Vec<(Module, String)> {
    let production = text.split("#[cfg(test)]").next().unwrap_or_default();
    let code: String = production
        .lines()
        .map(|line| line.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = next_reference(&code, from) {
        let rest = &code[at..];
        let (base, path) = match rest.strip_prefix("crate::") {
            Some(path) => (Module::new(), path),
            None => (module[..module.len().saturating_sub(1)].to_vec(), &rest["super::".len()..]),
        };
        for path in expand(base, path) {
            let target = resolve(&path, known, aliases);
            found.push((target, path.join("::")));
        }
        // A group's own `super::` items were read with it.
        from = at + reference_len(rest);
    }
    found
}

/// Where the next `crate::` or `super::` path starts, at or after `from`.
fn next_reference(code: &str, from: usize) -> Option<usize> {
    let mut at = from;
    loop {
        let found = ["crate::", "super::"].iter().filter_map(|word| code[at..].find(word)).min()? + at;
        let glued =
            code[..found].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':' || c == '$');
        if !glued {
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

/// The longest known module a path starts with; a root re-export stands for its module.
fn resolve(path: &Module, known: &BTreeSet<Module>, aliases: &BTreeMap<String, Module>) -> Module {
    if let [name, ..] = path.as_slice()
        && let Some(module) = aliases.get(name)
    {
        return module.clone();
    }
    (0..=path.len())
        .rev()
        .map(|len| path[..len].to_vec())
        .find(|prefix| known.contains(prefix))
        .unwrap_or_default()
}

/// The strongly connected groups of more than one module (Tarjan), each sorted.
fn circles(arrows: &Evidence) -> Vec<Vec<Module>> {
    let mut next: BTreeMap<&Module, Vec<&Module>> = BTreeMap::new();
    for (from, to) in arrows.keys() {
        next.entry(from).or_default().push(to);
        next.entry(to).or_default();
    }
    struct State<'a> {
        index: BTreeMap<&'a Module, usize>,
        low: BTreeMap<&'a Module, usize>,
        stack: Vec<&'a Module>,
        on_stack: BTreeSet<&'a Module>,
        found: Vec<Vec<Module>>,
    }
    fn visit<'a>(node: &'a Module, next: &BTreeMap<&'a Module, Vec<&'a Module>>, s: &mut State<'a>) {
        let order = s.index.len();
        s.index.insert(node, order);
        s.low.insert(node, order);
        s.stack.push(node);
        s.on_stack.insert(node);
        for &target in &next[node] {
            if !s.index.contains_key(target) {
                visit(target, next, s);
                let low = s.low[node].min(s.low[target]);
                s.low.insert(node, low);
            } else if s.on_stack.contains(target) {
                let low = s.low[node].min(s.index[target]);
                s.low.insert(node, low);
            }
        }
        if s.low[node] == s.index[node] {
            let mut group = Vec::new();
            while let Some(member) = s.stack.pop() {
                s.on_stack.remove(member);
                group.push(member.clone());
                if member == node {
                    break;
                }
            }
            if group.len() > 1 {
                group.sort();
                s.found.push(group);
            }
        }
    }
    let mut state = State {
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for node in next.keys() {
        if !state.index.contains_key(node) {
            visit(node, &next, &mut state);
        }
    }
    state.found.sort();
    state.found
}

/// A circle and the references that draw its arrows.
fn describe(circle: &[Module], arrows: &Evidence) -> String {
    let name = |module: &Module| module.join("::");
    let mut lines = vec![format!("circle: {}", circle.iter().map(name).collect::<Vec<_>>().join(", "))];
    for ((from, to), evidence) in arrows {
        if circle.contains(from) && circle.contains(to) {
            let shown: Vec<&str> = evidence.iter().map(String::as_str).collect();
            lines.push(format!("  {} -> {}: {}", name(from), name(to), shown.join("; ")));
        }
    }
    lines.join("\n")
}

#[test]
fn the_arrows_read_from_the_crate_include_its_known_layers() {
    let arrows = arrows(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    for (from, to) in [
        ("http", "service"),
        ("service", "store"),
        ("service", "query"),
        ("store", "replay"),
        ("signature", "limits"),
        ("key_value", "model"),
        ("api_key_info", "query"),
        ("store::dynamodb::writes", "store::dynamodb::item"),
    ] {
        assert!(arrows.contains_key(&(m(from), m(to))), "{from} -> {to} not seen in {:#?}", arrows.keys());
    }
}
