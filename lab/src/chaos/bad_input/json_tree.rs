//! JSON trees as the mutations see them: every node with its pointer (a path of keys and indexes), and the
//! edits by pointer (remove, set), nesting and depth — all iterative, since a value may be deeply nested.

use super::clip;
use proptest::sample::Index;
use serde_json::{Map, Value};

/// Node enumeration stops this deep and after this many nodes (a deep or wide value is mutated near its top).
pub(super) const MAX_WALK: usize = 48;
pub(super) const MAX_NODES: usize = 5_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Step {
    Key(String),
    At(usize),
}

/// One node of a tree, with what the mutations choose by.
#[derive(Debug, Clone)]
pub(super) struct Node {
    pub(super) pointer: Vec<Step>,
    pub(super) string: Option<String>,
    pub(super) object: bool,
    pub(super) number: bool,
}

impl Node {
    pub(super) fn key(&self) -> &str {
        match self.pointer.last() {
            Some(Step::Key(key)) => key,
            _ => "",
        }
    }

    pub(super) fn arn(&self) -> bool {
        self.string.as_deref().is_some_and(|s| s.starts_with("arn:"))
    }

    pub(super) fn id_like(&self) -> bool {
        let key = self.key();
        self.string.is_some()
            && (key == "id" || key == "name" || ["Id", "ID", "Name"].iter().any(|suffix| key.ends_with(suffix)))
    }
}

/// Every node of `value` below its root (and the root itself when it is an object, as a place to add a field),
/// down to [`MAX_WALK`] levels and at most [`MAX_NODES`] nodes. Iterative: `value` may be deep.
pub(super) fn nodes(value: &Value) -> Vec<Node> {
    let mut out = Vec::new();
    if value.is_object() {
        out.push(Node { pointer: Vec::new(), string: None, object: true, number: false });
    }
    let mut stack: Vec<(Vec<Step>, &Value)> = vec![(Vec::new(), value)];
    while let Some((pointer, node)) = stack.pop() {
        if pointer.len() >= MAX_WALK || out.len() >= MAX_NODES {
            continue;
        }
        let children: Vec<(Step, &Value)> = match node {
            Value::Object(map) => map.iter().map(|(k, v)| (Step::Key(k.clone()), v)).collect(),
            Value::Array(items) => items.iter().enumerate().map(|(i, v)| (Step::At(i), v)).collect(),
            _ => Vec::new(),
        };
        for (step, child) in children {
            let mut child_pointer = pointer.clone();
            child_pointer.push(step);
            out.push(Node {
                pointer: child_pointer.clone(),
                string: child.as_str().map(|s| clip(s, 64)),
                object: child.is_object(),
                number: child.is_number(),
            });
            stack.push((child_pointer, child));
        }
    }
    out
}

pub(super) fn node_mut<'a>(value: &'a mut Value, pointer: &[Step]) -> Option<&'a mut Value> {
    pointer.iter().try_fold(value, |node, step| match step {
        Step::Key(key) => node.get_mut(key.as_str()),
        Step::At(index) => node.get_mut(*index),
    })
}

pub(super) fn remove(value: &mut Value, pointer: &[Step]) {
    let Some((last, parent)) = pointer.split_last() else { return };
    match (node_mut(value, parent), last) {
        (Some(Value::Object(map)), Step::Key(key)) => {
            map.remove(key);
        }
        (Some(Value::Array(items)), Step::At(index)) if *index < items.len() => {
            items.remove(*index);
        }
        _ => {}
    }
}

pub(super) fn set(value: &mut Value, pointer: &[Step], new: Value) {
    if let Some(node) = node_mut(value, pointer) {
        *node = new;
    }
}

/// What a value is wrapped in to nest it deeper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Nesting {
    /// `[value]`
    Arrays,
    /// `{"a": value}`
    Objects,
}

/// `core` wrapped in `depth` arrays or single-field objects. Built iteratively.
pub(super) fn nested(depth: usize, nesting: Nesting, core: Value) -> Value {
    (0..depth).fold(core, |inner, _| match nesting {
        Nesting::Arrays => Value::Array(vec![inner]),
        Nesting::Objects => Value::Object(Map::from_iter([("a".to_owned(), inner)])),
    })
}

/// How deeply arrays and objects nest in `value` (a scalar is 0). Iterative.
pub(super) fn depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 0usize)];
    while let Some((node, above)) = stack.pop() {
        match node {
            Value::Array(items) => {
                deepest = deepest.max(above + 1);
                stack.extend(items.iter().map(|item| (item, above + 1)));
            }
            Value::Object(map) => {
                deepest = deepest.max(above + 1);
                stack.extend(map.values().map(|item| (item, above + 1)));
            }
            _ => {}
        }
    }
    deepest
}

pub(super) fn pick<'a>(at: &Index, among: &[&'a Node]) -> Option<&'a Node> {
    (!among.is_empty()).then(|| among[at.index(among.len())])
}
