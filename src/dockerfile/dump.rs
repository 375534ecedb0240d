//! BuildKit's AST dump (`Node.Dump`): one S-expression per instruction, used
//! by the conformance tests and for debugging.

use super::parser::{Ast, Node};
use super::quote::{go_quote, go_quote_list};

/// Dumps the AST exactly as BuildKit's `Node.Dump` does (no trailing newline).
pub fn dump(ast: &Ast) -> String {
    let mut out = String::new();
    for node in &ast.nodes {
        out.push('(');
        out.push_str(&dump_node(node));
        out.push_str(")\n");
    }
    out.trim().to_string()
}

fn dump_node(node: &Node) -> String {
    let mut s = node.keyword.to_lowercase();
    if !node.flags.is_empty() {
        s.push(' ');
        s.push_str(&go_quote_list(&node.flags));
    }
    if let Some(inner) = &node.onbuild_inner {
        s.push_str(" (");
        s.push_str(&dump_node(inner));
        s.push(')');
    } else if !node.is_known() {
        // BuildKit keeps one empty argument node for unknown instructions.
        s.push_str(" \"\"");
    }
    for arg in &node.args {
        s.push(' ');
        s.push_str(&go_quote(arg));
    }
    s.trim().to_string()
}
