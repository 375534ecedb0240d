//! BuildKit's image history `created_by` texts (dockerfile2llb). The builder
//! calls these with *expanded* values; [`super::instructions::Instruction::
//! history_text`] uses them on the unexpanded command as a preview.

use std::time::Duration;

use super::quote::{go_list, go_quote_list};

/// Suffix BuildKit appends to entries of steps that produce a layer.
pub const LAYER_SUFFIX: &str = " # buildkit";

/// `RUN` entry: `RUN [|N K=V...] ARGS # buildkit`, where `args` is the full
/// argv (shell prepended for shell form) and `build_args` the ARGs in scope.
pub fn run(args: &[String], build_args: &[(String, String)]) -> String {
    let mut parts: Vec<String> = Vec::new();
    if !build_args.is_empty() {
        parts.push(format!("|{}", build_args.len()));
        parts.extend(build_args.iter().map(|(k, v)| format!("{k}={v}")));
    }
    parts.extend(args.iter().cloned());
    format!("RUN {}{LAYER_SUFFIX}", parts.join(" "))
}

/// `COPY`/`ADD` entry (`keyword` upper-case); `heredoc_paths` are the
/// inline sources, listed after the ordinary ones as `<<path`.
pub fn copy(
    keyword: &str,
    parents: bool,
    chown: &str,
    chmod: &str,
    sources: &[String],
    heredoc_paths: &[String],
    dest: &str,
) -> String {
    let mut s = keyword.to_string();
    if parents {
        s.push_str(" --parents");
    }
    if !chown.is_empty() {
        s.push_str(&format!(" --chown={chown}"));
    }
    if !chmod.is_empty() {
        s.push_str(&format!(" --chmod={chmod}"));
    }
    for src in sources {
        s.push(' ');
        s.push_str(src);
    }
    for p in heredoc_paths {
        s.push_str(" <<");
        s.push_str(p);
    }
    format!("{s} {dest}{LAYER_SUFFIX}")
}

/// `ENV k=v ...` / `LABEL k=v ...`.
pub fn key_values(keyword: &str, pairs: &[(String, String)]) -> String {
    let mut s = keyword.to_string();
    for (k, v) in pairs {
        s.push_str(&format!(" {k}={v}"));
    }
    s
}

/// `CMD ["a" "b"]` / `ENTRYPOINT [...]` (Go `%q` of the final argv).
pub fn quoted_list(keyword: &str, args: &[String]) -> String {
    format!("{keyword} {}", go_quote_list(args))
}

/// `SHELL [a b]` / `VOLUME [a b]` / `EXPOSE [80/tcp]` (Go `%v`).
pub fn plain_list(keyword: &str, args: &[String]) -> String {
    format!("{keyword} {}", go_list(args))
}

/// `HEALTHCHECK {Test:[...] Interval:0s ...}` (Go `%+v` of the config).
pub fn healthcheck(test: &[String], intervals: [Duration; 4], retries: u32) -> String {
    let [interval, timeout, start_period, start_interval] = intervals.map(go_duration);
    format!(
        "HEALTHCHECK {{Test:{} Interval:{interval} Timeout:{timeout} StartPeriod:{start_period} StartInterval:{start_interval} Retries:{retries}}}",
        go_list(test)
    )
}

/// Go's `time.Duration.String`.
pub fn go_duration(d: Duration) -> String {
    let n = d.as_nanos();
    if n == 0 {
        return "0s".into();
    }
    if n < 1_000_000_000 {
        let (unit, div) = match n {
            0..1_000 => ("ns", 1),
            1_000..1_000_000 => ("µs", 1_000),
            _ => ("ms", 1_000_000),
        };
        return format!("{}{unit}", fraction(n, div));
    }
    let hours = n / 3_600_000_000_000;
    let minutes = (n / 60_000_000_000) % 60;
    let secs = n % 60_000_000_000;
    let mut s = String::new();
    if hours > 0 {
        s.push_str(&format!("{hours}h"));
    }
    if hours > 0 || minutes > 0 {
        s.push_str(&format!("{minutes}m"));
    }
    s.push_str(&fraction(secs, 1_000_000_000));
    s.push('s');
    s
}

fn fraction(n: u128, div: u128) -> String {
    let (int, frac) = (n / div, n % div);
    if frac == 0 {
        return int.to_string();
    }
    let width = div.to_string().len() - 1;
    let digits = format!("{frac:0width$}");
    format!("{int}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_like_go() {
        assert_eq!(go_duration(Duration::ZERO), "0s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_secs(3725)), "1h2m5s");
        assert_eq!(go_duration(Duration::from_micros(2)), "2µs");
        assert_eq!(go_duration(Duration::from_nanos(1_500_000)), "1.5ms");
    }

    #[test]
    fn entries() {
        let args = vec!["/bin/sh".to_string(), "-c".into(), "make".into()];
        assert_eq!(run(&args, &[]), "RUN /bin/sh -c make # buildkit");
        assert_eq!(
            run(&args, &[("A".into(), "1".into())]),
            "RUN |1 A=1 /bin/sh -c make # buildkit"
        );
        assert_eq!(
            copy(
                "COPY",
                false,
                "1:1",
                "",
                &["a".into()],
                &["f".into()],
                "/x/"
            ),
            "COPY --chown=1:1 a <<f /x/ # buildkit"
        );
        assert_eq!(quoted_list("CMD", &["a b".into()]), "CMD [\"a b\"]");
        assert_eq!(
            healthcheck(&["CMD-SHELL".into(), "x".into()], [Duration::from_secs(5), Duration::ZERO, Duration::ZERO, Duration::ZERO], 3),
            "HEALTHCHECK {Test:[CMD-SHELL x] Interval:5s Timeout:0s StartPeriod:0s StartInterval:0s Retries:3}"
        );
    }
}
