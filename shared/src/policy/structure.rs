//! Reading a policy document's structure and reporting every structural problem, not just the first.
//!
//! serde stops at the first unknown field or wrong type. To report the others, the document is read again as a
//! YAML tree with the offending node taken out (the unknown key, the wrongly typed value, or the entry that
//! lacks a required field), until it reads cleanly; the paths of later problems are translated back to the
//! document as written. A YAML *syntax* error stops the parser itself, so only the first one can be reported.

use super::{ValidationError, raw};
use serde_yaml_ng::Value;

/// Problems reported at most per document (a badly mangled file would otherwise print hundreds).
const MAX_PROBLEMS: usize = 50;

/// One step of a path into the document.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// A path as a list of steps, displayed as the validator writes paths (`capacity[2].bounds.max`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Path(Vec<Step>);

impl std::fmt::Display for Path {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, step) in self.0.iter().enumerate() {
            match step {
                Step::Key(key) if i == 0 => write!(f, "{key}")?,
                Step::Key(key) => write!(f, ".{key}")?,
                Step::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// A structural problem: where (as steps, `None` when serde could not say) and why.
struct Problem {
    steps: Option<Path>,
    error: ValidationError,
}

/// Reads `text` as a policy document, or every structural problem it has (the first with its line).
pub(super) fn read(text: &str) -> Result<raw::Document, Vec<ValidationError>> {
    if let Some(too_deep) = too_deep(text) {
        return Err(vec![too_deep]);
    }
    if let Some(duplicate) = duplicate_key(text) {
        return Err(vec![duplicate]);
    }
    let first = match deserialize(serde_yaml_ng::Deserializer::from_str(text)) {
        Ok(document) => return Ok(document),
        Err(problem) => problem,
    };
    let mut errors = vec![first.error];
    // a syntax error: the parser cannot go past it
    let (Ok(mut tree), Some(mut at)) = (serde_yaml_ng::from_str::<Value>(text), first.steps) else {
        return Err(errors);
    };
    let mut removed = Removed::default();
    let mut reason = errors[0].reason.clone();
    let mut field_taken = field_of(&at, &reason);
    if is_missing(&reason) {
        at = entry_of(&at);
    }
    while errors.len() < MAX_PROBLEMS && set_aside(&mut tree, &at, &reason, &mut removed, &mut field_taken) {
        let problem = match deserialize(tree.clone()) {
            Ok(_) => break,
            Err(problem) => problem,
        };
        let Some(steps) = problem.steps else {
            errors.push(problem.error);
            break;
        };
        reason = problem.error.reason.clone();
        // a required field whose value was just taken out is now missing: not a problem of its own
        let cascade = field_taken
            .as_ref()
            .is_some_and(|(parent, field)| *parent == steps && reason == format!("missing field `{field}`"));
        if !cascade {
            // an unknown key is a problem of the mapping it is in (as the parser reports the first one)
            let place = if reason.starts_with("unknown field") { parent_of(&steps) } else { steps.clone() };
            errors.push(ValidationError { path: removed.original(&place).to_string(), ..problem.error });
        }
        field_taken = if cascade { None } else { field_of(&steps, &reason) };
        at = if cascade || is_missing(&reason) { entry_of(&steps) } else { steps };
    }
    Err(errors)
}

/// Flow collections (`[…]`, `{…}`) nested deeper than any policy needs: refused before the YAML parser, whose
/// time grows faster than the depth (100,000 levels took minutes).
const MAX_DEPTH: usize = 64;

/// A problem when `text` nests flow collections more than [`MAX_DEPTH`] deep (outside quoted strings and
/// comments).
fn too_deep(text: &str) -> Option<ValidationError> {
    let (mut depth, mut deepest, mut quote, mut comment) = (0usize, 0usize, None, false);
    for (i, c) in text.char_indices() {
        match (quote, c) {
            (_, '\n') => comment = false,
            _ if comment => {}
            (Some(open), c) if c == open => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '#') if i == 0 || text[..i].ends_with([' ', '\t', '\n']) => comment = true,
            (None, '[' | '{') => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            (None, ']' | '}') => depth = depth.saturating_sub(1),
            _ => {}
        }
        if deepest > MAX_DEPTH {
            return Some(ValidationError {
                path: String::new(),
                reason: format!("lists and mappings nested more than {MAX_DEPTH} deep: not a policy document"),
            });
        }
    }
    None
}

/// The first key written twice in one mapping, if any. YAML forbids it, but serde keeps the last value for a map
/// (schedules, calendars, alarms, a selector's tags): a copy-paste slip would silently replace the first. Read as
/// a YAML tree, which refuses it; other problems are left to the document's own reading.
fn duplicate_key(text: &str) -> Option<ValidationError> {
    let error = serde_path_to_error::deserialize::<_, UniqueKeys>(serde_yaml_ng::Deserializer::from_str(text)).err()?;
    let message = error.inner().to_string();
    // serde_yaml_ng may put its own path and the line before it
    let key = &message[message.find("duplicate entry ")? + "duplicate entry ".len()..];
    let key = key.strip_prefix("with ").unwrap_or(key);
    let path = error.path().to_string();
    let path = if path == "." { String::new() } else { path };
    Some(ValidationError {
        path,
        reason: format!(
            "{key} appears twice in this mapping: a key may appear once (the second would replace the first)"
        ),
    })
}

/// A YAML node read only to check that no mapping in it has a key twice: nothing of it is kept but the keys of
/// the mapping being read (a policy with ten thousand targets must not be held twice in memory to be checked).
struct UniqueKeys;

impl<'de> serde::Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueKeys)
    }
}

impl<'de> serde::de::Visitor<'de> for UniqueKeys {
    type Value = UniqueKeys;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self, E> {
        Ok(UniqueKeys)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self, E> {
        Ok(UniqueKeys)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self, E> {
        Ok(UniqueKeys)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self, E> {
        Ok(UniqueKeys)
    }

    fn visit_str<E>(self, _: &str) -> Result<Self, E> {
        Ok(UniqueKeys)
    }

    fn visit_unit<E>(self) -> Result<Self, E> {
        Ok(UniqueKeys)
    }

    fn visit_none<E>(self) -> Result<Self, E> {
        Ok(UniqueKeys)
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Self, D::Error> {
        serde::Deserialize::deserialize(deserializer)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self, A::Error> {
        while seq.next_element::<UniqueKeys>()?.is_some() {}
        Ok(UniqueKeys)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self, A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(Key(key)) = map.next_key::<Key>()? {
            if let Some(key) = key
                && !seen.insert(key.clone())
            {
                return Err(serde::de::Error::custom(format!("duplicate entry with key {key:?}")));
            }
            map.next_value::<UniqueKeys>()?;
        }
        Ok(UniqueKeys)
    }

    fn visit_enum<A: serde::de::EnumAccess<'de>>(self, data: A) -> Result<Self, A::Error> {
        // a tagged value (`!tag value`): its value
        use serde::de::VariantAccess;
        let (UniqueKeys, value) = data.variant::<UniqueKeys>()?;
        value.newtype_variant::<UniqueKeys>()
    }
}

/// A mapping's key as text (a scalar), or `None` for a key that is itself a list or a mapping (checked inside,
/// not compared).
struct Key(Option<String>);

impl<'de> serde::Deserialize<'de> for Key {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Text;
        impl<'de> serde::de::Visitor<'de> for Text {
            type Value = Key;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E>(self, text: &str) -> Result<Key, E> {
                Ok(Key(Some(text.to_owned())))
            }
            fn visit_bool<E>(self, value: bool) -> Result<Key, E> {
                Ok(Key(Some(value.to_string())))
            }
            fn visit_i64<E>(self, value: i64) -> Result<Key, E> {
                Ok(Key(Some(value.to_string())))
            }
            fn visit_u64<E>(self, value: u64) -> Result<Key, E> {
                Ok(Key(Some(value.to_string())))
            }
            fn visit_f64<E>(self, value: f64) -> Result<Key, E> {
                Ok(Key(Some(value.to_string())))
            }
            fn visit_unit<E>(self) -> Result<Key, E> {
                Ok(Key(Some("null".into())))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Key, A::Error> {
                UniqueKeys.visit_seq(seq).map(|_| Key(None))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Key, A::Error> {
                UniqueKeys.visit_map(map).map(|_| Key(None))
            }
        }
        deserializer.deserialize_any(Text)
    }
}

fn is_missing(reason: &str) -> bool {
    reason.starts_with("missing field")
}

fn parent_of(steps: &Path) -> Path {
    Path(steps.0.split_last().map_or_else(Vec::new, |(_, parent)| parent.to_vec()))
}

/// The (parent, field) a problem at `steps` will take out, when it is a field's value (not a missing field).
fn field_of(steps: &Path, reason: &str) -> Option<(Path, String)> {
    match steps.0.split_last() {
        Some((Step::Key(field), _)) if !is_missing(reason) => Some((parent_of(steps), field.clone())),
        _ => None,
    }
}

/// The path of the node to take out for a problem found at `steps` that concerns the node as a whole: the
/// list entry it is in, if any, else the node itself.
fn entry_of(steps: &Path) -> Path {
    match steps.0.iter().rposition(|step| matches!(step, Step::Index(_))) {
        Some(i) => Path(steps.0[..=i].to_vec()),
        None => steps.clone(),
    }
}

/// Deserializes the document, turning serde's error into a [`Problem`] with the path an operator reads.
fn deserialize<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<raw::Document, Problem> {
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let steps = steps(error.path());
        let path = error.path().to_string();
        let path = if path == "." { String::new() } else { path };
        let message = error.into_inner().to_string();
        // serde_yaml_ng prefixes some messages with its own path (without the unknown key); prefer it.
        let (path, reason) = match message.split_once(": ") {
            Some((own_path, reason)) if !own_path.contains(' ') && path.starts_with(own_path) => {
                (own_path.to_owned(), reason.to_owned())
            }
            _ => (path, message),
        };
        // serde names the Rust type; an operator needs to know what the document should be.
        let reason = raw::without_type_names(&reason);
        Problem { steps, error: ValidationError { path, reason } }
    })
}

/// serde_path_to_error's path as steps; `None` when a step is unknown (an untagged value, for instance).
fn steps(path: &serde_path_to_error::Path) -> Option<Path> {
    path.iter()
        .map(|segment| match segment {
            serde_path_to_error::Segment::Seq { index } => Some(Step::Index(*index)),
            serde_path_to_error::Segment::Map { key } | serde_path_to_error::Segment::Enum { variant: key } => {
                Some(Step::Key(key.clone()))
            }
            serde_path_to_error::Segment::Unknown => None,
        })
        .collect::<Option<Vec<_>>>()
        .map(Path)
}

/// List entries taken out so far, so that later paths can name the entries as the document numbers them.
#[derive(Default)]
struct Removed(Vec<(Path, usize)>);

impl Removed {
    /// `steps` (in the pruned tree) as a path into the document as written.
    fn original(&self, steps: &Path) -> Path {
        let mut original = Path::default();
        for step in &steps.0 {
            let step = match step {
                Step::Index(index) => {
                    let mut taken: Vec<usize> =
                        self.0.iter().filter(|(list, _)| *list == original).map(|(_, i)| *i).collect();
                    taken.sort_unstable();
                    Step::Index(taken.iter().fold(*index, |at, &gone| if gone <= at { at + 1 } else { at }))
                }
                key => key.clone(),
            };
            original.0.push(step);
        }
        original
    }
}

/// Puts the problem at `at` aside so that the document reads on: a wrongly typed value is replaced by one of the
/// type expected (so that a required field is not then reported missing, and its siblings are still read),
/// anything else is taken out. False when there is nothing there.
fn set_aside(
    tree: &mut Value,
    at: &Path,
    reason: &str,
    removed: &mut Removed,
    field_taken: &mut Option<(Path, String)>,
) -> bool {
    if let Some(value) = placeholder(reason)
        && let Some(node) = node_at(tree, at)
    {
        *node = value;
        *field_taken = None;
        return true;
    }
    take_out(tree, at, removed)
}

/// A value of the type serde's message says it expected (`invalid type: string "ten", expected u32`): a number,
/// a string, a boolean or a list; `None` for anything else (a mapping would lack its own required fields).
fn placeholder(reason: &str) -> Option<Value> {
    let expected = reason.strip_prefix("invalid type: ")?.split(", expected ").nth(1)?;
    let number = ["u8", "u16", "u32", "u64", "usize", "i8", "i16", "i32", "i64", "f32", "f64"]
        .iter()
        .any(|t| expected.strip_prefix(t).is_some_and(|rest| !rest.starts_with(|c: char| c.is_alphanumeric())));
    // serde's type name, or the words `raw::without_type_names` puts it in
    if number || expected.starts_with("a whole number") || expected.starts_with("a number") {
        Some(Value::Number(0.into()))
    } else if expected.starts_with("a string") {
        Some(Value::String(String::new()))
    } else if expected.starts_with("a boolean") {
        Some(Value::Bool(false))
    } else if expected.starts_with("a sequence") {
        Some(Value::Sequence(Vec::new()))
    } else {
        None
    }
}

/// The node at `at` in `tree`, if there is one.
fn node_at<'t>(tree: &'t mut Value, at: &Path) -> Option<&'t mut Value> {
    let mut node = tree;
    for step in &at.0 {
        node = match (step, node) {
            (Step::Key(key), Value::Mapping(map)) => map.get_mut(key.as_str())?,
            (Step::Index(index), Value::Sequence(list)) => list.get_mut(*index)?,
            _ => return None,
        };
    }
    Some(node)
}

/// Takes the node at `at` out of `tree`; false when there is no such node (or it is the root).
fn take_out(tree: &mut Value, at: &Path, removed: &mut Removed) -> bool {
    let Some((last, parent)) = at.0.split_last() else { return false };
    let mut node = &mut *tree;
    for step in parent {
        node = match (step, node) {
            (Step::Key(key), Value::Mapping(map)) => match map.get_mut(key.as_str()) {
                Some(child) => child,
                None => return false,
            },
            (Step::Index(index), Value::Sequence(list)) => match list.get_mut(*index) {
                Some(child) => child,
                None => return false,
            },
            _ => return false,
        };
    }
    match (last, node) {
        (Step::Key(key), Value::Mapping(map)) => map.remove(key.as_str()).is_some(),
        (Step::Index(index), Value::Sequence(list)) if *index < list.len() => {
            let list_path = removed.original(&Path(parent.to_vec()));
            let original = removed.original(&Path(at.0.clone()));
            if let Some(Step::Index(i)) = original.0.last() {
                removed.0.push((list_path, *i));
            }
            list.remove(*index);
            true
        }
        _ => false,
    }
}
