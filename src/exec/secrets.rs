//! `--secret` specifications. Secrets reach RUN steps only (with the RUN
//! issue); here they are validated so that a typo fails before the build.

use std::path::PathBuf;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretSource {
    File(PathBuf),
    Env(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Secret {
    pub id: String,
    pub source: SecretSource,
}

impl Secret {
    /// The secret's bytes, read from its file or environment variable (as
    /// a RUN step receives them).
    pub fn read(&self) -> Result<Vec<u8>, String> {
        match &self.source {
            SecretSource::File(path) => std::fs::read(path)
                .map_err(|e| format!("reading secret {:?} from {}: {e}", self.id, path.display())),
            SecretSource::Env(var) => match std::env::var_os(var) {
                Some(v) => Ok(v.to_string_lossy().into_owned().into_bytes()),
                None => Err(format!(
                    "secret {:?}: environment variable {var} is not set",
                    self.id
                )),
            },
        }
    }
}

/// Parses buildx's `id=ID,src=FILE` / `id=ID,env=VAR` (also `source=`,
/// `type=file|env`). Without src or env, buildx reads the env var named ID.
pub fn parse_secret(spec: &str) -> Result<Secret, String> {
    let mut id = None;
    let mut src = None;
    let mut env = None;
    let mut kind = None;
    for field in spec.split(',') {
        let (k, v) = field
            .split_once('=')
            .ok_or_else(|| format!("expected key=value, found {field:?}"))?;
        match k {
            "id" => id = Some(v.to_string()),
            "src" | "source" => src = Some(v.to_string()),
            "env" => env = Some(v.to_string()),
            "type" if v == "file" || v == "env" => kind = Some(v.to_string()),
            other => return Err(format!("unknown secret option {other:?}")),
        }
    }
    let id = id.filter(|i| !i.is_empty()).ok_or("missing id=")?;
    let source = match (src, env, kind.as_deref()) {
        (Some(s), None, None | Some("file")) => SecretSource::File(s.into()),
        (Some(s), None, Some("env")) | (None, Some(s), _) => SecretSource::Env(s),
        (None, None, _) => SecretSource::Env(id.clone()),
        _ => return Err("give either src= or env=, not both".into()),
    };
    Ok(Secret { id, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_specs() {
        assert_eq!(
            parse_secret("id=tok,src=/run/tok").unwrap().source,
            SecretSource::File("/run/tok".into())
        );
        assert_eq!(
            parse_secret("id=tok,env=TOKEN").unwrap().source,
            SecretSource::Env("TOKEN".into())
        );
        assert_eq!(
            parse_secret("id=T").unwrap().source,
            SecretSource::Env("T".into())
        );
        assert!(parse_secret("src=x").is_err());
        assert!(parse_secret("id=a,bogus=1").is_err());
    }
}
