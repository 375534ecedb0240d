//! Typed instructions from the AST, like BuildKit's `instructions.Parse`:
//! stages split at FROM, meta ARGs before the first FROM, per-instruction
//! argument and flag validation. Values are kept unexpanded (quotes
//! included for ENV/LABEL/ARG values); the builder expands them later.

use std::fmt;
use std::time::Duration;

use super::flags::{self, Kind};
use super::heredoc::{parse_heredoc, Heredoc};
use super::history;
use super::parser::{Ast, Node};

/// A command in shell form (run through the stage's SHELL) or exec form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandLine {
    Shell(String),
    Exec(Vec<String>),
}

impl CommandLine {
    /// BuildKit's handleJSONArgs: exec args as-is, shell form joined.
    fn from_node(node: &Node) -> Self {
        if node.json {
            CommandLine::Exec(node.args.clone())
        } else {
            CommandLine::Shell(node.args.join(" "))
        }
    }

    /// The argv BuildKit runs / stores, with `shell` prepended for shell form.
    pub fn argv(&self, shell: &[String]) -> Vec<String> {
        match self {
            CommandLine::Exec(a) => a.clone(),
            CommandLine::Shell(s) => {
                let mut v = shell.to_vec();
                v.push(s.clone());
                v
            }
        }
    }
}

/// An inline COPY/ADD source from a heredoc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineSource {
    /// The heredoc name, used as the file name.
    pub path: String,
    /// Body with leading tabs already removed for `<<-`.
    pub data: String,
    /// Whether variables in `data` are to be expanded.
    pub expand: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct From {
    pub image: String,
    /// Lower-cased stage name from `AS name`.
    pub name: Option<String>,
    pub platform: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub cmd: CommandLine,
    /// Raw `--mount` values, in order.
    pub mounts: Vec<String>,
    pub network: Option<String>,
    pub security: Option<String>,
    /// Raw `--device` values.
    pub devices: Vec<String>,
    /// Heredoc files (content raw; apply `chomped_content` when `chomp`).
    pub heredocs: Vec<Heredoc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    pub sources: Vec<String>,
    pub dest: String,
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub parents: bool,
    pub exclude: Vec<String>,
    pub heredocs: Vec<InlineSource>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Add {
    pub sources: Vec<String>,
    pub dest: String,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub exclude: Vec<String>,
    pub heredocs: Vec<InlineSource>,
    pub checksum: Option<String>,
    /// `--keep-git-dir` when given.
    pub keep_git_dir: Option<bool>,
    /// `--unpack` when given.
    pub unpack: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`: disable any inherited check.
    None,
    /// Zero durations mean "inherit/default", as in the image config.
    Cmd {
        /// Docker form: `["CMD-SHELL", "cmd"]` or `["CMD", arg...]`.
        test: Vec<String>,
        interval: Duration,
        timeout: Duration,
        start_period: Duration,
        start_interval: Duration,
        retries: u32,
    },
}

/// A typed instruction (everything except FROM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Run(Run),
    Cmd(CommandLine),
    Entrypoint(CommandLine),
    Shell(Vec<String>),
    Env(Vec<(String, String)>),
    Label(Vec<(String, String)>),
    Arg(Vec<(String, Option<String>)>),
    Copy(Copy),
    Add(Add),
    /// Ports sorted as strings, as BuildKit does.
    Expose(Vec<String>),
    Volume(Vec<String>),
    User(String),
    Workdir(String),
    /// The trigger expression stored in the image config.
    Onbuild(String),
    Stopsignal(String),
    Healthcheck(Healthcheck),
    Maintainer(String),
}

/// A command with its source location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    pub command: Command,
    pub start_line: usize,
    pub end_line: usize,
    /// The logical source line (continuations joined).
    pub original: String,
}

impl Instruction {
    /// BuildKit's history `created_by` for this instruction computed on the
    /// unexpanded values, with `/bin/sh -c` as shell and no build args in
    /// scope; None for instructions that add no history entry (ONBUILD).
    /// The builder should call [`history`] with expanded values instead.
    pub fn history_text(&self) -> Option<String> {
        let sh = ["/bin/sh".to_string(), "-c".to_string()];
        Some(match &self.command {
            Command::Run(r) => history::run(&r.cmd.argv(&sh), &[]),
            Command::Cmd(c) => history::quoted_list("CMD", &c.argv(&sh)),
            Command::Entrypoint(c) => history::quoted_list("ENTRYPOINT", &c.argv(&sh)),
            Command::Shell(s) => history::plain_list("SHELL", s),
            Command::Env(p) => history::key_values("ENV", p),
            Command::Label(p) => history::key_values("LABEL", p),
            Command::Arg(a) => {
                let parts: Vec<String> = a
                    .iter()
                    .map(|(k, v)| match v {
                        Some(v) => format!("{k}={v}"),
                        None => k.clone(),
                    })
                    .collect();
                format!("ARG {}", parts.join(" "))
            }
            Command::Copy(c) => history::copy(
                "COPY",
                c.parents,
                c.chown.as_deref().unwrap_or(""),
                c.chmod.as_deref().unwrap_or(""),
                &c.sources,
                &c.heredocs
                    .iter()
                    .map(|h| h.path.clone())
                    .collect::<Vec<_>>(),
                &c.dest,
            ),
            Command::Add(c) => history::copy(
                "ADD",
                false,
                c.chown.as_deref().unwrap_or(""),
                c.chmod.as_deref().unwrap_or(""),
                &c.sources,
                &c.heredocs
                    .iter()
                    .map(|h| h.path.clone())
                    .collect::<Vec<_>>(),
                &c.dest,
            ),
            Command::Expose(p) => history::plain_list("EXPOSE", p),
            Command::Volume(v) => history::plain_list("VOLUME", v),
            Command::User(u) => format!("USER {u}"),
            Command::Workdir(w) => format!("WORKDIR {w}"),
            Command::Onbuild(_) => return None,
            Command::Stopsignal(s) => format!("STOPSIGNAL {s}"),
            Command::Maintainer(m) => format!("MAINTAINER {m}"),
            Command::Healthcheck(Healthcheck::None) => {
                history::healthcheck(&["NONE".to_string()], [Duration::ZERO; 4], 0)
            }
            Command::Healthcheck(Healthcheck::Cmd {
                test,
                interval,
                timeout,
                start_period,
                start_interval,
                retries,
            }) => history::healthcheck(
                test,
                [*interval, *timeout, *start_period, *start_interval],
                *retries,
            ),
        })
    }
}

/// A build stage: FROM and the instructions up to the next FROM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub from: From,
    pub start_line: usize,
    pub end_line: usize,
    pub original: String,
    pub commands: Vec<Instruction>,
}

/// The whole Dockerfile in typed form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// ARGs before the first FROM; each element's command is `Command::Arg`.
    pub meta_args: Vec<Instruction>,
    pub stages: Vec<Stage>,
}

/// An invalid instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstructionError {
    /// Upper-case instruction name as it appears (may be unknown).
    pub instruction: String,
    pub start_line: usize,
    pub end_line: usize,
    pub message: String,
}

impl fmt::Display for InstructionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Dockerfile:{}: {}: {}",
            self.start_line, self.instruction, self.message
        )
    }
}

impl std::error::Error for InstructionError {}

/// Splits the AST into meta args and typed stages.
pub fn parse_instructions(ast: &Ast) -> Result<Dockerfile, InstructionError> {
    let mut out = Dockerfile {
        meta_args: Vec::new(),
        stages: Vec::new(),
    };
    for node in &ast.nodes {
        let err = |message: String| InstructionError {
            instruction: node.keyword.to_uppercase(),
            start_line: node.start_line,
            end_line: node.end_line,
            message,
        };
        if node.keyword == "from" {
            let from = parse_from(node).map_err(err)?;
            out.stages.push(Stage {
                from,
                start_line: node.start_line,
                end_line: node.end_line,
                original: node.original.trim().to_string(),
                commands: Vec::new(),
            });
            continue;
        }
        let command = parse_command(node).map_err(err)?;
        let inst = Instruction {
            command,
            start_line: node.start_line,
            end_line: node.end_line,
            original: node.original.clone(),
        };
        match out.stages.last_mut() {
            Some(stage) => stage.commands.push(inst),
            None if matches!(inst.command, Command::Arg(_)) => out.meta_args.push(inst),
            None => return Err(err("no build stage in current context".into())),
        }
    }
    Ok(out)
}

type Res<T> = Result<T, String>;

fn at_least_one(node: &Node, name: &str) -> Res<()> {
    if node.args.is_empty() {
        return Err(format!("{name} requires at least one argument"));
    }
    Ok(())
}

fn exactly_one(node: &Node, name: &str) -> Res<String> {
    match node.args.as_slice() {
        [one] => Ok(one.clone()),
        _ => Err(format!("{name} requires exactly one argument")),
    }
}

fn no_flags(node: &Node) -> Res<()> {
    flags::parse(&node.flags, &[]).map(|_| ())
}

fn parse_from(node: &Node) -> Res<From> {
    let args = &node.args;
    let name = match args.as_slice() {
        [_, as_kw, name] if as_kw.eq_ignore_ascii_case("as") => {
            let lower = name.to_lowercase();
            let mut chars = lower.chars();
            let valid = chars.next().is_some_and(|c| c.is_ascii_lowercase())
                && chars.all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.')
                });
            if !valid {
                return Err(format!(
                    "invalid name for build stage: {}, name can't start with a number or contain symbols",
                    super::quote::go_quote(name)
                ));
            }
            Some(lower)
        }
        [_] => None,
        _ => return Err("FROM requires either one or three arguments".into()),
    };
    let f = flags::parse(&node.flags, &[("platform", Kind::String)])?;
    Ok(From {
        image: args[0].clone(),
        name,
        platform: f.string("platform"),
    })
}

fn kv_pairs(node: &Node, name: &str) -> Res<Vec<(String, String)>> {
    no_flags(node)?;
    at_least_one(node, name)?;
    if !node.args.len().is_multiple_of(3) {
        return Err(format!("Bad input to {name}, too many arguments"));
    }
    node.args
        .chunks(3)
        .map(|c| {
            if c[0].is_empty() {
                return Err(format!("{name} names can not be blank"));
            }
            Ok((c[0].clone(), c[1].clone()))
        })
        .collect()
}

/// Splits COPY/ADD args into paths, the destination and heredoc sources.
fn sources_and_dest(node: &Node, name: &str) -> Res<(Vec<String>, String, Vec<InlineSource>)> {
    let Some((dest, srcs)) = node.args.split_last().filter(|(_, s)| !s.is_empty()) else {
        return Err(format!(
            "{name} requires at least two arguments, but only one was provided. Destination could not be determined"
        ));
    };
    if parse_heredoc(dest).ok().flatten().is_some() {
        return Err(format!("{name} cannot accept a heredoc as a destination"));
    }
    let mut paths = Vec::new();
    let mut inline = Vec::new();
    for src in srcs {
        match parse_heredoc(src).ok().flatten() {
            Some(word) => {
                let body = node
                    .heredocs
                    .iter()
                    .rev()
                    .find(|h| h.name == word.name)
                    .map(|h| h.content.clone())
                    .unwrap_or_default();
                let doc = Heredoc {
                    content: body,
                    ..word
                };
                inline.push(InlineSource {
                    data: doc.chomped_content(),
                    path: doc.name,
                    expand: doc.expand,
                });
            }
            None => paths.push(src.clone()),
        }
    }
    Ok((paths, dest.clone(), inline))
}

fn parse_command(node: &Node) -> Res<Command> {
    Ok(match node.keyword.as_str() {
        "env" => Command::Env(kv_pairs(node, "ENV")?),
        "label" => Command::Label(kv_pairs(node, "LABEL")?),
        "maintainer" => {
            let m = exactly_one(node, "MAINTAINER")?;
            no_flags(node)?;
            Command::Maintainer(m)
        }
        "workdir" => {
            let w = exactly_one(node, "WORKDIR")?;
            no_flags(node)?;
            Command::Workdir(w)
        }
        "user" => {
            let u = exactly_one(node, "USER")?;
            no_flags(node)?;
            Command::User(u)
        }
        // BuildKit does not check STOPSIGNAL flags.
        "stopsignal" => Command::Stopsignal(exactly_one(node, "STOPSIGNAL")?),
        "expose" => {
            at_least_one(node, "EXPOSE")?;
            no_flags(node)?;
            let mut ports = node.args.clone();
            ports.sort();
            Command::Expose(ports)
        }
        "volume" => {
            at_least_one(node, "VOLUME")?;
            no_flags(node)?;
            let mut vols = Vec::new();
            for v in &node.args {
                let v = v.trim();
                if v.is_empty() {
                    return Err("VOLUME specified can not be an empty string".into());
                }
                vols.push(v.to_string());
            }
            Command::Volume(vols)
        }
        "arg" => {
            at_least_one(node, "ARG")?;
            let mut pairs = Vec::new();
            for a in &node.args {
                match a.split_once('=') {
                    Some(("", _)) => return Err("ARG names can not be blank".into()),
                    Some((k, v)) => pairs.push((k.to_string(), Some(v.to_string()))),
                    None => pairs.push((a.clone(), None)),
                }
            }
            Command::Arg(pairs)
        }
        "shell" => {
            no_flags(node)?;
            if node.args.is_empty() {
                return Err("SHELL requires at least one argument".into());
            }
            if !node.json {
                return Err("SHELL requires the arguments to be in JSON form".into());
            }
            Command::Shell(node.args.clone())
        }
        "cmd" => {
            no_flags(node)?;
            Command::Cmd(CommandLine::from_node(node))
        }
        "entrypoint" => {
            no_flags(node)?;
            Command::Entrypoint(CommandLine::from_node(node))
        }
        "run" => {
            let f = flags::parse(
                &node.flags,
                &[
                    ("mount", Kind::Strings),
                    ("network", Kind::String),
                    ("security", Kind::String),
                    ("device", Kind::Strings),
                ],
            )?;
            Command::Run(Run {
                cmd: CommandLine::from_node(node),
                mounts: f.list("mount"),
                network: f.string("network"),
                security: f.string("security"),
                devices: f.list("device"),
                heredocs: node.heredocs.clone(),
            })
        }
        "copy" => {
            if node.args.len() < 2 {
                sources_and_dest(node, "COPY")?;
            }
            let f = flags::parse(
                &node.flags,
                &[
                    ("chown", Kind::String),
                    ("from", Kind::String),
                    ("chmod", Kind::String),
                    ("link", Kind::Bool),
                    ("exclude", Kind::Strings),
                    ("parents", Kind::Bool),
                ],
            )?;
            let (sources, dest, heredocs) = sources_and_dest(node, "COPY")?;
            Command::Copy(Copy {
                sources,
                dest,
                from: f.string("from"),
                chown: f.string("chown"),
                chmod: f.string("chmod"),
                link: f.bool("link").unwrap_or(false),
                parents: f.bool("parents").unwrap_or(false),
                exclude: f.list("exclude"),
                heredocs,
            })
        }
        "add" => {
            if node.args.len() < 2 {
                sources_and_dest(node, "ADD")?;
            }
            let f = flags::parse(
                &node.flags,
                &[
                    ("chown", Kind::String),
                    ("chmod", Kind::String),
                    ("link", Kind::Bool),
                    ("keep-git-dir", Kind::Bool),
                    ("checksum", Kind::String),
                    ("unpack", Kind::Bool),
                    ("exclude", Kind::Strings),
                ],
            )?;
            let (sources, dest, heredocs) = sources_and_dest(node, "ADD")?;
            Command::Add(Add {
                sources,
                dest,
                chown: f.string("chown"),
                chmod: f.string("chmod"),
                link: f.bool("link").unwrap_or(false),
                exclude: f.list("exclude"),
                heredocs,
                checksum: f.string("checksum"),
                keep_git_dir: f.bool("keep-git-dir"),
                unpack: f.bool("unpack"),
            })
        }
        "onbuild" => parse_onbuild(node)?,
        "healthcheck" => Command::Healthcheck(parse_healthcheck(node)?),
        _ => {
            let word = node.original.split_whitespace().next().unwrap_or("");
            return Err(format!("unknown instruction: {word}"));
        }
    })
}

fn parse_onbuild(node: &Node) -> Res<Command> {
    let Some(inner) = &node.onbuild_inner else {
        return Err("ONBUILD requires at least one argument".into());
    };
    no_flags(node)?;
    let trigger = inner.keyword.trim().to_uppercase();
    match trigger.as_str() {
        "ONBUILD" => return Err("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into()),
        "MAINTAINER" | "FROM" => {
            return Err(format!("{trigger} isn't allowed as an ONBUILD trigger"))
        }
        _ => {}
    }
    let mut expr = strip_onbuild_prefix(&node.original).to_string();
    for h in &node.heredocs {
        expr.push('\n');
        expr.push_str(&h.content);
        expr.push_str(&h.name);
    }
    Ok(Command::Onbuild(expr))
}

/// Removes `(?i)^\s*ONBUILD\s*`.
fn strip_onbuild_prefix(s: &str) -> &str {
    let t = s.trim_start();
    match t.get(..7) {
        Some(kw) if kw.eq_ignore_ascii_case("onbuild") => t[7..].trim_start(),
        _ => s,
    }
}

fn parse_healthcheck(node: &Node) -> Res<Healthcheck> {
    let Some((typ, rest)) = node.args.split_first() else {
        return Err("HEALTHCHECK requires at least one argument".into());
    };
    let typ = typ.to_uppercase();
    if typ == "NONE" {
        if !rest.is_empty() {
            return Err("HEALTHCHECK NONE takes no arguments".into());
        }
        return Ok(Healthcheck::None);
    }
    let f = flags::parse(
        &node.flags,
        &[
            ("interval", Kind::String),
            ("timeout", Kind::String),
            ("start-period", Kind::String),
            ("start-interval", Kind::String),
            ("retries", Kind::String),
        ],
    )?;
    if typ != "CMD" {
        return Err(format!(
            "Unknown type {} in HEALTHCHECK (try CMD)",
            super::quote::go_quote(&typ)
        ));
    }
    if rest.is_empty() {
        return Err("Missing command after HEALTHCHECK CMD".into());
    }
    let test = if node.json {
        std::iter::once("CMD".to_string())
            .chain(rest.iter().cloned())
            .collect()
    } else {
        vec!["CMD-SHELL".to_string(), rest.join(" ")]
    };
    let interval = |name: &str| opt_interval(name, f.string(name));
    let retries = match f.string("retries") {
        None => 0,
        Some(v) => {
            let n: i32 = v.parse().map_err(|_| {
                format!(
                    "strconv.ParseInt: parsing {}: invalid syntax",
                    super::quote::go_quote(&v)
                )
            })?;
            u32::try_from(n).map_err(|_| format!("--retries cannot be negative ({n})"))?
        }
    };
    Ok(Healthcheck::Cmd {
        test,
        interval: interval("interval")?,
        timeout: interval("timeout")?,
        start_period: interval("start-period")?,
        start_interval: interval("start-interval")?,
        retries,
    })
}

/// An optional interval flag: empty or zero means unset; otherwise at least
/// one millisecond.
fn opt_interval(name: &str, value: Option<String>) -> Res<Duration> {
    let Some(v) = value.filter(|v| !v.is_empty()) else {
        return Ok(Duration::ZERO);
    };
    let (negative, d) = parse_go_duration(&v)?;
    if d.is_zero() {
        return Ok(Duration::ZERO);
    }
    if negative || d < Duration::from_millis(1) {
        return Err(format!(
            "Interval {} cannot be less than 1ms",
            super::quote::go_quote(name)
        ));
    }
    Ok(d)
}

/// Go's `time.ParseDuration`; returns (is negative, magnitude).
fn parse_go_duration(s: &str) -> Res<(bool, Duration)> {
    let bad = || format!("time: invalid duration {}", super::quote::go_quote(s));
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok((neg, Duration::ZERO));
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let int_part = &rest[..int_end];
        rest = &rest[int_end..];
        let mut frac_part = "";
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
            frac_part = &r[..end];
            rest = &r[end..];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(bad());
        }
        let unit_end = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        rest = &rest[unit_end..];
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => {
                return Err(format!(
                    "time: missing unit in duration {}",
                    super::quote::go_quote(s)
                ))
            }
            _ => {
                return Err(format!(
                    "time: unknown unit {} in duration {}",
                    super::quote::go_quote(unit),
                    super::quote::go_quote(s)
                ))
            }
        };
        let int: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| bad())?
        };
        let mut value = int.checked_mul(scale).ok_or_else(bad)?;
        if !frac_part.is_empty() {
            let digits = &frac_part[..frac_part.len().min(18)];
            let f: u128 = digits.parse().map_err(|_| bad())?;
            value += f * scale / 10u128.pow(digits.len() as u32);
        }
        total = total.checked_add(value).ok_or_else(bad)?;
        if total > i64::MAX as u128 {
            return Err(bad());
        }
    }
    let nanos = u64::try_from(total).map_err(|_| bad())?;
    Ok((neg, Duration::from_nanos(nanos)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dockerfile::parse;

    fn df(src: &str) -> Result<Dockerfile, InstructionError> {
        parse_instructions(&parse(src).expect("parses"))
    }

    fn cmds(src: &str) -> Vec<Command> {
        let d = df(&format!("FROM scratch\n{src}")).expect("valid");
        d.stages[0]
            .commands
            .iter()
            .map(|i| i.command.clone())
            .collect()
    }

    fn err(src: &str) -> InstructionError {
        df(src).expect_err("should fail")
    }

    #[test]
    fn stages_and_meta_args() {
        let d = df("ARG V=1\nFROM --platform=linux/amd64 img:$V AS Build\nRUN x\nFROM build\n")
            .unwrap();
        assert_eq!(d.meta_args.len(), 1);
        assert_eq!(d.stages.len(), 2);
        let from = &d.stages[0].from;
        assert_eq!(from.image, "img:$V");
        assert_eq!(from.name.as_deref(), Some("build"));
        assert_eq!(from.platform.as_deref(), Some("linux/amd64"));
        assert_eq!(d.stages[0].commands[0].start_line, 3);
        let e = err("RUN x\nFROM a\n");
        assert_eq!(e.start_line, 1);
        assert!(e.message.contains("no build stage"));
        assert!(err("FROM a AS 1x\n")
            .message
            .contains("invalid name for build stage"));
        assert!(err("FROM a b\n").message.contains("one or three"));
    }

    #[test]
    fn run_forms_and_flags() {
        let c = cmds("RUN --mount=type=cache,target=/c --mount=type=tmpfs,target=/t --network=none echo $A\nRUN [\"a\", \"b\"]\n");
        let Command::Run(r) = &c[0] else {
            panic!("{c:?}")
        };
        assert_eq!(r.cmd, CommandLine::Shell("echo $A".into()));
        assert_eq!(
            r.mounts,
            vec!["type=cache,target=/c", "type=tmpfs,target=/t"]
        );
        assert_eq!(r.network.as_deref(), Some("none"));
        assert_eq!(r.security, None);
        let Command::Run(r) = &c[1] else { panic!() };
        assert_eq!(r.cmd, CommandLine::Exec(vec!["a".into(), "b".into()]));
    }

    #[test]
    fn flag_errors_name_flag_instruction_and_line() {
        let e = err("FROM a\nRUN --bogus=1 x\n");
        assert_eq!(e.to_string(), "Dockerfile:2: RUN: unknown flag: --bogus");
        assert!(err("FROM a\nCOPY --from=a --from=b x y\n")
            .message
            .contains("duplicate flag specified: --from"));
        assert!(err("FROM a\nCOPY --chown x y\n")
            .message
            .contains("missing a value on flag: --chown"));
        assert!(err("FROM a\nCOPY --link=maybe x y\n")
            .message
            .contains("expecting boolean"));
        assert!(err("FROM a\nWORKDIR --x=1 /a\n")
            .message
            .contains("unknown flag: --x"));
        assert_eq!(err("FROM a\nFOO bar\n").message, "unknown instruction: FOO");
    }

    #[test]
    fn copy_and_add() {
        let c = cmds("COPY --from=b --chown=1:2 --chmod=755 --link --parents --exclude=*.md --exclude=x a b /d/\nADD --checksum=sha256:00 --unpack=false --keep-git-dir https://x/y.tgz /z\n");
        let Command::Copy(cp) = &c[0] else { panic!() };
        assert_eq!(cp.sources, vec!["a", "b"]);
        assert_eq!(cp.dest, "/d/");
        assert_eq!(cp.from.as_deref(), Some("b"));
        assert_eq!(cp.chown.as_deref(), Some("1:2"));
        assert!(cp.link && cp.parents);
        assert_eq!(cp.exclude, vec!["*.md", "x"]);
        let Command::Add(a) = &c[1] else { panic!() };
        assert_eq!(a.checksum.as_deref(), Some("sha256:00"));
        assert_eq!(a.unpack, Some(false));
        assert_eq!(a.keep_git_dir, Some(true));
        assert!(err("FROM a\nCOPY x\n")
            .message
            .contains("requires at least two arguments"));
        assert!(err("FROM a\nCOPY x <<EOF\nEOF\n")
            .message
            .contains("heredoc as a destination"));
    }

    #[test]
    fn copy_heredocs_become_inline_sources() {
        let c = cmds("COPY <<-A <<'B' /dest/\n\tone $X\n\tA\ntwo $X\nB\n");
        let Command::Copy(cp) = &c[0] else { panic!() };
        assert!(cp.sources.is_empty());
        assert_eq!(
            cp.heredocs[0],
            InlineSource {
                path: "A".into(),
                data: "one $X\n".into(),
                expand: true
            }
        );
        assert_eq!(
            cp.heredocs[1],
            InlineSource {
                path: "B".into(),
                data: "two $X\n".into(),
                expand: false
            }
        );
    }

    #[test]
    fn env_label_arg() {
        let c = cmds("ENV A=1 B=\"x y\"\nENV C d e\nLABEL k=v\nARG X Y=2 Z=\n");
        assert_eq!(
            c[0],
            Command::Env(vec![
                ("A".into(), "1".into()),
                ("B".into(), "\"x y\"".into())
            ])
        );
        assert_eq!(c[1], Command::Env(vec![("C".into(), "d e".into())]));
        assert_eq!(c[2], Command::Label(vec![("k".into(), "v".into())]));
        assert_eq!(
            c[3],
            Command::Arg(vec![
                ("X".into(), None),
                ("Y".into(), Some("2".into())),
                ("Z".into(), Some(String::new()))
            ])
        );
        assert!(err("FROM a\nENV =x\n")
            .message
            .contains("names can not be blank"));
        assert!(err("FROM a\nARG =x\n")
            .message
            .contains("ARG names can not be blank"));
        assert!(err("FROM a\nLABEL\n")
            .message
            .contains("LABEL requires at least one argument"));
    }

    #[test]
    fn simple_instructions() {
        let c = cmds("CMD echo hi\nENTRYPOINT [\"/e\"]\nSHELL [\"/bin/bash\", \"-c\"]\nEXPOSE 90 8080/udp 80\nVOLUME /a /b\nUSER u:g\nWORKDIR /w\nSTOPSIGNAL SIGKILL\nMAINTAINER me\n");
        assert_eq!(c[0], Command::Cmd(CommandLine::Shell("echo hi".into())));
        assert_eq!(
            c[1],
            Command::Entrypoint(CommandLine::Exec(vec!["/e".into()]))
        );
        assert_eq!(c[2], Command::Shell(vec!["/bin/bash".into(), "-c".into()]));
        assert_eq!(
            c[3],
            Command::Expose(vec!["80".into(), "8080/udp".into(), "90".into()])
        );
        assert_eq!(c[4], Command::Volume(vec!["/a".into(), "/b".into()]));
        assert_eq!(c[5], Command::User("u:g".into()));
        assert_eq!(c[6], Command::Workdir("/w".into()));
        assert_eq!(c[7], Command::Stopsignal("SIGKILL".into()));
        assert_eq!(c[8], Command::Maintainer("me".into()));
        assert!(err("FROM a\nSHELL /bin/sh -c\n")
            .message
            .contains("JSON form"));
        assert!(err("FROM a\nUSER\n")
            .message
            .contains("exactly one argument"));
        assert!(err("FROM a\nEXPOSE\n").message.contains("at least one"));
    }

    #[test]
    fn onbuild() {
        let c = cmds("ONBUILD RUN <<EOF\necho\nEOF\nonbuild  copy a b\n");
        assert_eq!(c[0], Command::Onbuild("RUN <<EOF\necho\nEOF".into()));
        assert_eq!(c[1], Command::Onbuild("copy a b".into()));
        assert!(err("FROM a\nONBUILD ONBUILD RUN x\n")
            .message
            .contains("Chaining ONBUILD"));
        assert!(err("FROM a\nONBUILD FROM x\n")
            .message
            .contains("isn't allowed as an ONBUILD trigger"));
        assert!(err("FROM a\nONBUILD\n").message.contains("at least one"));
    }

    #[test]
    fn healthcheck() {
        let c = cmds("HEALTHCHECK NONE\nHEALTHCHECK --interval=1m30s --timeout=500ms --retries=3 CMD curl -f x\nHEALTHCHECK --start-period=0s CMD [\"a\", \"b\"]\n");
        assert_eq!(c[0], Command::Healthcheck(Healthcheck::None));
        assert_eq!(
            c[1],
            Command::Healthcheck(Healthcheck::Cmd {
                test: vec!["CMD-SHELL".into(), "curl -f x".into()],
                interval: Duration::from_secs(90),
                timeout: Duration::from_millis(500),
                start_period: Duration::ZERO,
                start_interval: Duration::ZERO,
                retries: 3,
            })
        );
        let Command::Healthcheck(Healthcheck::Cmd { test, .. }) = &c[2] else {
            panic!()
        };
        assert_eq!(test, &vec!["CMD".to_string(), "a".into(), "b".into()]);
        assert!(err("FROM a\nHEALTHCHECK NONE x\n")
            .message
            .contains("takes no arguments"));
        assert!(err("FROM a\nHEALTHCHECK CONNECT x\n")
            .message
            .contains("Unknown type \"CONNECT\""));
        assert!(err("FROM a\nHEALTHCHECK CMD\n")
            .message
            .contains("Missing command"));
        assert!(err("FROM a\nHEALTHCHECK --interval=1us CMD x\n")
            .message
            .contains("cannot be less than 1ms"));
        assert!(err("FROM a\nHEALTHCHECK --interval=5 CMD x\n")
            .message
            .contains("missing unit"));
        assert!(err("FROM a\nHEALTHCHECK --retries=-1 CMD x\n")
            .message
            .contains("cannot be negative"));
        assert!(err("FROM a\nHEALTHCHECK --timeout CMD x\n")
            .message
            .contains("missing a value on flag: --timeout"));
    }

    #[test]
    fn history_texts() {
        let d = df("FROM a\nRUN make\nCOPY --chown=1 a <<F /x\nhi\nF\nENV A=b\nWORKDIR /app\nCMD [\"x\", \"y z\"]\nONBUILD RUN x\n").unwrap();
        let h: Vec<Option<String>> = d.stages[0]
            .commands
            .iter()
            .map(Instruction::history_text)
            .collect();
        assert_eq!(h[0].as_deref(), Some("RUN /bin/sh -c make # buildkit"));
        assert_eq!(h[1].as_deref(), Some("COPY --chown=1 a <<F /x # buildkit"));
        assert_eq!(h[2].as_deref(), Some("ENV A=b"));
        assert_eq!(h[3].as_deref(), Some("WORKDIR /app"));
        assert_eq!(h[4].as_deref(), Some("CMD [\"x\" \"y z\"]"));
        assert_eq!(h[5], None);
    }
}
